package workflows_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// changeVersions is the search attribute the SDK upserts beside every
// version marker it records ("change-version" per change). The
// time-skipping environment keeps no history, so this list is how a test
// reads which markers a real worker would have written.
const changeVersions = "TemporalChangeVersion"

// oldWorker is a worker whose code predates some GetVersion gates: the
// workflow still asks for them, but the answer, DefaultVersion, never
// reaches the SDK, so nothing is recorded — as when the call did not exist.
// (worker.Options.PreferredVersionProvider, which branch uses, would have
// the SDK record a marker of version -1, which no worker from before the
// change wrote.) It also counts the activities the run started.
type oldWorker struct {
	interceptor.WorkerInterceptorBase
	gates map[string]bool

	mu       sync.Mutex
	asked    map[string]int      // how often the workflow asked for each old gate
	recorded map[string][]string // the change versions the SDK recorded, by workflow id
	acts     map[string]int      // activities started, by type (every attempt)
	locals   map[string]int      // local activities started, by type
	// firstProgress is the first RecordProgress's input.
	firstProgress *activities.ProgressInput
}

// before sets e's worker to one from before gates.
func before(e *env, gates ...string) *oldWorker {
	w := &oldWorker{gates: map[string]bool{}, asked: map[string]int{}, acts: map[string]int{}, locals: map[string]int{}, recorded: map[string][]string{}}
	for _, g := range gates {
		w.gates[g] = true
	}
	// The deadlock check of newEnv: -race on a loaded box is slow, not stuck.
	e.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 30 * time.Second, Interceptors: []interceptor.WorkerInterceptor{w}})
	e.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.acts[info.ActivityType.Name]++
	})
	e.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.locals[info.ActivityType.Name]++
		if info.ActivityType.Name != "RecordProgress" || len(args) == 0 || w.firstProgress != nil {
			return
		}
		if in, ok := args[0].(activities.ProgressInput); ok {
			w.firstProgress = &in
		}
	})
	return w
}

func (w *oldWorker) started(activityType string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acts[activityType]
}

func (w *oldWorker) localsStarted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.locals {
		n += c
	}
	return n
}

func (w *oldWorker) local(activityType string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.locals[activityType]
}

// firstProjected are the stages the run's first RecordProgress carried.
func (w *oldWorker) firstProjected() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	if w.firstProgress != nil {
		for _, r := range w.firstProgress.Audit {
			if r.Action == modelplane.AuditStage {
				out = append(out, r.Decision)
			}
		}
	}
	return out
}

// reached is how often the workflow asked for gate and was answered DefaultVersion.
func (w *oldWorker) reached(gate string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[gate]
}

// marker is the version the SDK recorded for gate in any workflow of the
// run ("" when none).
func (w *oldWorker) marker(gate string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, recorded := range w.recorded {
		for _, cv := range recorded {
			if v, ok := strings.CutPrefix(cv, gate+"-"); ok {
				return v
			}
		}
	}
	return ""
}

func (w *oldWorker) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &oldInbound{w: w}
	i.Next = next
	return i
}

type oldInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	w *oldWorker
}

func (i *oldInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	o := &oldOutbound{w: i.w}
	o.Next = out
	return i.Next.Init(o)
}

type oldOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	w *oldWorker
}

// GetVersion answers the old gates itself; it asks the SDK for the others
// and then reads the change versions (only GetVersion changes them).
func (o *oldOutbound) GetVersion(ctx workflow.Context, changeID string, minSupported, maxSupported workflow.Version) workflow.Version {
	if o.w.gates[changeID] {
		o.w.mu.Lock()
		o.w.asked[changeID]++
		o.w.mu.Unlock()
		return workflow.DefaultVersion
	}
	v := o.Next.GetVersion(ctx, changeID, minSupported, maxSupported)
	recorded, _ := workflow.GetTypedSearchAttributes(ctx).GetKeywordList(temporal.NewSearchAttributeKeyKeywordList(changeVersions))
	o.w.mu.Lock()
	o.w.recorded[workflow.GetInfo(ctx).WorkflowExecution.ID] = recorded
	o.w.mu.Unlock()
	return v
}

// audited are the records of any of actions about churn, oldest first.
func audited(t *testing.T, e *env, actions ...modelplane.AuditAction) []modelplane.AuditRecord {
	t.Helper()
	recs, err := e.kit.Store.ListAudit(context.Background(), store.AuditFilter{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	var out []modelplane.AuditRecord
	for _, r := range recs {
		if slices.Contains(actions, r.Action) {
			out = append(out, r)
		}
	}
	return out
}

// failingCheck is a metric check whose measurement (mocked: Prometheus is not
// part of these tests) is unhealthy, so evaluating it changes the outcome.
var failingCheck = modelplane.MetricCheck{Name: "errors", Query: "q", Condition: "result < 0.05"}

func measureUnhealthy(e *env) {
	e.OnActivity("MeasureCheck", mock.Anything, mock.Anything).Return(activities.CheckResult{Query: "q", Value: 0.5}, nil)
}

// TestGateDefaultBranches drives the default branch of every GetVersion
// gate once, as a run started before the change takes it, and the same
// scenario with the gate on. The recorded histories replay the default
// branches of local-steps, stamped-principal, platform-drift,
// pipeline-local-steps and batched-progress only (and a replay checks determinism, not what the
// branch does); no history takes those of governance, publish-events, provider-operations, metric-checks
// or guardian-metric-checks. Each run must end as its branch does, record no
// marker for a gate it answered itself, and show each sign of the gate (what
// only version 1 does) exactly when the gate is on: a scenario that misses
// its gate, or a sign that shows on both branches, fails.
func TestGateDefaultBranches(t *testing.T) {
	for _, c := range []struct {
		gate string
		// in names the workflow the row drives when it is not the promotion.
		in string
		// also are answered DefaultVersion in both runs: a run from before
		// gate predates them too. local-steps came last and, when on, takes
		// the promotion's earlier gates without asking them.
		also []string
		tier modelplane.RiskTier
		// run plays the scenario and reports how it ended and, by name,
		// whether each sign of version 1 showed.
		run      func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool)
		old, now string // how it ends on the default branch and on version 1
	}{
		{
			gate: "local-steps", also: []string{"batched-progress"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// Before local-steps every step is an activity, none a local one.
				e.kit.Serve(t, "v1", "")
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(50, 100), modelplane.Analysis{}))
				return p.Status, map[string]bool{"local activities ran": w.localsStarted() > 0}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusSucceeded,
		},
		{
			gate: "provider-operations", also: []string{"batched-progress", "local-steps"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// A cloud platform: each change is done three polls later.
				e.kit.Serve(t, "v1", "")
				e.kit.Sim.SettleAfter(3)
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(25, 100), modelplane.Analysis{}))
				return p.Status, map[string]bool{
					"AwaitOp ran":                     w.started("AwaitOp") > 0,
					"the platform was polled":         e.kit.Sim.Calls("Poll") > 0,
					"MarkVersion mirrored the stages": w.started("MarkVersion") > 0,
				}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusSucceeded,
		},
		{
			gate: "governance", also: []string{"batched-progress", "local-steps"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// No policy engine: version 1 still asks (all allowed) and audits each decision.
				e.kit.Serve(t, "v1", "")
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(50, 100), modelplane.Analysis{}))
				return p.Status, map[string]bool{
					"Authorize ran":            w.started("Authorize") > 0,
					"policy decisions audited": len(audited(t, e, modelplane.AuditPolicyDecision)) > 0,
				}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusSucceeded,
		},
		{
			gate: "stamped-principal", also: []string{"batched-progress", "local-steps"}, tier: modelplane.RiskMedium,
			run: func(t *testing.T, e *env, _ *oldWorker) (string, map[string]bool) {
				// The requester's own vote is refused (four-eyes) and audited; bob rejects.
				e.kit.Serve(t, "v1", "")
				e.signalAt(time.Minute, workflows.Approve, workflows.Vote{Approver: "alice", Decision: "approve"})
				e.signalAt(2*time.Minute, workflows.Approve, workflows.Vote{Approver: "bob", Decision: "reject"})
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(100), modelplane.Analysis{}))
				denied := audited(t, e, modelplane.AuditApprovalDenied)
				if len(denied) != 1 || denied[0].Actor != "alice" {
					t.Fatalf("denied votes = %+v, want alice's", denied)
				}
				_, method := denied[0].Details["method"]
				return p.Status, map[string]bool{"a refused vote's audit names the sign-in method": method}
			},
			old: modelplane.StatusRejected, now: modelplane.StatusRejected,
		},
		{
			gate: "publish-events", also: []string{"batched-progress", "local-steps"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// Before local-steps a delivery is scheduled whether or not a sink takes it.
				e.kit.Serve(t, "v1", "")
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(100), modelplane.Analysis{}))
				return p.Status, map[string]bool{"Publish delivered events": w.started("Publish") > 0}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusSucceeded,
		},
		{
			gate: "provider-operations", in: "guardian", tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// Drift: the rollback's traffic change is done three polls later.
				e.kit.Serve(t, "v2", "v1")
				e.kit.Sim.SettleAfter(3)
				e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
				e.signalAt(time.Minute, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.5, Source: "evidently"})
				runGuardian(t, e, 3*time.Minute)
				return e.kit.Traffic(t), map[string]bool{"AwaitOp ran": w.started("AwaitOp") > 0}
			},
			old: "v1=100", now: "v1=100",
		},
		{
			gate: "publish-events", in: "guardian", tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// Drift rolls back: only version 1 delivers the rollback's events.
				e.kit.Serve(t, "v2", "v1")
				e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
				e.signalAt(time.Minute, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.5, Source: "evidently"})
				runGuardian(t, e, 3*time.Minute)
				return e.kit.Traffic(t), map[string]bool{"Publish ran": w.started("Publish") > 0}
			},
			old: "v1=100", now: "v1=100",
		},
		{
			gate: "metric-checks", also: []string{"batched-progress", "local-steps"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// The check fails: only a run that evaluates it rolls back.
				e.kit.Serve(t, "v1", "")
				measureUnhealthy(e)
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(50, 100), modelplane.Analysis{Checks: []modelplane.MetricCheck{failingCheck}}))
				checked := false
				for _, r := range p.AnalysisResults {
					checked = checked || r.Check == failingCheck.Name
				}
				return p.Status, map[string]bool{"MeasureCheck ran": w.started("MeasureCheck") > 0, "check results recorded": checked}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusRolledBack,
		},
		{
			gate: "platform-drift", tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// Someone changes traffic by hand; the target is in warn mode.
				e.kit.Serve(t, "v2", "v1")
				e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
				byHand(t, e, time.Minute, modelplane.TrafficSplit{"v2": 70, "v1": 30}, nil)
				runGuardian(t, e, 2*time.Minute)
				return e.kit.Traffic(t), map[string]bool{
					"CheckPlatform read the platform": w.started("CheckPlatform") > 0,
					"the drift was reported":          len(audited(t, e, modelplane.AuditPlatformDrift)) > 0,
				}
			},
			old: "v1=30,v2=70", now: "v1=30,v2=70",
		},
		{
			gate: "guardian-metric-checks", also: []string{"platform-drift"}, tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// The target's check fails while the provider's health is fine:
				// only a guardian that evaluates it rolls back to v1.
				e.kit.Serve(t, "v2", "v1")
				ctx := context.Background()
				tg, err := e.kit.Store.GetTarget(ctx, "prod")
				if err != nil {
					t.Fatal(err)
				}
				tg.Analysis.Checks = []modelplane.MetricCheck{failingCheck}
				if err := e.kit.Store.PutTarget(ctx, tg); err != nil {
					t.Fatal(err)
				}
				measureUnhealthy(e)
				e.signalAt(time.Second, workflows.Promoted, workflows.GuardianUpdate{Stable: "v2", Previous: "v1"})
				runGuardian(t, e, time.Minute)
				return e.kit.Traffic(t), map[string]bool{"MeasureCheck ran": w.started("MeasureCheck") > 0}
			},
			old: "v2=100", now: "v1=100",
		},
		{
			gate: "batched-progress", tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// A canary on the simulator (it keeps no stages; v2 is not
				// from MLflow), no approval: nothing to mirror, no wait.
				e.kit.Serve(t, "v1", "")
				p := e.run(t, promotionInput(t, e.kit, "v2", canary(50, 100), modelplane.Analysis{}))
				first := strings.Join(w.firstProjected(), ",")
				return p.Status, map[string]bool{
					"the first write carried registering and validating": strings.HasPrefix(first, modelplane.StageRegistering+","+modelplane.StageValidating+","),
					"MarkVersion was not called":                         w.local("MarkVersion") == 0,
					"the deployment was not read again":                  w.local("Deployment") == 0,
				}
			},
			old: modelplane.StatusSucceeded, now: modelplane.StatusSucceeded,
		},
		{
			gate: "pipeline-local-steps", tier: modelplane.RiskLow,
			run: func(t *testing.T, e *env, w *oldWorker) (string, map[string]bool) {
				// One stage the policy lets promote itself into dev. Freeze
				// and PrepareStagePromotion belong to pipelines alone (the
				// child promotion takes local-steps on both branches).
				pipelineTargets(t, e, map[string]string{"dev": "dev"})
				direct := modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)}
				p := modelplane.Pipeline{Name: "churn-release", Team: "growth", Stages: []modelplane.PipelineStage{
					{Name: "dev", Auto: true, Strategy: direct, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}}}}
				e.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: "v1", RequestedBy: "alice"})
				var view workflows.PipelineRunView
				if err := e.GetWorkflowResult(&view); err != nil {
					t.Fatal(err)
				}
				return string(stageOf(view, "dev").Status), map[string]bool{
					"the freeze switch was read locally":         w.started("Freeze") == 0,
					"the stage's promotion was prepared locally": w.started("PrepareStagePromotion") == 0,
					"the run's audit was written locally":        w.started("RecordProgress") == 0,
				}
			},
			old: string(modelplane.PipelineVerified), now: string(modelplane.PipelineVerified),
		},
	} {
		name := c.gate
		if c.in != "" {
			name += " in the " + c.in
		}
		t.Run(name, func(t *testing.T) {
			for _, on := range []bool{false, true} {
				which, want := "default branch", c.old
				gates := append([]string{c.gate}, c.also...)
				if on {
					which, want, gates = "version 1", c.now, c.also
				}
				e := newEnv(t, c.tier)
				w := before(e, gates...)
				got, signs := c.run(t, e, w)
				if got != want {
					t.Errorf("%s: ended %q, want %q", which, got, want)
				}
				for sign, showed := range signs {
					if showed != on {
						t.Errorf("%s: %q is %v, want %v", which, sign, showed, on)
					}
				}
				// The markers: none for a gate the old code answered itself;
				// version 1 where the SDK was asked.
				for _, g := range c.also {
					if v := w.marker(g); v != "" {
						t.Errorf("%s: %s recorded version %s; the worker predates it", which, g, v)
					}
				}
				switch v := w.marker(c.gate); {
				case !on && w.reached(c.gate) == 0:
					t.Errorf("%s: the run never reached %s", which, c.gate)
				case !on && v != "":
					t.Errorf("%s: %s recorded version %s, want no marker", which, c.gate, v)
				case on && v != "1":
					t.Errorf("%s: %s recorded version %q, want 1", which, c.gate, v)
				}
			}
		})
	}
}
