package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"github.com/stretchr/testify/mock"
	sdkworker "go.temporal.io/sdk/worker"
)

// pipelineEnv is the promotion test environment with the default policy
// on, and simulated targets per environment.
func pipelineEnv(t *testing.T, targets map[string]string) *env {
	t.Helper()
	e := newEnv(t, modelplane.RiskLow)
	// A run drives a dozen child workflows in one test environment: on a
	// busy runner with -race a task may wait for the CPU longer than the
	// 1 s deadlock detector allows, without any deadlock.
	e.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	pipelineTargets(t, e, targets)
	return e
}

// pipelineTargets turns the default policy on in e and adds simulated
// targets (name → environment).
func pipelineTargets(t *testing.T, e *env, targets map[string]string) {
	t.Helper()
	eng, err := policy.New("")
	if err != nil {
		t.Fatal(err)
	}
	e.kit.Activities.Policy = eng
	for name, envName := range targets {
		tg := modelplane.Target{Name: name, Provider: sim.Name, Environment: envName, GuardInterval: modelplane.Duration(time.Hour),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: fp(0.05), MaxLatencyP99Ms: fp(500)}}}
		if _, err := e.kit.Store.CreateTarget(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
}

func person(name, role string) modelplane.Principal {
	return modelplane.Principal{Name: name, Teams: []string{"growth"}, Roles: []string{role}, Method: modelplane.AuthToken}
}

// approveRunning approves, as bob, every promotion of stage the run has
// started and that is still running.
func (e *env) approveRunning(t *testing.T, at time.Duration, stage string) {
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(workflows.Status)
		if err != nil {
			t.Error(err)
			return
		}
		var view workflows.PipelineRunView
		if err := v.Get(&view); err != nil {
			t.Error(err)
			return
		}
		for _, s := range view.Stages {
			for _, tr := range s.Targets {
				if s.Name == stage && tr.Status == modelplane.StatusRunning {
					bob := person("bob", "approver")
					e.SignalWorkflowByID(workflows.PromotionWorkflowID(tr.PromotionID), workflows.Approve,
						workflows.Vote{Approver: "bob", Decision: "approve", Teams: bob.Teams, Roles: bob.Roles, Method: bob.Method, Via: "api"})
				}
			}
		}
	}, at)
}

func stageOf(v workflows.PipelineRunView, name string) workflows.StageRun {
	for _, s := range v.Stages {
		if s.Name == name {
			return s
		}
	}
	return workflows.StageRun{}
}

func pipelineAudit(t *testing.T, e *env) string {
	t.Helper()
	recs, err := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if strings.HasPrefix(string(r.Action), "pipeline_") || r.Action == "wave_rollback" {
			note, _ := r.Details["note"].(string)
			gate, _ := r.Details["gate"].(string)
			out = append(out, strings.TrimSpace(string(r.Action)+":"+r.Decision+" "+gate+" "+note))
		}
	}
	return strings.Join(out, "\n")
}

func TestPipelineFlowsThroughStagesWithSoakAndAPersonForProduction(t *testing.T) {
	e := pipelineEnv(t, map[string]string{"dev": "dev", "staging": "staging", "prod-eu": "production", "prod-us": "production"})
	direct := modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)}
	p := modelplane.Pipeline{Name: "churn-release", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "dev", Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}},
		{Name: "staging", Upstream: []string{"dev"}, Soak: modelplane.Duration(time.Hour), Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"staging"}}}},
		// auto, but the default policy enables auto-promotion only into dev and staging.
		{Name: "prod", Upstream: []string{"staging"}, Soak: modelplane.Duration(2 * time.Hour), Auto: true, Strategy: direct,
			Waves: []modelplane.Wave{{Name: "regions", Targets: []string{"prod-eu", "prod-us"}, MaxParallel: 1}}},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	e.signalAt(5*time.Hour, workflows.PromoteStage, workflows.StagePromotion{Stage: "prod", By: person("carol", "requester")})
	e.approveRunning(t, 6*time.Hour, "prod")
	e.approveRunning(t, 7*time.Hour, "prod")
	e.SetTestTimeout(2 * time.Minute)
	start := e.Now()
	e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v1", RequestedBy: "alice"})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var view workflows.PipelineRunView
	if err := e.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	for _, s := range view.Stages {
		if s.Status != modelplane.PipelineVerified {
			t.Fatalf("stage %s: %s (%s); audit:\n%s", s.Name, s.Status, s.Note, pipelineAudit(t, e))
		}
	}
	dev, stg, prod := stageOf(view, "dev"), stageOf(view, "staging"), stageOf(view, "prod")
	if soaked := stg.VerifiedAt.Sub(*dev.VerifiedAt); soaked < time.Hour {
		t.Errorf("staging verified %s after dev, inside dev's 1 h soak", soaked)
	}
	// prod waited for carol (5 h), then each region for bob, one at a time.
	if at := prod.VerifiedAt.Sub(start); at < 7*time.Hour {
		t.Errorf("prod verified at +%s, before its people acted", at)
	}
	audit := pipelineAudit(t, e)
	for _, want := range []string{
		"pipeline_gate:held soak soaking in dev until",
		"pipeline_gate:passed soak",
		"pipeline_gate:held promotion waits for a person: auto-promotion into production is not enabled by the policy",
		"pipeline_gate:passed promotion",
		"pipeline_stage:verified",
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
	for _, tg := range []string{"dev", "staging", "prod-eu", "prod-us"} {
		d, _, _ := e.kit.Store.GetDeployment(context.Background(), "churn", tg)
		if d.Stable != "v1" {
			t.Errorf("%s serves %q, want v1", tg, d.Stable)
		}
	}
	// Each production promotion was requested by carol, who promoted the stage.
	for _, tr := range prod.Targets {
		pr, err := e.kit.Store.GetPromotion(context.Background(), tr.PromotionID)
		if err != nil || pr.RequestedBy != "carol" {
			t.Errorf("%s: promotion %+v (%v), want requested by carol", tr.Target, pr.RequestedBy, err)
		}
	}
}

// regions serves v1 on the simulated targets eu and us, with v2 deployed
// beside it; region 2 (us) serves v2 badly, so its canary's analysis fails.
func (e *env) regions(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, tg := range []string{"eu", "us"} {
		target, _ := e.kit.Store.GetTarget(ctx, tg)
		for _, v := range []string{"v1", "v2"} {
			mv, _ := e.kit.Store.GetVersion(ctx, "churn", v)
			if _, err := e.kit.Sim.RegisterVersion(ctx, target, mv); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.kit.Sim.SetTraffic(ctx, target, "churn", modelplane.TrafficSplit{"v1": 100}, "seed/"+tg); err != nil {
			t.Fatal(err)
		}
		if err := e.kit.Store.PutDeployment(ctx, modelplane.Deployment{Model: "churn", Target: tg, Stable: "v1", Traffic: modelplane.TrafficSplit{"v1": 100}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.kit.Sim.SetHealth(ctx, "us", "churn", "v2", modelplane.Health{ErrorRate: 0.4, LatencyP99Ms: 40}); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineFreezeHoldsAndAFailingRegionHaltsTheWave(t *testing.T) {
	e := pipelineEnv(t, map[string]string{"eu": "staging", "us": "staging", "later": "staging"})
	ctx := context.Background()
	e.regions(t)
	if err := e.kit.Store.SetFreeze(ctx, store.Freeze{On: true, By: "root", Reason: "quarter close"}); err != nil {
		t.Fatal(err)
	}
	e.RegisterDelayedCallback(func() { _ = e.kit.Store.SetFreeze(ctx, store.Freeze{On: false, By: "root"}) }, 30*time.Minute)
	canary := modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: []int{50, 100}, Bake: modelplane.Duration(time.Minute), MonitorWindow: modelplane.Duration(time.Minute)}
	p := modelplane.Pipeline{Name: "regions", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "regional", Auto: true, Strategy: canary, Waves: []modelplane.Wave{{Targets: []string{"eu", "us"}, MaxParallel: 1}}},
		{Name: "after", Upstream: []string{"regional"}, Auto: true, Strategy: canary, Waves: []modelplane.Wave{{Targets: []string{"later"}}}},
	}}
	e.SetTestTimeout(2 * time.Minute)
	start := e.Now()
	e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v2", RequestedBy: "alice"})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var view workflows.PipelineRunView
	if err := e.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	reg, after := stageOf(view, "regional"), stageOf(view, "after")
	if reg.Status != modelplane.PipelineFailed || !strings.Contains(reg.Note, "us: promotion") || after.Status != modelplane.PipelineSkipped {
		t.Fatalf("regional %s (%s), after %s", reg.Status, reg.Note, after.Status)
	}
	audit := pipelineAudit(t, e)
	if !strings.Contains(audit, "pipeline_gate:held freeze frozen by root: quarter close") {
		t.Errorf("the freeze did not hold the stage:\n%s", audit)
	}
	eu, _ := e.kit.Sim.State(ctx, modelplane.Target{Name: "eu"}, "churn")
	us, _ := e.kit.Sim.State(ctx, modelplane.Target{Name: "us"}, "churn")
	if eu.Traffic.String() != "v2=100" || us.Traffic.String() != "v1=100" {
		t.Fatalf("region 1 serves %s (want v2=100, left as it is), region 2 %s (want v1=100, rolled back)", eu.Traffic, us.Traffic)
	}
	recs, _ := e.kit.Store.ListAudit(ctx, store.AuditFilter{Model: "churn", Action: modelplane.AuditPipelineStage})
	for _, r := range recs {
		if r.Decision == string(modelplane.PipelinePromoting) && r.Time.Before(start.Add(30*time.Minute-time.Millisecond)) { // the store keeps microseconds
			t.Errorf("a stage started promoting at +%s, during the freeze", r.Time.Sub(start))
		}
	}
}

func TestPipelineWaveRollbackReturnsTheRegionsItChanged(t *testing.T) {
	e := pipelineEnv(t, map[string]string{"eu": "staging", "us": "staging"})
	e.regions(t)
	// The guardian of the region that succeeded is asked to roll back.
	var asked []string
	e.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", workflows.Rollback, mock.Anything).Return(func(_, workflowID, _, _ string, arg any) error {
		if r, ok := arg.(workflows.RollbackRequest); ok && strings.Contains(r.Reason, "wave rolled back: us") {
			asked = append(asked, workflowID)
		}
		return nil
	})
	canary := modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: []int{50, 100}, Bake: modelplane.Duration(time.Minute), MonitorWindow: modelplane.Duration(time.Minute)}
	p := modelplane.Pipeline{Name: "regions", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "regional", Auto: true, Strategy: canary, Waves: []modelplane.Wave{{Targets: []string{"eu", "us"}, MaxParallel: 1, OnFailure: modelplane.WaveRollback}}},
	}}
	e.SetTestTimeout(2 * time.Minute)
	e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v2", RequestedBy: "alice"})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != workflows.GuardianWorkflowID("churn", "eu") {
		t.Fatalf("rollbacks asked of %v, want the guardian of churn on eu", asked)
	}
	if a := pipelineAudit(t, e); !strings.Contains(a, "wave_rollback:requested") {
		t.Fatalf("audit:\n%s", a)
	}
}

func TestPipelineHotfixSkipsSoakAndSaysWhy(t *testing.T) {
	e := pipelineEnv(t, map[string]string{"dev": "dev", "staging": "staging"})
	direct := modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)}
	p := modelplane.Pipeline{Name: "fast", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "dev", Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}},
		{Name: "staging", Upstream: []string{"dev"}, Soak: modelplane.Duration(24 * time.Hour), Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"staging"}}}},
	}}
	e.SetTestTimeout(time.Minute)
	e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v1", RequestedBy: "alice", Hotfix: "CVE in the tokenizer"})
	var view workflows.PipelineRunView
	if err := e.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	dev, stg := stageOf(view, "dev"), stageOf(view, "staging")
	if stg.Status != modelplane.PipelineVerified || stg.VerifiedAt.Sub(*dev.VerifiedAt) > time.Hour {
		t.Fatalf("staging %s, %s after dev: the hotfix did not skip the 24 h soak", stg.Status, stg.VerifiedAt.Sub(*dev.VerifiedAt))
	}
	recs, _ := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{Model: "churn", Action: modelplane.AuditPipelineGate})
	found := false
	for _, r := range recs {
		if r.Decision == "bypassed" && r.Details["hotfix"] == "CVE in the tokenizer" && r.Actor == "alice" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audited bypass naming the hotfix reason:\n%s", pipelineAudit(t, e))
	}
}

func TestPipelineNewCandidatesWaitWhileAnotherVersionSoaks(t *testing.T) {
	e := pipelineEnv(t, map[string]string{"dev": "dev", "staging": "staging"})
	ctx := context.Background()
	// v0 soaks in dev on its way to staging (another run) for two more hours.
	start := e.Now()
	if err := e.kit.Store.BeginSoak(ctx, "release", "churn", []string{"dev"}, store.Soak{Version: "v0", Until: start.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	direct := modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)}
	p := modelplane.Pipeline{Name: "release", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "dev", Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}},
		{Name: "staging", Upstream: []string{"dev"}, Soak: modelplane.Duration(time.Hour), Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"staging"}}}},
	}}
	// Midway through v1's own soak in dev, the store says so; afterwards it does not.
	var during store.Soak
	e.RegisterDelayedCallback(func() { during, _, _ = e.kit.Store.GetSoak(ctx, "release", "churn", "dev") }, 2*time.Hour+30*time.Minute)
	e.SetTestTimeout(time.Minute)
	e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v1", RequestedBy: "alice"})
	var view workflows.PipelineRunView
	if err := e.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	if s := stageOf(view, "staging"); s.Status != modelplane.PipelineVerified {
		t.Fatalf("staging %s (%s)", s.Status, s.Note)
	}
	if !strings.Contains(pipelineAudit(t, e), "pipeline_gate:held soak waits: version v0 soaks in dev until") {
		t.Fatalf("v1 did not wait for v0's soak:\n%s", pipelineAudit(t, e))
	}
	if dev := stageOf(view, "dev"); dev.VerifiedAt.Before(start.Add(2 * time.Hour)) {
		t.Fatalf("v1 entered dev at +%s, during v0's soak there", dev.VerifiedAt.Sub(start))
	}
	if during.Version != "v1" {
		t.Fatalf("during v1's soak the store says %+v", during)
	}
	if k, ok, _ := e.kit.Store.GetSoak(ctx, "release", "churn", "dev"); ok {
		t.Fatalf("v1's soak outlived it: %+v", k)
	}
}
