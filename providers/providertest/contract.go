// Package providertest is the contract every modelplane.Provider must pass.
// A provider package calls Run from its own tests with a fresh endpoint.
package providertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// Env is one provider plus a target whose endpoint is empty.
type Env struct {
	Provider modelplane.Provider
	Target   modelplane.Target
	// Model is a model name unused on the target so far.
	Model string
	// Advance, if set, is called between polls of a pending Op: it plays the
	// platform's controller where the test has to (KServe status), or is nil
	// when the stand-in finishes operations by itself.
	Advance func(t *testing.T)
}

// Settle polls op until it is done and fails the test if it failed.
func Settle(t *testing.T, env Env, op modelplane.Op) modelplane.OpStatus {
	t.Helper()
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}
	}
	for i := 0; i < 200; i++ {
		st, err := env.Provider.Poll(context.Background(), env.Target, op)
		if err != nil {
			t.Fatalf("Poll(%s): %v", op.ID, err)
		}
		if st.Done {
			if st.Failed {
				t.Fatalf("operation %s (%s) failed: %s", op.ID, op.What, st.Reason)
			}
			return st
		}
		if env.Advance != nil {
			env.Advance(t)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatalf("operation %s (%s) never finished", op.ID, op.What)
	return modelplane.OpStatus{}
}

// Run checks the behaviour the workflows rely on.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	ctx := context.Background()
	version := func(env Env, v string) modelplane.Version {
		return modelplane.Version{Model: env.Model, Version: v, ArtifactURI: "s3://models/" + env.Model + "/" + v}
	}
	setup := func(t *testing.T, versions ...string) Env {
		env := newEnv(t)
		for _, v := range versions {
			op, err := env.Provider.RegisterVersion(ctx, env.Target, version(env, v))
			if err != nil {
				t.Fatalf("RegisterVersion(%s): %v", v, err)
			}
			Settle(t, env, op)
		}
		return env
	}
	traffic := func(t *testing.T, env Env) modelplane.TrafficSplit {
		t.Helper()
		st, err := env.Provider.State(ctx, env.Target, env.Model)
		if err != nil {
			t.Fatalf("State: %v", err)
		}
		return st.Traffic
	}

	t.Run("register is idempotent", func(t *testing.T) {
		env := setup(t, "v1", "v1", "v2")
		st, err := env.Provider.State(ctx, env.Target, env.Model)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(st.Versions)
		slices.Sort(got)
		if !slices.Equal(got, []string{"v1", "v2"}) {
			t.Fatalf("versions = %v, want [v1 v2]", got)
		}
	})

	t.Run("traffic split is exact", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "m1")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 75, "v2": 25}, "m2")
		if got := traffic(t, env); got.String() != "v1=75,v2=25" {
			t.Fatalf("traffic = %s, want v1=75,v2=25", got)
		}
	})

	t.Run("a mutation id applies at most once, even replayed late", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "a")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "b")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "a") // a retry of an old call
		if got := traffic(t, env); got.String() != "v1=50,v2=50" {
			t.Fatalf("late replay changed traffic to %s", got)
		}
	})

	t.Run("invalid splits are refused for good", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "ok")
		for name, split := range map[string]modelplane.TrafficSplit{
			"sum below 100":   {"v1": 50, "v2": 20},
			"unknown version": {"v1": 50, "v9": 50},
			"negative":        {"v1": 110, "v2": -10},
		} {
			_, err := env.Provider.SetTraffic(ctx, env.Target, env.Model, split, "bad-"+name)
			if !errors.Is(err, modelplane.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		if got := traffic(t, env); got.String() != "v1=100" {
			t.Fatalf("a refused split changed traffic to %s", got)
		}
	})

	t.Run("no requests means no data", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "m")
		for _, v := range []string{"v2", "never-deployed"} {
			h, err := env.Provider.Health(ctx, env.Target, env.Model, v, time.Minute)
			if err != nil {
				t.Fatalf("Health(%s): %v", v, err)
			}
			if !h.NoData {
				t.Errorf("Health(%s) = %+v, want NoData", v, h)
			}
		}
	})

	t.Run("retire refuses a serving version", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "m")
		if _, err := env.Provider.Retire(ctx, env.Target, env.Model, "v1"); !errors.Is(err, modelplane.ErrInvalid) {
			t.Fatalf("Retire(serving) = %v, want ErrInvalid", err)
		}
		op, err := env.Provider.Retire(ctx, env.Target, env.Model, "v2")
		if err != nil {
			t.Fatalf("Retire(idle): %v", err)
		}
		Settle(t, env, op)
		st, _ := env.Provider.State(ctx, env.Target, env.Model)
		if slices.Contains(st.Versions, "v2") {
			t.Fatalf("v2 still deployed after Retire: %v", st.Versions)
		}
	})

	t.Run("shadow mirrors without serving", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		if !modelplane.CapabilitiesOf(env.Provider).Shadow {
			// A NoShadow provider must refuse for good what it says it cannot do.
			_, err := env.Provider.StartShadow(ctx, env.Target, env.Model, modelplane.Shadow{Version: "v2", Percent: 20}, "s1")
			if !errors.Is(err, modelplane.ErrInvalid) {
				t.Fatalf("StartShadow on a NoShadow provider = %v, want ErrInvalid", err)
			}
			t.Skip("the platform has no shadow traffic; the API refuses shadow strategies for it")
		}
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "m")
		op, err := env.Provider.StartShadow(ctx, env.Target, env.Model, modelplane.Shadow{Version: "v2", Percent: 20}, "s1")
		if err != nil {
			t.Fatal(err)
		}
		Settle(t, env, op)
		st, _ := env.Provider.State(ctx, env.Target, env.Model)
		if st.Shadow == nil || st.Shadow.Version != "v2" || st.Shadow.Percent != 20 || st.Traffic.String() != "v1=100" {
			t.Fatalf("state during shadow = %+v", st)
		}
		h, err := env.Provider.Health(ctx, env.Target, env.Model, "v2", time.Minute)
		if err != nil || h.NoData {
			t.Fatalf("shadow version health = %+v, %v; want data", h, err)
		}
		op, err = env.Provider.StopShadow(ctx, env.Target, env.Model, false, "s2")
		if err != nil {
			t.Fatal(err)
		}
		Settle(t, env, op)
		st, _ = env.Provider.State(ctx, env.Target, env.Model)
		if st.Shadow != nil {
			t.Fatalf("shadow still on after stop: %+v", st.Shadow)
		}
	})
}

func mustSet(t *testing.T, env Env, split modelplane.TrafficSplit, id string) {
	t.Helper()
	op, err := env.Provider.SetTraffic(context.Background(), env.Target, env.Model, split, id)
	if err != nil {
		t.Fatalf("SetTraffic(%s, %s): %v", split, id, err)
	}
	Settle(t, env, op)
}
