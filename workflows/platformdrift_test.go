package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/workflows"
)

// driftRecords are the guardian's platform drift and correction records, oldest first.
func driftRecords(t *testing.T, e *env) []modelplane.AuditRecord {
	t.Helper()
	return audited(t, e, modelplane.AuditPlatformDrift, modelplane.AuditDriftCorrection)
}

func actions(recs []modelplane.AuditRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, string(r.Action)+":"+r.Decision)
	}
	return strings.Join(s, " ")
}

func setDriftMode(t *testing.T, e *env, mode modelplane.DriftMode, ignore ...string) {
	t.Helper()
	ctx := context.Background()
	tg, err := e.kit.Store.GetTarget(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	tg.Drift = modelplane.DriftPolicy{Mode: mode, Ignore: ignore}
	if err := e.kit.Store.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
}

// byHand changes what the simulator serves at workflow time at, as someone
// in the platform's console would.
func byHand(t *testing.T, e *env, at time.Duration, split modelplane.TrafficSplit, shadow *modelplane.Shadow) {
	e.RegisterDelayedCallback(func() {
		if err := e.kit.Sim.ChangeByHand(context.Background(), "prod", "churn", split, shadow); err != nil {
			t.Error(err)
		}
	}, at)
}

func TestGuardianWarnsOfPlatformDriftWithFirstSeenAndResolution(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	byHand(t, e, time.Minute, modelplane.TrafficSplit{"v2": 70, "v1": 30}, nil)
	// A second hand change while drifted keeps the drift's first-seen time.
	byHand(t, e, 2*time.Minute, modelplane.TrafficSplit{"v2": 50, "v1": 50}, nil)
	byHand(t, e, 3*time.Minute, modelplane.TrafficSplit{"v2": 100}, nil)
	start := e.Now()
	runGuardian(t, e, 4*time.Minute)

	recs := driftRecords(t, e)
	if got := actions(recs); got != "platform_drift:drifted platform_drift:drifted platform_drift:in_sync" {
		t.Fatalf("drift records = %s", got)
	}
	first, _ := recs[0].Details["first_seen"].(string)
	seen, err := time.Parse(time.RFC3339Nano, first)
	if err != nil {
		t.Fatalf("first_seen %q: %v", first, err)
	}
	// The store keeps microseconds: allow for the rounding.
	if lag := recs[0].Time.Sub(seen); lag < -time.Millisecond || lag > time.Second {
		t.Errorf("first report %s after it was first seen", lag)
	}
	if seen.Before(start.Add(time.Minute)) || seen.After(start.Add(time.Minute+6*time.Second)) {
		t.Errorf("first seen %s, want within one 5 s check of the change at %s", seen, start.Add(time.Minute))
	}
	if recs[1].Details["first_seen"] != first {
		t.Errorf("second change moved first_seen: %v, want %s", recs[1].Details["first_seen"], first)
	}
	diffs, _ := recs[0].Details["diffs"].([]any)
	if len(diffs) != 2 || !strings.Contains(recs[0].Subject, "churn on prod") {
		t.Fatalf("diffs = %v subject %q", recs[0].Details["diffs"], recs[0].Subject)
	}
	if d := diffs[0].(map[string]any); d["field"] != "traffic.v1" || d["applied"] != "0%" || d["actual"] != "30%" {
		t.Errorf("first diff = %v", d)
	}
	if recs[2].Details["first_seen"] != first || recs[2].Details["lasted_seconds"] == nil {
		t.Errorf("resolution record = %v", recs[2].Details)
	}
	// Warn mode reports and leaves traffic alone.
	if muts := e.kit.TrafficMutations(t); len(muts) != 0 {
		t.Fatalf("warn mode moved traffic: %v", muts)
	}
	for _, r := range recs {
		if _, ok := modelplane.EventFor(r); !ok {
			t.Errorf("%s:%s announces no event", r.Action, r.Decision)
		}
	}
}

func TestGuardianCorrectsDriftByRestoringWhatWasApplied(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	setDriftMode(t, e, modelplane.DriftCorrect)
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	byHand(t, e, time.Minute, modelplane.TrafficSplit{"v1": 100}, &modelplane.Shadow{Version: "v2", Percent: 20})
	runGuardian(t, e, 3*time.Minute)

	if got := actions(driftRecords(t, e)); got != "platform_drift:drifted drift_correction:corrected platform_drift:in_sync" {
		t.Fatalf("drift records = %s", got)
	}
	st, err := e.kit.Sim.State(context.Background(), modelplane.Target{Name: "prod"}, "churn")
	if err != nil {
		t.Fatal(err)
	}
	if st.Traffic.String() != "v2=100" || st.Shadow != nil {
		t.Fatalf("after correction the platform serves %s shadow %+v", st.Traffic, st.Shadow)
	}
}

func TestGuardianReportsButNeverFightsAHandChangeDuringAPromotion(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	setDriftMode(t, e, modelplane.DriftCorrect)
	promotionInput(t, e.kit, "v1", canary(), modelplane.Analysis{}) // stored as running: it holds the target
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	byHand(t, e, time.Minute, modelplane.TrafficSplit{"v2": 60, "v1": 40}, nil)
	runGuardian(t, e, 3*time.Minute)

	recs := driftRecords(t, e)
	if got := actions(recs); got != "platform_drift:drifted drift_correction:vetoed" {
		t.Fatalf("drift records = %s", got)
	}
	if recs[0].Details["promotion_running"] != true {
		t.Errorf("drift record does not say a promotion ran: %v", recs[0].Details)
	}
	// First seen at the first look, reported on the second, one 5 s check later.
	seen, _ := time.Parse(time.RFC3339Nano, recs[0].Details["first_seen"].(string))
	if lag := recs[0].Time.Sub(seen); lag < 5*time.Second-time.Millisecond || lag > 6*time.Second {
		t.Errorf("reported %s after first_seen, want one check (5 s)", lag)
	}
	if e.kit.Traffic(t) != "v1=40,v2=60" {
		t.Fatalf("the guardian fought the hand change: %s", e.kit.Traffic(t))
	}
	if muts := e.kit.TrafficMutations(t); len(muts) != 0 {
		t.Fatalf("guardian moved traffic during a promotion: %v", muts)
	}
}

func TestGuardianReportsAMissingEndpointAndHonoursIgnoreRules(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	setDriftMode(t, e, modelplane.DriftWarn, "shadow")
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	byHand(t, e, time.Minute, modelplane.TrafficSplit{"v2": 100}, &modelplane.Shadow{Version: "v1", Percent: 50}) // ignored
	byHand(t, e, 2*time.Minute, modelplane.TrafficSplit{}, nil)
	runGuardian(t, e, 3*time.Minute)

	recs := driftRecords(t, e)
	if got := actions(recs); got != "platform_drift:missing" {
		t.Fatalf("drift records = %s", got)
	}
	if ev, ok := modelplane.EventFor(recs[0]); !ok || ev.Type != modelplane.EventPlatformDrifted {
		t.Fatalf("event = %+v", ev)
	}
}
