// Package providers_test runs whole promotions — the real Promotion workflow
// and activities — against each cloud provider, driven through its real SDK
// against the local stand-ins (and, for KServe, a real kube-apiserver).
package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
)

// platform is one provider under test with hooks into its stand-in.
type platform struct {
	provider modelplane.Provider
	target   modelplane.Target
	// health sets what the platform's metrics report for a version.
	health func(t *testing.T, version string, requests, errors5xx int64, p99ms float64)
	// artifacts is where the platform reads model artifacts from ("gs://…").
	artifacts string
}

// lifecycle is a store, activities over the provider, and a workflow test environment.
type lifecycle struct {
	kit      *testkit.Kit
	p        platform
	handover []workflows.GuardianUpdate
}

func newLifecycle(t *testing.T, p platform) *lifecycle {
	t.Helper()
	kit := testkit.New(t, ":memory:")
	kit.Activities.Providers = modelplane.ProviderSet{p.target.Provider: p.provider}
	ctx := context.Background()
	if _, err := kit.Store.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskLow}); err != nil {
		t.Fatal(err)
	}
	tg := p.target
	tg.Analysis = modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500)}}
	if err := tg.CheckCapabilities(modelplane.CapabilitiesOf(p.provider)); err != nil {
		t.Fatal(err)
	}
	if _, err := kit.Store.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if _, err := kit.Store.CreateVersion(ctx, modelplane.Version{Model: "churn", Version: v, ArtifactURI: p.artifacts + "/churn/" + v, Metrics: map[string]float64{"auc": 0.9}, CreatedBy: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	return &lifecycle{kit: kit, p: p}
}

func f(v float64) *float64 { return &v }

// awaitInRealTime is AwaitOp polling the stand-in for up to 10 s of real
// time within one attempt, for time-skipping environments.
func awaitInRealTime(kit *testkit.Kit) func(context.Context, activities.OpInput) (modelplane.OpStatus, error) {
	return func(ctx context.Context, in activities.OpInput) (modelplane.OpStatus, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := kit.Activities.AwaitOp(ctx, in)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != activities.ErrOpPending || time.Now().After(deadline) {
				return st, err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// promote runs one promotion to completion in a time-skipping environment.
func (l *lifecycle) promote(t *testing.T, version string, s modelplane.RolloutStrategy) modelplane.Promotion {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	// The 1 s deadlock detector fires on a busy runner with -race while
	// the workflow is only waiting for the CPU: give it room.
	env.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	worker.Register(env, l.kit.Activities)
	// The guardian is started through the Temporal client, which this
	// environment lacks: capture the hand-over instead.
	env.OnActivity("SignalWithStart", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SignalWithStartInput) error {
		var u workflows.GuardianUpdate
		if err := json.Unmarshal(in.SignalArg, &u); err != nil {
			return err
		}
		l.handover = append(l.handover, u)
		return nil
	})
	// Time skips here but the platforms' stand-ins (KServe's controller
	// loop above all) settle in real time: without a real wait inside each
	// poll, the backoff's hours of virtual time pass in seconds of real time
	// and a slow -race run gives up on an operation that was about to finish.
	env.OnActivity("AwaitOp", mock.Anything, mock.Anything).Return(awaitInRealTime(l.kit))
	ctx := context.Background()
	s, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := l.kit.Store.GetTarget(ctx, l.p.target.Name)
	if err := s.CheckStrategy(tg, modelplane.CapabilitiesOf(l.p.provider)); err != nil {
		t.Fatal(err)
	}
	a, err := modelplane.NormalizeAnalysis(modelplane.Analysis{}, tg.Analysis)
	if err != nil {
		t.Fatal(err)
	}
	p := modelplane.Promotion{ID: "p-" + version, Model: "churn", Version: version, Target: tg.Name, Strategy: s, Analysis: a,
		ApprovalTimeout: modelplane.Duration(time.Hour), RequestedBy: "alice", Stage: modelplane.StagePending, Status: modelplane.StatusRunning}
	if _, _, err := l.kit.Store.CreatePromotion(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	env.ExecuteWorkflow(workflows.PromotionWorkflow, workflows.PromotionInput{Promotion: p})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *lifecycle) traffic(t *testing.T) string {
	t.Helper()
	tg, _ := l.kit.Store.GetTarget(context.Background(), l.p.target.Name)
	st, err := l.p.provider.State(context.Background(), tg, "churn")
	if err != nil {
		t.Fatal(err)
	}
	return st.Traffic.String()
}

func (l *lifecycle) audit(t *testing.T, promotionID string) []modelplane.AuditRecord {
	t.Helper()
	recs, err := l.kit.Store.ListAudit(context.Background(), store.AuditFilter{PromotionID: promotionID})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func hasAudit(recs []modelplane.AuditRecord, action, decision string) bool {
	return slices.ContainsFunc(recs, func(r modelplane.AuditRecord) bool { return string(r.Action) == action && r.Decision == decision })
}

func canary(steps ...int) modelplane.RolloutStrategy {
	return modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: steps, Bake: modelplane.Duration(time.Minute), MonitorWindow: modelplane.Duration(2 * time.Minute)}
}

// runLifecycle is the same story on every platform: a first release, a
// canary judged healthy, then a canary whose errors roll it back.
func runLifecycle(t *testing.T, p platform) *lifecycle {
	t.Helper()
	l := newLifecycle(t, p)
	l.p.health(t, "v1", 10000, 2, 40)
	l.p.health(t, "v2", 10000, 3, 45)
	first := l.promote(t, "v1", modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)})
	if first.Status != modelplane.StatusSucceeded {
		t.Fatalf("first release: %s (%s)", first.Status, first.Reason)
	}
	if got := l.traffic(t); got != "v1=100" {
		t.Fatalf("after the first release the platform serves %s", got)
	}
	good := l.promote(t, "v2", canary(25, 100))
	if good.Status != modelplane.StatusSucceeded {
		t.Fatalf("canary v2: %s (%s)", good.Status, good.Reason)
	}
	if got := l.traffic(t); got != "v2=100" {
		t.Fatalf("after canary v2 the platform serves %s", got)
	}
	var steps []string
	for _, r := range good.AnalysisResults {
		if r.Phase != modelplane.PhaseSuccessful {
			t.Fatalf("analysis %s: %s (%s)", r.Step, r.Phase, r.Message)
		}
		steps = append(steps, r.Step)
	}
	if !slices.Contains(steps, "canary 25%") || !slices.Contains(steps, "canary 100%") {
		t.Fatalf("analysis steps = %v", steps)
	}

	l.p.health(t, "v3", 10000, 2500, 60) // 25% server errors
	bad := l.promote(t, "v3", canary(25, 100))
	if bad.Status != modelplane.StatusRolledBack || !strings.Contains(bad.Reason, "error_rate") {
		t.Fatalf("canary v3: %s (%s)", bad.Status, bad.Reason)
	}
	if got := l.traffic(t); got != "v2=100" {
		t.Fatalf("after the rollback the platform serves %s, want v2=100", got)
	}
	if recs := l.audit(t, bad.ID); !hasAudit(recs, "rollback", "rolled_back") {
		t.Fatalf("no rollback in the audit: %+v", recs)
	}
	return l
}

func asError(err error, target **modelplane.Error) bool { return errors.As(err, target) }
