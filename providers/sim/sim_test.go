package sim_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/providertest"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
)

func newSim(t *testing.T, path string) *sim.Provider {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := sim.New(st.DB(), st)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		return providertest.Env{Provider: newSim(t, ":memory:"), Target: modelplane.Target{Name: "staging", Provider: sim.Name}, Model: "churn"}
	})
}

func TestStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mp.db")
	tg := modelplane.Target{Name: "prod", Provider: sim.Name}
	p := newSim(t, path)
	for _, v := range []string{"v1", "v2"} {
		if _, err := p.RegisterVersion(ctx, tg, modelplane.Version{Model: "m", Version: v, ArtifactURI: "s3://x/" + v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 90, "v2": 10}, "x1"); err != nil {
		t.Fatal(err)
	}
	p2 := newSim(t, path)
	st, err := p2.State(ctx, tg, "m")
	if err != nil {
		t.Fatal(err)
	}
	if st.Traffic.String() != "v1=90,v2=10" {
		t.Fatalf("after reopen traffic = %s", st.Traffic)
	}
	// The applied-mutation log survives too: a retry after restart is still a no-op.
	if _, err := p2.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 90, "v2": 10}, "x1"); err != nil {
		t.Fatal(err)
	}
	muts, _ := p2.Mutations(ctx, "prod", "m")
	if len(muts) != 1 {
		t.Fatalf("mutations = %d, want 1", len(muts))
	}
}

func TestLostReplyThenRetryAppliesOnce(t *testing.T) {
	ctx := context.Background()
	tg := modelplane.Target{Name: "prod", Provider: sim.Name}
	p := newSim(t, ":memory:")
	_, _ = p.RegisterVersion(ctx, tg, modelplane.Version{Model: "m", Version: "v1", ArtifactURI: "s3://x"})
	p.LoseNextReplies(1)
	if _, err := p.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 100}, "id"); err == nil {
		t.Fatal("lost reply reported success")
	}
	if _, err := p.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 100}, "id"); err != nil {
		t.Fatal(err)
	}
	muts, _ := p.Mutations(ctx, "prod", "m")
	if len(muts) != 1 || p.Calls("SetTraffic") != 2 {
		t.Fatalf("mutations=%d calls=%d, want 1 and 2", len(muts), p.Calls("SetTraffic"))
	}
	p.FailNext(1)
	if _, err := p.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 100}, "id2"); err == nil {
		t.Fatal("injected failure not reported")
	}
	if muts, _ := p.Mutations(ctx, "prod", "m"); len(muts) != 1 {
		t.Fatalf("a failed call applied a change")
	}
}

func TestSetHealthDrivesMeasurements(t *testing.T) {
	ctx := context.Background()
	tg := modelplane.Target{Name: "prod", Provider: sim.Name}
	p := newSim(t, ":memory:")
	_, _ = p.RegisterVersion(ctx, tg, modelplane.Version{Model: "m", Version: "v1", ArtifactURI: "s3://x"})
	_, _ = p.SetTraffic(ctx, tg, "m", modelplane.TrafficSplit{"v1": 100}, "a")
	h, _ := p.Health(ctx, tg, "m", "v1", time.Minute)
	if h.Drift != sim.Baseline.Drift || h.Requests != 60000 {
		t.Fatalf("baseline health = %+v", h)
	}
	_ = p.SetHealth(ctx, "prod", "m", "v1", modelplane.Health{ErrorRate: 0.2, LatencyP99Ms: 900, Drift: 0.7})
	h, _ = p.Health(ctx, tg, "m", "v1", time.Minute)
	if h.Drift != 0.7 || h.ErrorRate != 0.2 {
		t.Fatalf("set health not reported: %+v", h)
	}
}
