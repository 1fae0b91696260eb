package workflows

import (
	"fmt"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// PromotionInput starts a promotion. The API has already normalized the
// strategy and analysis, so the workflow never sees defaults change under it.
type PromotionInput struct {
	Promotion modelplane.Promotion
}

// abort is why a rollout must stop.
type abort struct {
	Cause  modelplane.RollbackCause
	Reason string
	Actor  string
	Drift  *modelplane.DriftSignal
}

type promotion struct {
	p        modelplane.Promotion
	seq      int64
	audit    auditLog
	mutSeq   int
	stable   string // version serving before this promotion
	before   modelplane.Deployment
	abort    *abort
	decision *Decision
	dirty    bool // something to flush (votes, denied votes)
	run      modelplane.AnalysisRun
	tier     modelplane.RiskTier
	ops      bool // awaits platform operations, mirrors stages (provider-operations)
	native   bool // the target's platform runs canaries itself
	// published are event deliveries in flight; the promotion waits for them before it ends.
	published []workflow.Future
	// gov: transitions and votes are decided by the policy engine (governance).
	gov bool
	// evidenceStale: the version's evidence changed; validate again.
	evidenceStale bool
	// stamps: votes are attributed to the principal the frontend stamped
	// (stamped-principal), not to the name a payload types.
	stamps bool
	// local: the steps where a round trip buys nothing run as local
	// activities (local-steps; see promotion_local.go).
	local bool
	// batched: the first workflow task projects once and skips the reads
	// and registry calls it already has the answer to (batched-progress;
	// see promotion_local.go).
	batched bool
	// mirrors: a stage change reaches a registry (from validation, batched only).
	mirrors bool
	// validated is the deployment validation read (batched only).
	validated *modelplane.Deployment
}

// Promotion is the lifecycle of one version on one target:
// register → validate → approve → roll out (with analysis) → monitor → done,
// rolling back on failed analysis, drift or a manual request.
func Promotion(ctx workflow.Context, in PromotionInput) (modelplane.Promotion, error) {
	w := &promotion{p: in.Promotion, audit: auditLog{prefix: in.Promotion.ID}}
	w.p.WorkflowID = workflow.GetInfo(ctx).WorkflowExecution.ID
	w.run = modelplane.NewAnalysisRun(w.p.Analysis)
	if err := w.handlers(ctx); err != nil {
		return w.p, err
	}
	if w.p.Kind != modelplane.KindMCPServer {
		// Newest change first: a run on it takes local-steps without asking.
		w.batched = workflow.GetVersion(ctx, batchedProgress, workflow.DefaultVersion, 1) == 1
		w.local = w.batched || workflow.GetVersion(ctx, localSteps, workflow.DefaultVersion, 1) == 1
	}
	if w.local {
		// A run this new takes the earlier changes' branches without asking.
		w.ops, w.gov, w.stamps = true, true, true
	} else {
		w.ops = awaitsOps(ctx)
		w.gov = workflow.GetVersion(ctx, "governance", workflow.DefaultVersion, 1) == 1
		w.stamps = workflow.GetVersion(ctx, "stamped-principal", workflow.DefaultVersion, 1) == 1
	}
	if w.p.Kind == modelplane.KindMCPServer {
		return w.mcpLifecycle(ctx), nil
	}

	// Register.
	w.pass(ctx, modelplane.StageRegistering)
	ref := activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}
	if err := w.register(ctx, ref); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "register: "+errText(err)), nil
	}

	// Validate.
	w.pass(ctx, modelplane.StageValidating)
	var vr activities.ValidateResult
	if err := w.step(ctx, 10, acts.Validate, activities.ValidateInput{VersionRef: ref, Metrics: w.p.Metrics}).Get(ctx, &vr); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "validate: "+errText(err)), nil
	}
	w.p.Validation, w.p.RequiredApprovals, w.stable, w.tier = &vr.Report, vr.RequiredApprovals, vr.Stable, vr.RiskTier
	w.p.StableVersion = vr.Stable
	w.native = vr.Native && w.ops
	if w.batched {
		w.mirrors, w.validated = vr.Mirrors, &vr.Deployment
	}
	rec := w.record(modelplane.AuditValidated, "system", map[bool]string{true: "passed", false: "failed"}[vr.Report.Passed], map[string]any{"report": vr.Report})
	rec.EvidenceHash = vr.Report.EvidenceHash
	w.audit.add(ctx, rec)
	if !vr.Report.Passed {
		return w.finish(ctx, modelplane.StatusFailedValidation, "validation failed: "+strings.Join(vr.Report.Failed(), ", ")), nil
	}
	if w.gov {
		// The policy decides whether this transition may happen at all and
		// how many approvals it needs (never fewer than the target asks).
		d, ok := w.authorize(ctx, "promotion.start", systemCaller, nil)
		if !ok {
			return w.finish(ctx, modelplane.StatusFailedValidation, "policy: "+d.Reason()), nil
		}
		if d.RequiredApprovals > w.p.RequiredApprovals {
			w.p.RequiredApprovals = d.RequiredApprovals
		}
	}

	// Approve.
	if status, reason := w.approve(ctx); status != "" {
		if status == modelplane.StatusRejected {
			w.mark(ctx, modelplane.VersionRejected, "", reason)
		}
		return w.finish(ctx, status, reason), nil
	}
	w.mark(ctx, modelplane.VersionApproved, "", "")

	// The stable version may have changed while we waited for approvals.
	dep, err := w.deploymentNow(ctx, ref)
	if err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "read deployment: "+errText(err)), nil
	}
	w.stable, w.p.StableVersion, w.before = dep.Stable, dep.Stable, dep
	if w.stable == w.p.Version {
		return w.finish(ctx, modelplane.StatusFailedValidation, fmt.Sprintf("version %s became stable on %s while awaiting approval", w.p.Version, w.p.Target)), nil
	}

	// Roll out.
	w.mark(ctx, modelplane.VersionChallenger, w.stable, "")
	if !w.rollout(ctx) {
		return w.rollback(ctx), nil
	}

	// Monitor the full rollout for a while before calling it done.
	w.stage(ctx, modelplane.StageMonitoring, fmt.Sprintf("watching for %s", w.p.Strategy.MonitorWindow))
	if !w.monitor(ctx) {
		return w.rollback(ctx), nil
	}
	return w.succeed(ctx), nil
}

func (w *promotion) record(action modelplane.AuditAction, actor, decision string, details map[string]any) modelplane.AuditRecord {
	return modelplane.AuditRecord{Actor: actor, Action: action, Subject: w.p.Model + "@" + w.p.Version + " → " + w.p.Target,
		PromotionID: w.p.ID, Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Decision: decision, Details: details}
}

// --- progress ---

// stage moves to a new stage and projects it (history, audit, store, Web UI details).
func (w *promotion) stage(ctx workflow.Context, stage, note string) {
	w.enter(ctx, stage, note)
	w.flush(ctx, nil)
}

// enter records a stage change in the workflow's state; the next flush projects it.
func (w *promotion) enter(ctx workflow.Context, stage, note string) {
	if w.p.Status == "" {
		w.p.Status = modelplane.StatusRunning
	}
	w.p.Stage = stage
	w.p.History = append(w.p.History, modelplane.HistoryEntry{At: workflow.Now(ctx).UTC(), Stage: stage, Status: w.p.Status, Note: note})
	w.audit.add(ctx, w.record(modelplane.AuditStage, "system", stage, map[string]any{"status": w.p.Status, "note": note}))
}

// flush writes the projection. A store outage must not stop a rollout, so
// the activity retries for long but the workflow carries on if it still fails.
func (w *promotion) flush(ctx workflow.Context, dep *modelplane.Deployment) {
	w.dirty = false
	w.seq++
	w.p.UpdatedAt = workflow.Now(ctx).UTC()
	workflow.SetCurrentDetails(ctx, w.details())
	p := w.p
	in := activities.ProgressInput{Promotion: &p, Seq: w.seq, Deployment: dep, Audit: w.audit.take()}
	var res activities.ProgressResult
	var err error
	if w.local {
		err = workflow.ExecuteLocalActivity(withLocal(ctx, 20), acts.RecordProgress, in).Get(ctx, &res)
	} else {
		err = workflow.ExecuteActivity(withActivity(ctx, 20), acts.RecordProgress, in).Get(ctx, nil)
	}
	if err != nil {
		logger(ctx, w.p.ID, w.p.Model, w.p.Target).Error("record progress failed", "error", err)
		w.audit.pending = append(in.Audit, w.audit.pending...)
		return
	}
	// local-steps: delivered only where a sink takes them (a delivery with
	// no sink was a round trip that sent nothing); before, always.
	if events := eventsOf(in.Audit); len(events) > 0 && ((w.local && res.Sinks) || (!w.local && publishing(ctx))) {
		w.published = append(w.published, workflow.ExecuteActivity(withPublish(ctx), acts.Publish, activities.PublishInput{Events: events}))
	}
}

func (w *promotion) finish(ctx workflow.Context, status, reason string) modelplane.Promotion {
	now := workflow.Now(ctx).UTC()
	w.p.Status, w.p.Reason, w.p.FinishedAt = status, reason, &now
	w.audit.add(ctx, w.record(modelplane.AuditFinished, "system", status, map[string]any{"reason": reason}))
	w.stage(ctx, modelplane.StageDone, reason)
	// Deliveries run beside the rollout; the last ones (rolled back, retrain) must not be abandoned.
	for _, f := range w.published {
		if err := f.Get(ctx, nil); err != nil {
			logger(ctx, w.p.ID, w.p.Model, w.p.Target).Error("event delivery gave up", "error", err)
		}
	}
	return w.p
}

// details is the markdown the Temporal Web UI shows as Current Details.
func (w *promotion) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s version %s → %s\n\n", w.p.Model, w.p.Version, w.p.Target)
	fmt.Fprintf(&b, "**Stage:** %s · **Status:** %s · **Strategy:** %s · **Requested by:** %s\n\n", w.p.Stage, w.p.Status, w.p.Strategy.Type, w.p.RequestedBy)
	if w.p.Reason != "" {
		fmt.Fprintf(&b, "**Reason:** %s\n\n", w.p.Reason)
	}
	if len(w.p.Traffic) > 0 {
		fmt.Fprintf(&b, "**Traffic:** %s\n\n", w.p.Traffic)
	}
	if w.p.Validation != nil {
		b.WriteString("**Validation evidence**\n\n| check | result | detail |\n|---|---|---|\n")
		for _, c := range w.p.Validation.Checks {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, map[bool]string{true: "pass", false: "FAIL"}[c.Passed], c.Detail)
		}
		b.WriteString("\n")
	}
	approved, _ := w.tally()
	fmt.Fprintf(&b, "**Approvals:** %d of %d required", approved, w.p.RequiredApprovals)
	for _, a := range w.p.Approvals {
		fmt.Fprintf(&b, " · %s %s via %s", a.Approver, a.Decision, a.Via)
	}
	b.WriteString("\n\n")
	if n := len(w.p.AnalysisResults); n > 0 {
		r := w.p.AnalysisResults[n-1]
		fmt.Fprintf(&b, "**Last analysis:** %s on %s: %s (%s)\n\n", r.Step, r.Version, r.Phase, r.Message)
	}
	switch w.p.Stage {
	case modelplane.StageAwaitingApproval, modelplane.StageValidating, modelplane.StageRegistering:
		b.WriteString("**How to approve:** sign in, then More Actions → Send a Signal (or Send an Update) → `approve` with payload ")
		b.WriteString("`{\"decision\": \"approve\", \"comment\": \"...\"}` ")
		fmt.Fprintf(&b, "(or `reject`); or `modelplane approve %s`; or `POST /v1/promotions/%s/approvals`. ", w.p.ID, w.p.ID)
		b.WriteString("The vote counts for the signed-in user whatever name a payload types. ")
		b.WriteString("The requester cannot approve; one vote per approver; one reject ends the promotion.\n")
	case modelplane.StageAwaitingDecision:
		b.WriteString("**Analysis was inconclusive.** Signed in, Send a Signal → `decide` with `{\"decision\": \"promote\"}` or `\"rollback\"`.\n")
	}
	return b.String()
}
