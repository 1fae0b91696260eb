package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// branch sets the environment's worker: with before, it records the
// default branch of changeID, as a worker from before the change would (the
// branch old runs take). Policy decisions on a loaded machine can keep a
// workflow task busy for more than the SDK's one-second deadlock check.
func branch(e *env, changeID string, before bool) {
	o := worker.Options{DeadlockDetectionTimeout: 30 * time.Second}
	if before {
		o.PreferredVersionProvider = func(in worker.PreferredVersionProviderInput) *worker.VersionPreference {
			if in.ChangeID == changeID {
				return &worker.VersionPreference{Version: workflow.DefaultVersion}
			}
			return nil
		}
	}
	e.SetWorkerOptions(o)
}

// stamps are the times and decision ids inside records' details (a vote's
// "at" and "policy_decision"): each run of the test environment starts its
// clock at the wall clock's time, and every decision has its own id.
var stamps = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[0-9:.]+Z"|"policy_decision":"[0-9a-f]+"`)

// trail is what a promotion leaves behind, without what differs from run to
// run (times, policy decision ids): the audit chain in order, the final
// projection, the platform's mutations and the retrain requests.
func trail(t *testing.T, e *env, p modelplane.Promotion) []string {
	t.Helper()
	ctx := context.Background()
	recs, err := e.kit.Store.ListAudit(ctx, store.AuditFilter{PromotionID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		details, _ := json.Marshal(r.Details)
		details = stamps.ReplaceAll(details, []byte(`"<varies>"`))
		policy := ""
		if r.Policy != nil {
			policy = fmt.Sprintf(" policy=%v/%s/%d", r.Policy.Allow, strings.Join(r.Policy.Reasons, ";"), r.Policy.RequiredApprovals)
		}
		out = append(out, fmt.Sprintf("audit %s %s %s %s %s%s evidence=%s", r.Key, r.Action, r.Actor, r.Decision, details, policy, r.EvidenceHash))
	}
	stored, err := e.kit.Store.GetPromotion(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, h := range stored.History {
		stages = append(stages, h.Stage+"/"+h.Status+"/"+h.Note)
	}
	var votes []string
	for _, a := range stored.Approvals {
		votes = append(votes, a.Approver+"/"+a.Decision+"/"+a.Via+"/"+a.Method)
	}
	out = append(out, fmt.Sprintf("projection %s/%s %q stable=%s traffic=%s required=%d votes=%v analyses=%d history=%v",
		stored.Stage, stored.Status, stored.Reason, stored.StableVersion, stored.Traffic, stored.RequiredApprovals, votes, len(stored.AnalysisResults), stages))
	for _, m := range e.kit.TrafficMutations(t) {
		out = append(out, "traffic "+m.Detail)
	}
	dep, _, _ := e.kit.Store.GetDeployment(ctx, "churn", "prod")
	out = append(out, fmt.Sprintf("deployment stable=%s previous=%s candidate=%s traffic=%s", dep.Stable, dep.PreviousStable, dep.Candidate, dep.Traffic))
	for _, ev := range e.kit.Sink.Events() {
		out = append(out, "retrain "+ev.ID)
	}
	return out
}

// TestLocalStepsKeepWhatAPromotionLeaves runs each scenario on both
// branches of local-steps — the local activities of new runs and the
// activities of runs started before the change — and wants the same audit
// chain (keys, order, actors, decisions, details), projection, traffic
// changes and retrain requests from both.
func TestLocalStepsKeepWhatAPromotionLeaves(t *testing.T) {
	growth, approver := []string{"growth"}, []string{modelplane.RoleApprover}
	vote := func(e *env, at time.Duration, v workflows.Vote) {
		e.RegisterDelayedCallback(func() {
			e.UpdateWorkflow(workflows.Approve, "", &noopUpdate{}, v)
		}, at)
	}
	for _, c := range []struct {
		name     string
		tier     modelplane.RiskTier
		strategy modelplane.RolloutStrategy
		setup    func(e *env)
	}{
		{"canary approved by update and signal", modelplane.RiskHigh, canary(10, 50, 100), func(e *env) {
			vote(e, time.Minute, workflows.Vote{Approver: "bob", Decision: "approve", Via: "api", Teams: growth, Roles: approver, Method: modelplane.AuthToken})
			e.signalAt(2*time.Minute, workflows.Approve, workflows.Vote{Approver: "alice", Decision: "approve"}) // four-eyes: denied, audited
			e.signalAt(3*time.Minute, workflows.Approve, workflows.Vote{Approver: "dave", Decision: "approve"})  // not of the team: denied by policy, audited
			e.signalAt(4*time.Minute, workflows.Approve, workflows.Vote{Approver: "carol", Decision: "approve", Teams: growth, Roles: approver})
		}},
		{"drift during the canary", modelplane.RiskLow, canary(10, 50, 100), func(e *env) {
			e.signalAt(90*time.Second, workflows.Drift, modelplane.DriftSignal{Metric: "psi", Score: 0.42, Source: "evidently"})
		}},
		{"analysis fails", modelplane.RiskLow, canary(10, 100), func(e *env) {
			_ = e.kit.Sim.SetHealth(context.Background(), "prod", "churn", "v2", modelplane.Health{ErrorRate: 0.2, LatencyP99Ms: 40})
		}},
		{"rejected", modelplane.RiskMedium, canary(50, 100), func(e *env) {
			e.signalAt(time.Minute, workflows.Approve, workflows.Vote{Approver: "bob", Decision: "reject", Comment: "thin", Teams: growth, Roles: approver})
		}},
		{"approval expires", modelplane.RiskMedium, canary(100), nil},
		{"platform operations, direct", modelplane.RiskLow, modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}, func(e *env) {
			e.kit.Sim.SettleAfter(2)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var trails [2][]string
			for i, before := range []bool{false, true} {
				e := newEnv(t, c.tier)
				// The policy decides every transition but asks no approvals of its own: the risk tier sets the quorum.
				zero := map[string]any{"dev": 0, "staging": 0, "production": 0}
				eng, err := policy.New("", policy.WithData(map[string]any{"allow_unverified_ui_approvals": true, "min_metrics": map[string]any{"production": 0},
					"approvals": map[string]any{"low": zero, "medium": zero, "high": zero, "critical": zero}}))
				if err != nil {
					t.Fatal(err)
				}
				e.kit.Activities.Policy = eng
				e.kit.Serve(t, "v1", "")
				branch(e, "local-steps", before)
				if c.setup != nil {
					c.setup(e)
				}
				trails[i] = trail(t, e, e.run(t, promotionInput(t, e.kit, "v2", c.strategy, modelplane.Analysis{})))
			}
			now, old := strings.Join(trails[0], "\n"), strings.Join(trails[1], "\n")
			if now != old {
				t.Fatalf("local-steps changed what the promotion leaves:\n--- local activities\n%s\n--- activities (before local-steps)\n%s", now, old)
			}
			t.Logf("%d lines alike:\n%s", len(trails[0]), now)
		})
	}
}

type noopUpdate struct{}

func (*noopUpdate) Accept()             {}
func (*noopUpdate) Reject(error)        {}
func (*noopUpdate) Complete(any, error) {}

// TestBatchedProgressShowsASlowRegistration: on batched-progress, a
// platform still registering the version (the simulator answers every
// change as running until the third poll) gets the registering stage
// projected before the wait, not with validation after it.
func TestBatchedProgressShowsASlowRegistration(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	w := before(e)
	e.kit.Serve(t, "v1", "")
	e.kit.Sim.SettleAfter(3)
	p := e.run(t, promotionInput(t, e.kit, "v2", canary(100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("ended %s (%s)", p.Status, p.Reason)
	}
	if got := strings.Join(w.firstProjected(), ","); got != modelplane.StageRegistering {
		t.Fatalf("the first write carried stages %q; want registering alone, before the wait for the platform", got)
	}
	if w.started("AwaitOp") == 0 {
		t.Fatal("the platform answered at once: the scenario never waited for it")
	}
}
