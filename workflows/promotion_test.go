package workflows_test

import (
	"context"
	"encoding/json"
	sdkworker "go.temporal.io/sdk/worker"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
)

type env struct {
	*testsuite.TestWorkflowEnvironment
	kit      *testkit.Kit
	mu       sync.Mutex
	handover []workflows.GuardianUpdate
}

func newEnv(t *testing.T, tier modelplane.RiskTier) *env {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	e := &env{TestWorkflowEnvironment: ts.NewTestWorkflowEnvironment(), kit: testkit.New(t, ":memory:")}
	// Under -race on a loaded 2-core box one workflow task can outlast the
	// SDK's 1 s deadlock check without being stuck.
	e.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	e.kit.Seed(t, tier, "v1", "v2")
	worker.Register(e.TestWorkflowEnvironment, e.kit.Activities)
	// The guardian is started through the Temporal client, which the
	// time-skipping environment does not have: capture the hand-over instead
	// (the integration tests run it for real).
	e.OnActivity("SignalWithStart", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SignalWithStartInput) error {
		var u workflows.GuardianUpdate
		if err := json.Unmarshal(in.SignalArg, &u); err != nil {
			return err
		}
		e.mu.Lock()
		e.handover = append(e.handover, u)
		e.mu.Unlock()
		return nil
	})
	return e
}

func fp(v float64) *float64 { return &v }
func ip(v int) *int         { return &v }

func promotionInput(t *testing.T, kit *testkit.Kit, version string, s modelplane.RolloutStrategy, a modelplane.Analysis) workflows.PromotionInput {
	t.Helper()
	s, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := kit.Store.GetTarget(context.Background(), "prod")
	a, err = modelplane.NormalizeAnalysis(a, tg.Analysis)
	if err != nil {
		t.Fatal(err)
	}
	p := modelplane.Promotion{ID: "p-" + version, Model: "churn", Version: version, Target: "prod", Strategy: s, Analysis: a,
		ApprovalTimeout: modelplane.Duration(2 * time.Hour), RequestedBy: "alice", Stage: modelplane.StagePending, Status: modelplane.StatusRunning}
	if _, _, err := kit.Store.CreatePromotion(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	return workflows.PromotionInput{Promotion: p}
}

func canary(steps ...int) modelplane.RolloutStrategy {
	return modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: steps, Bake: modelplane.Duration(time.Minute), MonitorWindow: modelplane.Duration(5 * time.Minute)}
}

func (e *env) run(t *testing.T, in workflows.PromotionInput) modelplane.Promotion {
	t.Helper()
	e.ExecuteWorkflow(workflows.PromotionWorkflow, in)
	if !e.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := e.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var p modelplane.Promotion
	if err := e.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	// The store projection must agree with the workflow's result.
	stored, err := e.kit.Store.GetPromotion(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != p.Status || stored.Stage != modelplane.StageDone {
		t.Fatalf("store says %s/%s, workflow %s/%s", stored.Stage, stored.Status, p.Stage, p.Status)
	}
	return p
}

func (e *env) signalAt(d time.Duration, name string, arg any) {
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(name, arg) }, d)
}

func details(t *testing.T, kit *testkit.Kit) []string {
	var out []string
	for _, m := range kit.TrafficMutations(t) {
		out = append(out, m.Detail)
	}
	return out
}

func wantTraffic(t *testing.T, kit *testkit.Kit, want ...string) {
	t.Helper()
	got := details(t, kit)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("traffic changes = %v, want %v", got, want)
	}
}

func TestCanarySucceedsAndHandsOverToGuardian(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.AddVersion(t, "v0", 0.9)
	e.kit.Serve(t, "v1", "v0")
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=90,v2=10", "v1=50,v2=50", "v2=100")
	if n := len(p.AnalysisResults); n != 3+5 { // one per step + one per minute of monitoring
		t.Fatalf("analysis results = %d, want 8", n)
	}
	d, _, _ := e.kit.Store.GetDeployment(context.Background(), "churn", "prod")
	if d.Stable != "v2" || d.PreviousStable != "v1" || d.Traffic.String() != "v2=100" {
		t.Fatalf("deployment = %+v", d)
	}
	if len(e.handover) != 1 || e.handover[0].Stable != "v2" || e.handover[0].Previous != "v1" {
		t.Fatalf("guardian hand-over = %+v", e.handover)
	}
	// v0 is no longer a rollback target once v2 is stable and v1 kept warm.
	st, _ := e.kit.Sim.State(context.Background(), modelplane.Target{Name: "prod"}, "churn")
	if strings.Join(st.Versions, ",") != "v1,v2" {
		t.Fatalf("warm versions = %v, want v1,v2", st.Versions)
	}
}

func TestDirectBlueGreenAndShadow(t *testing.T) {
	cases := []struct {
		name     string
		strategy modelplane.RolloutStrategy
		want     []string
		shadow   bool
	}{
		{"direct", modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}, []string{"v2=100"}, false},
		{"bluegreen", modelplane.RolloutStrategy{Type: modelplane.StrategyBlueGreen}, []string{"v2=100"}, false},
		{"shadow then canary", modelplane.RolloutStrategy{Type: modelplane.StrategyShadow, ShadowPercent: 20, Steps: []int{50, 100}}, []string{"v1=50,v2=50", "v2=100"}, true},
		{"shadow then direct", modelplane.RolloutStrategy{Type: modelplane.StrategyShadow, Then: modelplane.StrategyDirect}, []string{"v2=100"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, modelplane.RiskLow)
			e.kit.Serve(t, "v1", "")
			p := e.run(t, promotionInput(t, e.kit, "v2", c.strategy, modelplane.Analysis{}))
			if p.Status != modelplane.StatusSucceeded {
				t.Fatalf("status = %s (%s)", p.Status, p.Reason)
			}
			wantTraffic(t, e.kit, c.want...)
			muts, _ := e.kit.Sim.Mutations(context.Background(), "prod", "churn")
			var kinds []string
			for _, m := range muts {
				if strings.HasPrefix(m.Kind, "shadow") {
					kinds = append(kinds, m.Kind+":"+m.Detail)
				}
			}
			if c.shadow != (len(kinds) == 2) {
				t.Fatalf("shadow mutations = %v", kinds)
			}
			if c.shadow && p.AnalysisResults[0].Step != "shadow" {
				t.Fatalf("first analysis = %+v, want shadow", p.AnalysisResults[0])
			}
		})
	}
}

func TestFirstDeploymentGoesDirect(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v2=100")
}

func TestValidationFailureNamesEachCheck(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.AddVersion(t, "v3", 0.5)
	e.kit.Serve(t, "v1", "")
	in := promotionInput(t, e.kit, "v3", canary(), modelplane.Analysis{})
	in.Promotion.Metrics = modelplane.MetricBounds{Max: map[string]float64{"latency_ms": 20}}
	p := e.run(t, in)
	if p.Status != modelplane.StatusFailedValidation {
		t.Fatalf("status = %s", p.Status)
	}
	for _, want := range []string{"metric_auc_min", "metric_latency_ms_max"} {
		if !strings.Contains(p.Reason, want) {
			t.Errorf("reason %q does not name %s", p.Reason, want)
		}
	}
	if len(e.kit.TrafficMutations(t)) != 0 {
		t.Fatal("traffic moved for an invalid version")
	}
}

func TestCandidateEqualToStableFailsValidation(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v2", "")
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(), modelplane.Analysis{}))
	if p.Status != modelplane.StatusFailedValidation || !strings.Contains(p.Reason, "not_current_stable") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
}

func TestRejectEndsPromotion(t *testing.T) {
	e := newEnv(t, modelplane.RiskMedium)
	e.kit.Serve(t, "v1", "")
	e.signalAt(time.Minute, workflows.Approve, workflows.Vote{Approver: "bob", Decision: "reject", Comment: "metrics too thin"})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(), modelplane.Analysis{}))
	if p.Status != modelplane.StatusRejected || p.Reason != "rejected by bob" {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	if len(e.kit.TrafficMutations(t)) != 0 {
		t.Fatal("traffic moved after a reject")
	}
}

func TestQuorumFourEyesAndOneVoteEach(t *testing.T) {
	e := newEnv(t, modelplane.RiskHigh)
	e.kit.Serve(t, "v1", "")
	var selfErr, dupErr error
	update := func(v workflows.Vote, errp *error) {
		e.UpdateWorkflow(workflows.Approve, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) {
				if errp != nil {
					*errp = err
				}
			},
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, v)
	}
	e.RegisterDelayedCallback(func() { update(workflows.Vote{Approver: "alice", Decision: "approve"}, &selfErr) }, time.Minute)
	e.RegisterDelayedCallback(func() { update(workflows.Vote{Approver: "bob", Decision: "approve", Via: "api"}, nil) }, 2*time.Minute)
	e.RegisterDelayedCallback(func() { update(workflows.Vote{Approver: "bob", Decision: "approve"}, &dupErr) }, 3*time.Minute)
	// A signal that breaks the rules is not counted, but it is audited.
	e.signalAt(4*time.Minute, workflows.Approve, workflows.Vote{Approver: "alice", Decision: "approve"})
	e.signalAt(5*time.Minute, workflows.Approve, workflows.Vote{Approver: "carol", Decision: "approve"})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	if selfErr == nil || !strings.Contains(selfErr.Error(), "four-eyes") {
		t.Fatalf("self-approval error = %v", selfErr)
	}
	if dupErr == nil || !strings.Contains(dupErr.Error(), "already voted") {
		t.Fatalf("duplicate vote error = %v", dupErr)
	}
	if len(p.Approvals) != 2 || p.Approvals[0].Via != "api" || p.Approvals[1].Via != "signal" || p.RequiredApprovals != 2 {
		t.Fatalf("approvals = %+v (required %d)", p.Approvals, p.RequiredApprovals)
	}
	recs, _ := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{PromotionID: p.ID})
	denied := 0
	for _, r := range recs {
		if r.Action == "approval_denied" && r.Actor == "alice" {
			denied++
		}
	}
	if denied != 1 {
		t.Fatalf("denied signal audited %d times, want 1", denied)
	}
}

func TestApprovalEscalatesThenExpires(t *testing.T) {
	e := newEnv(t, modelplane.RiskMedium)
	e.kit.Serve(t, "v1", "")
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(), modelplane.Analysis{}))
	if p.Status != modelplane.StatusExpired {
		t.Fatalf("status = %s", p.Status)
	}
	recs, _ := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{PromotionID: p.ID})
	var actions []string
	for _, r := range recs {
		actions = append(actions, string(r.Action))
	}
	joined := strings.Join(actions, ",")
	if !strings.Contains(joined, "approval_escalated") || strings.Index(joined, "approval_escalated") > strings.Index(joined, "finished") {
		t.Fatalf("audit = %s, want escalation before the end", joined)
	}
}

func TestAnalysisFailureRollsBack(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	_ = e.kit.Sim.SetHealth(context.Background(), "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.2, LatencyP99Ms: 40})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "error_rate") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=90,v2=10", "v1=100")
	if e.kit.Traffic(t) != "v1=100" {
		t.Fatalf("traffic = %s", e.kit.Traffic(t))
	}
	if len(e.kit.Sink.Events()) != 0 {
		t.Fatal("retrain requested for an analysis failure (only drift asks for retraining)")
	}
}

func TestFailureLimitToleratesOneBadMeasurement(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	ctx := context.Background()
	_ = e.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.2})
	// Heal after the first measurement.
	e.RegisterDelayedCallback(func() { _ = e.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.001}) }, 90*time.Second)
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 50, 100), modelplane.Analysis{FailureLimit: ip(1)}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	if p.AnalysisResults[0].Phase != modelplane.PhaseFailed {
		t.Fatalf("first measurement = %+v", p.AnalysisResults[0])
	}
}

func TestInconclusiveWaitsForHuman(t *testing.T) {
	for _, c := range []struct {
		name, decision, status string
	}{{"promote", "promote", modelplane.StatusSucceeded}, {"rollback", "rollback", modelplane.StatusRolledBack}, {"timeout", "", modelplane.StatusRolledBack}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, modelplane.RiskLow)
			e.kit.Serve(t, "v1", "")
			ctx := context.Background()
			_ = e.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{NoData: true})
			if c.decision != "" {
				e.RegisterDelayedCallback(func() {
					_ = e.kit.Sim.SetHealth(ctx, "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.001})
					e.SignalWorkflow(workflows.Decide, workflows.Decision{Actor: "bob", Decision: c.decision})
				}, 10*time.Minute)
			}
			p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 100), modelplane.Analysis{DecisionTimeout: modelplane.Duration(30 * time.Minute)}))
			if p.Status != c.status {
				t.Fatalf("status = %s (%s)", p.Status, p.Reason)
			}
			if c.decision == "" && !strings.Contains(p.Reason, "no decision within 30m") {
				t.Fatalf("reason = %s", p.Reason)
			}
			if c.status == modelplane.StatusRolledBack && e.kit.Traffic(t) != "v1=100" {
				t.Fatalf("traffic = %s", e.kit.Traffic(t))
			}
		})
	}
}

func TestDriftDuringRolloutRollsBackAndRequestsRetrain(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	e.signalAt(90*time.Second, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.42, Source: "evidently"})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "psi=0.42") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=90,v2=10", "v1=50,v2=50", "v1=100")
	ev := e.kit.Sink.Events()
	if len(ev) != 1 || ev[0].Type != activities.RetrainType || ev[0].ID != p.ID+"/retrain" || ev[0].Data["version"] != "v2" {
		t.Fatalf("retrain events = %+v (rejected %v)", ev, e.kit.Sink.Rejected())
	}
}

func TestManualRollbackBySignal(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	e.signalAt(30*time.Second, workflows.Rollback, workflows.RollbackRequest{Actor: "sre-on-call", Reason: "pager"})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "sre-on-call") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=90,v2=10", "v1=100")
	if len(e.kit.Sink.Events()) != 0 {
		t.Fatal("manual rollback must not request retraining")
	}
}

func TestProviderFaultsAreRiddenOutWithoutDuplicates(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	e.kit.Sim.FailNext(3)
	e.kit.Sim.LoseNextReplies(2)
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=90,v2=10", "v1=50,v2=50", "v2=100")
}

func TestInvalidProviderRequestFailsFast(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	// Retiring v1 from the platform behind our back makes every split naming it invalid.
	ctx := context.Background()
	tg := modelplane.Target{Name: "prod"}
	v2, _ := e.kit.Store.GetVersion(ctx, "churn", "v2")
	if _, err := e.kit.Sim.RegisterVersion(ctx, tg, v2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kit.Sim.SetTraffic(ctx, tg, "churn", modelplane.TrafficSplit{"v2": 100}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kit.Sim.Retire(ctx, tg, "churn", "v1"); err != nil {
		t.Fatal(err)
	}
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusFailed || !strings.Contains(p.Reason, "not deployed") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	if n := e.kit.Sim.Calls("SetTraffic"); n != 3 { // seed, the test's own, one refused
		t.Fatalf("an invalid request was retried: %d calls", n)
	}
}

// A drift signal that arrives while a metric check waits between its
// measurements rolls back as drift (and asks for retraining), not as a
// failed analysis.
func TestDriftBetweenCheckMeasurementsKeepsItsCause(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	// Prometheus is not part of this unit test: the check's measurement is a healthy value.
	e.OnActivity("MeasureCheck", mock.Anything, mock.Anything).Return(activities.CheckResult{Query: "q", Value: 0.01}, nil)
	check := modelplane.MetricCheck{Name: "err", Query: "q", Condition: "result < 0.05", Count: 2, Interval: modelplane.Duration(time.Minute)}
	e.signalAt(90*time.Second, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.6, Source: "evidently"})
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(10, 100), modelplane.Analysis{Checks: []modelplane.MetricCheck{check}}))
	if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "psi=0.6") {
		t.Fatalf("got %s (%s), want rolled back for drift", p.Status, p.Reason)
	}
	if len(e.kit.Sink.Events()) != 1 {
		t.Fatalf("retrain events = %d, want 1", len(e.kit.Sink.Events()))
	}
}

// On a cloud platform a traffic change finishes later: the workflow must
// wait for each operation before it judges the step.
func TestCanaryWaitsForPlatformOperations(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	e.kit.Sim.SettleAfter(3)
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(25, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	wantTraffic(t, e.kit, "v1=75,v2=25", "v2=100")
	// register + two steps, each polled until done (3 pending answers, then done).
	if n := e.kit.Sim.Calls("Poll"); n != 3*4 {
		t.Fatalf("polls = %d, want 12 (three operations, four polls each)", n)
	}
}

func TestShadowThenDirectPromotesInPlace(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	e.kit.Serve(t, "v1", "")
	s := modelplane.RolloutStrategy{Type: modelplane.StrategyShadow, ShadowPercent: 20, Then: modelplane.StrategyDirect,
		Bake: modelplane.Duration(time.Minute), MonitorWindow: modelplane.Duration(time.Minute)}
	p := e.run(t, promotionInput(t, e.kit, "v2", s, modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("status = %s (%s)", p.Status, p.Reason)
	}
	muts, _ := e.kit.Sim.Mutations(context.Background(), "prod", "churn")
	var stop string
	for _, m := range muts {
		if m.Kind == "shadow-stop" {
			stop = m.Detail
		}
	}
	if stop != "promote v2" {
		t.Fatalf("shadow stop = %q, want the platform to promote v2 in place", stop)
	}
	if got := e.kit.Traffic(t); got != "v2=100" {
		t.Fatalf("traffic = %s", got)
	}
}
