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
			if err := env.Provider.RegisterVersion(ctx, env.Target, version(env, v)); err != nil {
				t.Fatalf("RegisterVersion(%s): %v", v, err)
			}
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
			err := env.Provider.SetTraffic(ctx, env.Target, env.Model, split, "bad-"+name)
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
		if err := env.Provider.Retire(ctx, env.Target, env.Model, "v1"); !errors.Is(err, modelplane.ErrInvalid) {
			t.Fatalf("Retire(serving) = %v, want ErrInvalid", err)
		}
		if err := env.Provider.Retire(ctx, env.Target, env.Model, "v2"); err != nil {
			t.Fatalf("Retire(idle): %v", err)
		}
		st, _ := env.Provider.State(ctx, env.Target, env.Model)
		if slices.Contains(st.Versions, "v2") {
			t.Fatalf("v2 still deployed after Retire: %v", st.Versions)
		}
	})

	t.Run("shadow mirrors without serving", func(t *testing.T) {
		env := setup(t, "v1", "v2")
		mustSet(t, env, modelplane.TrafficSplit{"v1": 100}, "m")
		if err := env.Provider.StartShadow(ctx, env.Target, env.Model, modelplane.Shadow{Version: "v2", Percent: 20}, "s1"); err != nil {
			t.Fatal(err)
		}
		st, _ := env.Provider.State(ctx, env.Target, env.Model)
		if st.Shadow == nil || st.Shadow.Version != "v2" || st.Shadow.Percent != 20 || st.Traffic.String() != "v1=100" {
			t.Fatalf("state during shadow = %+v", st)
		}
		h, err := env.Provider.Health(ctx, env.Target, env.Model, "v2", time.Minute)
		if err != nil || h.NoData {
			t.Fatalf("shadow version health = %+v, %v; want data", h, err)
		}
		if err := env.Provider.StopShadow(ctx, env.Target, env.Model, "s2"); err != nil {
			t.Fatal(err)
		}
		st, _ = env.Provider.State(ctx, env.Target, env.Model)
		if st.Shadow != nil {
			t.Fatalf("shadow still on after stop: %+v", st.Shadow)
		}
	})
}

func mustSet(t *testing.T, env Env, split modelplane.TrafficSplit, id string) {
	t.Helper()
	if err := env.Provider.SetTraffic(context.Background(), env.Target, env.Model, split, id); err != nil {
		t.Fatalf("SetTraffic(%s, %s): %v", split, id, err)
	}
}
