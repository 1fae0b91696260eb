package sagemaker_test

import (
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
)

func TestShadowStartThenPromote(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	op, err := f.p.StartShadow(ctx, f.tg, model, modelplane.Shadow{Version: "v2", Percent: 30}, "shadow-on")
	if err != nil {
		t.Fatal(err)
	}
	if st := f.wait(t, op); st.Failed {
		t.Fatalf("start shadow: %+v", st)
	}
	st := f.state(t)
	if st.Shadow == nil || *st.Shadow != (modelplane.Shadow{Version: "v2", Percent: 30}) || st.Traffic.String() != "v1=100" {
		t.Fatalf("state during shadow = %+v", st)
	}
	if _, shadows := f.srv.Variants(f.endpoint()); len(shadows) != 1 || shadows[0] != sagemaker.VariantName("v2") {
		t.Fatalf("endpoint shadow variants = %v", shadows)
	}
	// Traffic cannot move under a running experiment.
	if _, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "meanwhile"); err == nil {
		t.Fatal("SetTraffic during a shadow experiment was accepted")
	}

	op, err = f.p.StopShadow(ctx, f.tg, model, true, "shadow-off")
	if err != nil {
		t.Fatal(err)
	}
	if st := f.wait(t, op); st.Failed {
		t.Fatalf("stop shadow: %+v", st)
	}
	st = f.state(t)
	if st.Shadow != nil || st.Traffic.String() != "v2=100" {
		t.Fatalf("state after promote = %+v, want v2=100 and no shadow", st)
	}
	// A replayed stop is a no-op.
	stops := f.srv.Calls("StopInferenceExperiment")
	if _, err := f.p.StopShadow(ctx, f.tg, model, true, "shadow-off"); err != nil || f.srv.Calls("StopInferenceExperiment") != stops {
		t.Fatalf("replayed StopShadow: %v, stops %d → %d", err, stops, f.srv.Calls("StopInferenceExperiment"))
	}
	// After the promotion the canary machinery works on the new variant set.
	f.set(t, modelplane.TrafficSplit{"v2": 100}, "after")
}

func TestShadowStopWithoutPromotionKeepsProduction(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	op, err := f.p.StartShadow(ctx, f.tg, model, modelplane.Shadow{Version: "v2", Percent: 10}, "on")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, op)
	op, err = f.p.StopShadow(ctx, f.tg, model, false, "off")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, op)
	st := f.state(t)
	if st.Shadow != nil || st.Traffic.String() != "v1=100" {
		t.Fatalf("state = %+v, want v1=100 without shadow", st)
	}
	// Nothing running: another stop does nothing.
	if op, err := f.p.StopShadow(ctx, f.tg, model, false, "off-again"); err != nil || op.Pending() {
		t.Fatalf("StopShadow with nothing running = %v, %v", op, err)
	}
}
