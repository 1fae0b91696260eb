package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

func guardianAudit(t *testing.T, e *env) string {
	recs, err := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Action)+":"+r.Decision)
	}
	return strings.Join(out, " ")
}

// runGuardian runs the guardian until the cancel at until (workflow
// time). The real-time bound only limits a hang: the guardian's health
// checks every 5 s make these runs hundreds of activities, which on a
// loaded 2-core runner with -race took over a minute and cut a run short.
func runGuardian(t *testing.T, e *env, until time.Duration) {
	t.Helper()
	e.SetTestTimeout(5 * time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, until)
	e.ExecuteWorkflow(workflows.GuardianWorkflow, workflows.GuardianInput{Model: "churn", Target: "prod"})
	// It ends canceled, or earlier by continuing as new (the SDK may ask
	// for a new run before turnsPerRun); a timeout is a failure.
	if err := e.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "canceled") && !strings.Contains(err.Error(), "continue as new") {
		t.Fatalf("guardian ended with %v, want it canceled at %s or continued as new", err, until)
	}
}

func TestGuardianRollsBackOnDriftSignalAfterPromotion(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1", PromotionID: "p-v2"})
	e.signalAt(2*time.Minute, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.5, Source: "evidently"})
	// A second drift within the cooldown finds nothing left to roll back and no new retrain.
	e.signalAt(4*time.Minute, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.6, Source: "evidently"})
	runGuardian(t, e, 6*time.Minute)
	wantTraffic(t, e.kit, "v1=100")
	d, _, _ := e.kit.Store.GetDeployment(context.Background(), "churn", "prod")
	if d.Stable != "v1" || d.PreviousStable != "" {
		t.Fatalf("deployment = %+v", d)
	}
	if ev := e.kit.Sink.Events(); len(ev) != 1 || ev[0].Data["version"] != "v2" {
		t.Fatalf("retrain events = %+v", ev)
	}
	audit := guardianAudit(t, e)
	for _, want := range []string{"guardian_watching:v2", "rollback:rolled_back", "retrain:requested", "rollback:impossible", "retrain:deduplicated"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit %q lacks %s", audit, want)
		}
	}
}

func TestGuardianHealthCheckRollsBackAndSkipsWhileAPromotionRuns(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	ctx := context.Background()
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	// Drift shows up in the platform's own metrics (max_drift 0.3 on the target).
	e.RegisterDelayedCallback(func() {
		_ = e.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.001, LatencyP99Ms: 40, Drift: 0.8})
	}, time.Minute)
	runGuardian(t, e, 10*time.Minute)
	wantTraffic(t, e.kit, "v1=100")
	if ev := e.kit.Sink.Events(); len(ev) != 1 {
		t.Fatalf("retrain events = %d, want 1", len(ev))
	}

	// While a promotion owns the pair, the guardian leaves traffic alone.
	e2 := newEnv(t, modelplane.RiskLow)
	e2.kit.Serve(t, "v2", "v1")
	_ = e2.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{Drift: 0.8})
	promotionInput(t, e2.kit, "v1", canary(), modelplane.Analysis{}) // stored as running
	e2.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	e2.signalAt(2*time.Minute, workflows.Drift, modelplane.DriftSignal{Version: "v2", Metric: "psi", Score: 0.9})
	runGuardian(t, e2, 10*time.Minute)
	if muts := e2.kit.TrafficMutations(t); len(muts) != 0 {
		t.Fatalf("guardian moved traffic during a promotion: %v", muts)
	}
	if a := guardianAudit(t, e2); !strings.Contains(a, "rollback_deferred:skipped") {
		t.Fatalf("audit = %s", a)
	}
}

func TestGuardianContinuesAsNewWithState(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "v1")
	e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
	e.SetTestTimeout(5 * time.Minute)
	e.ExecuteWorkflow(workflows.GuardianWorkflow, workflows.GuardianInput{Model: "churn", Target: "prod"})
	err := e.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "continue as new") {
		t.Fatalf("guardian ended with %v, want continue-as-new", err)
	}
	// The next run starts with what this one knew.
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("%T is not a ContinueAsNewError", err)
	}
	var next workflows.GuardianInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Stable != "v2" || next.Previous != "v1" || next.AuditSeq == 0 || next.Model != "churn" {
		t.Fatalf("next run input = %+v", next)
	}
}
