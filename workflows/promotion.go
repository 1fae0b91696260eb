package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/policy"
	"go.temporal.io/sdk/temporal"
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
	w.ops = awaitsOps(ctx)
	w.gov = workflow.GetVersion(ctx, "governance", workflow.DefaultVersion, 1) == 1
	w.stamps = workflow.GetVersion(ctx, "stamped-principal", workflow.DefaultVersion, 1) == 1
	if w.p.Kind == modelplane.KindMCPServer {
		return w.mcpLifecycle(ctx), nil
	}

	// Register.
	w.stage(ctx, modelplane.StageRegistering, "")
	ref := activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}
	if err := mutate(ctx, withActivity(ctx, 10), w.ops, w.p.Target, acts.Register, ref); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "register: "+errText(err)), nil
	}

	// Validate.
	w.stage(ctx, modelplane.StageValidating, "")
	var vr activities.ValidateResult
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.Validate, activities.ValidateInput{VersionRef: ref, Metrics: w.p.Metrics}).Get(ctx, &vr); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "validate: "+errText(err)), nil
	}
	w.p.Validation, w.p.RequiredApprovals, w.stable, w.tier = &vr.Report, vr.RequiredApprovals, vr.Stable, vr.RiskTier
	w.p.StableVersion = vr.Stable
	w.native = vr.Native && w.ops
	rec := w.record("validated", "system", map[bool]string{true: "passed", false: "failed"}[vr.Report.Passed], map[string]any{"report": vr.Report})
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
	var dep modelplane.Deployment
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.Deployment, ref).Get(ctx, &dep); err != nil {
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

func (w *promotion) record(action, actor, decision string, details map[string]any) modelplane.AuditRecord {
	return modelplane.AuditRecord{Actor: actor, Action: action, Subject: w.p.Model + "@" + w.p.Version + " → " + w.p.Target,
		PromotionID: w.p.ID, Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Decision: decision, Details: details}
}

// --- handlers ---

func (w *promotion) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, Status, func() (modelplane.Promotion, error) { return w.p, nil },
		workflow.QueryHandlerOptions{Description: "The promotion: stage, status, traffic, approvals, analysis and history"}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, Approve, func(ctx workflow.Context, v Vote) (modelplane.Promotion, error) {
		if err := w.vote(ctx, w.attributed(v, updateStamp(ctx)), "update"); err != nil {
			return w.p, temporal.NewApplicationErrorWithOptions(err.Error(), "PolicyDenied", temporal.ApplicationErrorOptions{NonRetryable: true})
		}
		return w.p, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, v Vote) error { return w.checkVote(w.attributed(v, updateStamp(ctx))) },
		Description: `Approve or reject as the signed-in user: {"decision": "approve" or "reject", "comment": "why"}`}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, Rollback, func(ctx workflow.Context, r RollbackRequest) (modelplane.Promotion, error) {
		w.requestRollback(w.rollbackBy(ctx, r))
		return w.p, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r RollbackRequest) error { return w.checkRollback(w.rollbackBy(ctx, r)) },
		Description: `Roll back now as the signed-in user: {"reason": "..."}`}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, Decide, func(ctx workflow.Context, d Decision) (modelplane.Promotion, error) {
		d = w.decisionBy(ctx, d)
		w.decision = &d
		return w.p, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return w.checkDecision(w.decisionBy(ctx, d)) },
		Description: `Resolve an inconclusive analysis as the signed-in user: {"decision": "promote" or "rollback"}`}); err != nil {
		return err
	}

	approveCh := workflow.GetSignalChannelWithOptions(ctx, Approve, workflow.SignalChannelOptions{
		Description: `Approve or reject this promotion as the signed-in user (your identity comes from your sign-in, not the payload). Payload: {"decision": "approve" or "reject", "comment": "why"}`})
	rollbackCh := workflow.GetSignalChannelWithOptions(ctx, Rollback, workflow.SignalChannelOptions{
		Description: `Roll back now as the signed-in user. Payload: {"reason": "why"}`})
	decideCh := workflow.GetSignalChannelWithOptions(ctx, Decide, workflow.SignalChannelOptions{
		Description: `Resolve an inconclusive analysis as the signed-in user. Payload: {"decision": "promote" or "rollback"}`})
	evidenceCh := workflow.GetSignalChannelWithOptions(ctx, EvidenceChanged, workflow.SignalChannelOptions{
		Description: `The version's evidence changed (sent by modelplane): approvals given on the old evidence stop counting`})
	driftCh := workflow.GetSignalChannelWithOptions(ctx, Drift, workflow.SignalChannelOptions{
		Description: `Drift detected: {"metric": "psi", "score": 0.4, "source": "monitor"} — rolls back and requests retraining`})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) {
				var v Vote
				c.Receive(ctx, &v)
				v = w.attributed(v, signalStamp(ctx, Approve))
				if err := w.checkVote(v); err != nil {
					// Signals cannot be refused: record the denied attempt instead.
					details := map[string]any{"via": "signal", "error": err.Error()}
					if w.stamps {
						details["method"] = nonEmpty(v.Method, modelplane.AuthUI)
					}
					w.audit.add(ctx, w.record("approval_denied", v.Approver, v.Decision, details))
					w.dirty = true
					return
				}
				_ = w.vote(ctx, v, "signal") // a denial is audited; a signal has no caller to answer
			})
			sel.AddReceive(evidenceCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				w.evidenceStale, w.dirty = true, true
			})
			sel.AddReceive(rollbackCh, func(c workflow.ReceiveChannel, _ bool) {
				var r RollbackRequest
				c.Receive(ctx, &r)
				if stamp := signalStamp(ctx, Rollback); w.stamps {
					r.Actor = actor(r.Actor, stamp)
				}
				if w.checkRollback(r) == nil {
					w.requestRollback(r)
				}
			})
			sel.AddReceive(decideCh, func(c workflow.ReceiveChannel, _ bool) {
				var d Decision
				c.Receive(ctx, &d)
				if stamp := signalStamp(ctx, Decide); w.stamps {
					d.Actor = actor(d.Actor, stamp)
				}
				if w.checkDecision(d) == nil {
					w.decision = &d
				}
			})
			sel.AddReceive(driftCh, func(c workflow.ReceiveChannel, _ bool) {
				var d modelplane.DriftSignal
				c.Receive(ctx, &d)
				if w.abort == nil && !modelplane.Terminal(w.p.Status) {
					w.abort = &abort{Cause: modelplane.CauseDrift, Actor: nonEmpty(d.Source, "drift-signal"), Drift: &d,
						Reason: fmt.Sprintf("drift: %s=%g from %s", d.Metric, d.Score, nonEmpty(d.Source, "unknown"))}
				}
			})
			sel.Select(ctx)
		}
	})
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rollbackBy and decisionBy are an update's request as from the person the
// frontend stamped (stamped-principal).
func (w *promotion) rollbackBy(ctx workflow.Context, r RollbackRequest) RollbackRequest {
	if w.stamps {
		r.Actor = actor(r.Actor, updateStamp(ctx))
	}
	return r
}

func (w *promotion) decisionBy(ctx workflow.Context, d Decision) Decision {
	if w.stamps {
		d.Actor = actor(d.Actor, updateStamp(ctx))
	}
	return d
}

// attributed is v as the voter the frontend verified (stamped-principal).
func (w *promotion) attributed(v Vote, stamp *modelplane.Principal) Vote {
	if !w.stamps {
		return v
	}
	return attribute(v, stamp)
}

func (w *promotion) checkVote(v Vote) error {
	switch w.p.Stage {
	case modelplane.StagePending, modelplane.StageRegistering, modelplane.StageValidating, modelplane.StageAwaitingApproval:
	default:
		return fmt.Errorf("promotion %s is not awaiting approval (stage %s, status %s)", w.p.ID, w.p.Stage, w.p.Status)
	}
	if modelplane.Terminal(w.p.Status) {
		return fmt.Errorf("promotion %s has ended (%s)", w.p.ID, w.p.Status)
	}
	if strings.TrimSpace(v.Approver) == "" {
		return errors.New("approver is required")
	}
	if v.Decision != "approve" && v.Decision != "reject" {
		return fmt.Errorf("decision must be approve or reject, got %q", v.Decision)
	}
	if v.Approver == w.p.RequestedBy {
		return fmt.Errorf("%s requested this promotion and cannot approve it (four-eyes)", v.Approver)
	}
	for _, a := range w.current() {
		if a.Approver == v.Approver {
			return fmt.Errorf("%s has already voted (%s)", v.Approver, a.Decision)
		}
	}
	return nil
}

func (w *promotion) vote(ctx workflow.Context, v Vote, via string) error {
	if v.Via != "" {
		via = v.Via
	}
	a := modelplane.Approval{Approver: v.Approver, Decision: v.Decision, Comment: v.Comment, Via: via, At: workflow.Now(ctx).UTC()}
	var decision *modelplane.PolicyDecision
	if w.gov {
		// Every vote — API, update or Web UI signal — goes through the policy.
		who := modelplane.Principal{Name: v.Approver, Teams: v.Teams, Roles: v.Roles, Method: v.Method}
		if who.Method == "" {
			who.Method = modelplane.AuthUI
		}
		a.Method = who.Method
		a.EvidenceHash = w.evidenceHash()
		if v.EvidenceHash != "" {
			a.EvidenceHash = v.EvidenceHash
		}
		action := "promotion.approve"
		if v.Decision == "reject" {
			action = "promotion.reject"
		}
		d, ok := w.authorize(ctx, action, who, map[string]any{"evidence_hash": a.EvidenceHash, "decision": v.Decision, "via": via})
		if !ok {
			rec := w.record("approval_denied", v.Approver, v.Decision, map[string]any{"via": via, "method": who.Method, "error": d.Reason()})
			rec.Policy, rec.EvidenceHash = &d, a.EvidenceHash
			w.audit.add(ctx, rec)
			w.dirty = true
			return errors.New(d.Reason())
		}
		a.PolicyDecision, decision = d.ID, &d
	}
	w.p.Approvals = append(w.p.Approvals, a)
	rec := w.record("vote", v.Approver, v.Decision, map[string]any{"via": via, "comment": v.Comment, "method": a.Method})
	rec.Policy, rec.EvidenceHash = decision, a.EvidenceHash
	w.audit.add(ctx, rec)
	w.dirty = true
	return nil
}

// systemCaller is modelplane itself deciding a transition (timers, analysis).
var systemCaller = modelplane.Principal{Name: "modelplane", Method: modelplane.AuthSystem}

// evidenceHash is the evidence approvals bind to now.
func (w *promotion) evidenceHash() string {
	if w.p.Validation == nil {
		return ""
	}
	return w.p.Validation.EvidenceHash
}

// authorize asks the policy engine (through an activity, so the answer is
// in history) and audits the decision. An engine failure denies, except for
// rollbacks, which are safety actions and proceed.
func (w *promotion) authorize(ctx workflow.Context, action string, who modelplane.Principal, req map[string]any) (modelplane.PolicyDecision, bool) {
	pi := &policy.PromotionInfo{ID: w.p.ID, RequestedBy: w.p.RequestedBy, Stage: w.p.Stage, EvidenceHash: w.evidenceHash()}
	for _, a := range w.current() {
		pi.Approvals = append(pi.Approvals, policy.ApprovalInfo{Approver: a.Approver, Decision: a.Decision, EvidenceHash: a.EvidenceHash})
	}
	kind := ""
	if w.p.Kind == modelplane.KindMCPServer {
		kind = modelplane.KindMCPServer
	}
	in := activities.AuthorizeInput{Action: action, Caller: who, Kind: kind, Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Promotion: pi, Request: req}
	var d modelplane.PolicyDecision
	if err := workflow.ExecuteActivity(withActivity(ctx, 5), acts.Authorize, in).Get(ctx, &d); err != nil {
		d = modelplane.PolicyDecision{Reasons: []string{"policy engine unavailable: " + errText(err)}}
		if action == "promotion.rollback" {
			d.Allow = true
		}
	}
	if who.Method == modelplane.AuthSystem {
		rec := w.record("policy_decision", who.Name, map[bool]string{true: "allow", false: "deny"}[d.Allow], map[string]any{"action": action})
		rec.Policy = &d
		w.audit.add(ctx, rec)
	}
	return d, d.Allow
}

// current are the votes given on the current evidence: only they count.
func (w *promotion) current() []modelplane.Approval {
	ev := w.evidenceHash()
	var out []modelplane.Approval
	for _, a := range w.p.Approvals {
		if ev == "" || a.EvidenceHash == "" || a.EvidenceHash == ev {
			out = append(out, a)
		}
	}
	return out
}

// revalidate runs validation again after the evidence changed; approvals on
// the old evidence stop counting. It returns a terminal status if the new
// evidence fails validation.
func (w *promotion) revalidate(ctx workflow.Context) (status, reason string) {
	w.evidenceStale = false
	ref := activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}
	var vr activities.ValidateResult
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.Validate, activities.ValidateInput{VersionRef: ref, Metrics: w.p.Metrics}).Get(ctx, &vr); err != nil {
		return modelplane.StatusFailed, "validate: " + errText(err)
	}
	old := w.evidenceHash()
	w.p.Validation = &vr.Report
	if vr.Report.EvidenceHash != old {
		rec := w.record("evidence_changed", "system", "revalidated", map[string]any{"previous": old, "report": vr.Report, "approvals_voided": len(w.p.Approvals) - len(w.current())})
		rec.EvidenceHash = vr.Report.EvidenceHash
		w.audit.add(ctx, rec)
	}
	if !vr.Report.Passed {
		return modelplane.StatusFailedValidation, "validation failed: " + strings.Join(vr.Report.Failed(), ", ")
	}
	return "", ""
}

func (w *promotion) checkRollback(r RollbackRequest) error {
	if modelplane.Terminal(w.p.Status) {
		return fmt.Errorf("promotion %s has ended (%s)", w.p.ID, w.p.Status)
	}
	if strings.TrimSpace(r.Actor) == "" {
		return errors.New("actor is required")
	}
	if w.abort != nil {
		return fmt.Errorf("promotion %s is already rolling back: %s", w.p.ID, w.abort.Reason)
	}
	return nil
}

func (w *promotion) requestRollback(r RollbackRequest) {
	w.abort = &abort{Cause: modelplane.CauseManual, Actor: r.Actor, Reason: "manual rollback by " + r.Actor + ": " + nonEmpty(r.Reason, "no reason given")}
}

func (w *promotion) checkDecision(d Decision) error {
	if w.p.Stage != modelplane.StageAwaitingDecision {
		return fmt.Errorf("promotion %s is not waiting for a decision (stage %s)", w.p.ID, w.p.Stage)
	}
	if strings.TrimSpace(d.Actor) == "" {
		return errors.New("actor is required")
	}
	if d.Decision != "promote" && d.Decision != "rollback" {
		return fmt.Errorf("decision must be promote or rollback, got %q", d.Decision)
	}
	return nil
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
	w.audit.add(ctx, w.record("stage", "system", stage, map[string]any{"status": w.p.Status, "note": note}))
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
	if err := workflow.ExecuteActivity(withActivity(ctx, 20), acts.RecordProgress, in).Get(ctx, nil); err != nil {
		logger(ctx, w.p.ID, w.p.Model, w.p.Target).Error("record progress failed", "error", err)
		w.audit.pending = append(in.Audit, w.audit.pending...)
		return
	}
	if events := eventsOf(in.Audit); len(events) > 0 && publishing(ctx) {
		w.published = append(w.published, workflow.ExecuteActivity(withPublish(ctx), acts.Publish, activities.PublishInput{Events: events}))
	}
}

func (w *promotion) finish(ctx workflow.Context, status, reason string) modelplane.Promotion {
	now := workflow.Now(ctx).UTC()
	w.p.Status, w.p.Reason, w.p.FinishedAt = status, reason, &now
	w.audit.add(ctx, w.record("finished", "system", status, map[string]any{"reason": reason}))
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

// --- approval ---

// approve waits for the quorum. It returns a terminal status when the promotion ends here.
func (w *promotion) approve(ctx workflow.Context) (status, reason string) {
	required := w.p.RequiredApprovals
	if required == 0 {
		w.audit.add(ctx, w.record("approval_not_required", "system", "approve", map[string]any{"risk_tier": w.tier}))
		return "", ""
	}
	w.stage(ctx, modelplane.StageAwaitingApproval, fmt.Sprintf("%d approval(s) required", required))
	timeout := w.p.ApprovalTimeout.D()
	if timeout <= 0 {
		timeout = modelplane.DefaultApprovalTimeout
	}
	start := workflow.Now(ctx)
	escalateAfter := timeout / 2
	if d := w.p.EscalateAfter.D(); d > 0 && d < timeout {
		escalateAfter = d
	}
	escalateAt, expireAt := start.Add(escalateAfter), start.Add(timeout)
	escalated := false
	for {
		if w.evidenceStale {
			if status, reason := w.revalidate(ctx); status != "" {
				return status, reason
			}
			w.flush(ctx, nil)
		}
		approvals, rejectedBy := w.tally()
		if rejectedBy != "" {
			return modelplane.StatusRejected, "rejected by " + rejectedBy
		}
		if approvals >= required {
			w.audit.add(ctx, w.record("approved", "system", "approve", map[string]any{"approvals": w.p.Approvals, "waited_seconds": workflow.Now(ctx).Sub(start).Seconds()}))
			return "", ""
		}
		if w.abort != nil {
			return modelplane.StatusRolledBack, w.abort.Reason + " (before any traffic moved)"
		}
		if w.dirty {
			w.flush(ctx, nil)
			continue
		}
		deadline := expireAt
		if !escalated {
			deadline = escalateAt
		}
		ok, err := workflow.AwaitWithTimeout(ctx, deadline.Sub(workflow.Now(ctx)), func() bool { return w.dirty || w.abort != nil })
		if err != nil {
			return modelplane.StatusFailed, "approval wait: " + err.Error()
		}
		if ok {
			continue
		}
		if !escalated {
			escalated = true
			w.audit.add(ctx, w.record("approval_escalated", "system", "escalate", map[string]any{"waited": escalateAfter.String(), "approvals": approvals, "required": required}))
			w.flush(ctx, nil)
			continue
		}
		return modelplane.StatusExpired, fmt.Sprintf("no quorum within %s (%d of %d approvals)", timeout, approvals, required)
	}
}

func (w *promotion) tally() (approvals int, rejectedBy string) {
	for _, a := range w.current() {
		switch a.Decision {
		case "approve":
			approvals++
		case "reject":
			return approvals, a.Approver
		}
	}
	return approvals, ""
}

// --- rollout ---

func (w *promotion) nextMutation() string {
	w.mutSeq++
	return fmt.Sprintf("%s/m%d", w.p.ID, w.mutSeq)
}

func (w *promotion) deployment(ctx workflow.Context, candidate string) *modelplane.Deployment {
	return &modelplane.Deployment{Model: w.p.Model, Target: w.p.Target, Stable: w.stable, PreviousStable: w.before.PreviousStable, Candidate: candidate, Traffic: w.p.Traffic, UpdatedAt: workflow.Now(ctx).UTC()}
}

// mark mirrors a stage into the registries that keep the version (runs
// that await operations only). A failure is audited and returned: most
// callers go on, but the champion move is a saga step.
func (w *promotion) mark(ctx workflow.Context, stage, previous, note string) error {
	if !w.ops {
		return nil
	}
	c := modelplane.StageChange{Model: w.p.Model, Version: w.p.Version, Stage: stage, Previous: previous, PromotionID: w.p.ID, Note: note, Evidence: w.evidence()}
	stager, err := markVersion(ctx, w.p.Target, c)
	switch {
	case err != nil:
		w.audit.add(ctx, w.record("registry_mirror_failed", "system", stage, map[string]any{"error": errText(err)}))
	case stager:
		w.audit.add(ctx, w.record("registry_marked", "system", stage, map[string]any{"previous": previous}))
	}
	return err
}

// evidence is what registries record beside a stage (MLflow tags).
func (w *promotion) evidence() map[string]string {
	ev := map[string]string{"modelplane.promotion_id": w.p.ID, "modelplane.target": w.p.Target}
	if w.p.Validation != nil {
		ev["modelplane.validation"] = map[bool]string{true: "passed", false: "failed"}[w.p.Validation.Passed]
	}
	if who := w.approvers(); len(who) > 0 {
		ev["modelplane.approvers"] = strings.Join(who, ",")
	}
	return ev
}

// approvers are who approved, in order.
func (w *promotion) approvers() []string {
	var who []string
	for _, a := range w.p.Approvals {
		if a.Decision == "approve" {
			who = append(who, a.Approver)
		}
	}
	return who
}

func (w *promotion) setTraffic(ctx workflow.Context, split modelplane.TrafficSplit, note string) error {
	in := activities.TrafficInput{Model: w.p.Model, Target: w.p.Target, Split: split, MutationID: w.nextMutation()}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.SetTraffic, in); err != nil {
		return err
	}
	w.p.Traffic = split
	w.audit.add(ctx, w.record("traffic", "system", split.String(), map[string]any{"mutation_id": in.MutationID, "note": note}))
	w.flush(ctx, w.deployment(ctx, w.p.Version))
	return nil
}

// bake waits d unless something asks to stop; it reports whether to go on.
func (w *promotion) bake(ctx workflow.Context, d time.Duration) bool {
	if w.abort != nil {
		return false
	}
	_, _ = workflow.AwaitWithTimeout(ctx, d, func() bool { return w.abort != nil })
	return w.abort == nil
}

// rollout moves traffic by strategy; false means stop and roll back (w.abort says why).
func (w *promotion) rollout(ctx workflow.Context) bool {
	s := w.p.Strategy
	typ := s.Type
	if w.stable == "" && typ != modelplane.StrategyDirect {
		// Nothing serves yet: there is no stable side to split or compare with.
		w.audit.add(ctx, w.record("strategy_changed", "system", modelplane.StrategyDirect, map[string]any{"requested": typ, "why": "first deployment on this target"}))
		typ = modelplane.StrategyDirect
	}
	if typ == modelplane.StrategyShadow {
		if !w.shadow(ctx, s.Then == modelplane.StrategyDirect) {
			return false
		}
		typ = s.Then
	}
	if w.native && (typ == modelplane.StrategyCanary || typ == modelplane.StrategyBlueGreen) {
		return w.nativeRollout(ctx, typ)
	}
	var err error
	switch typ {
	case modelplane.StrategyDirect:
		w.stage(ctx, modelplane.StageDirect, "")
		err = w.setTraffic(ctx, modelplane.TrafficSplit{w.p.Version: 100}, "direct")
	case modelplane.StrategyCanary:
		w.stage(ctx, modelplane.StageCanary, fmt.Sprintf("steps %v, bake %s", s.Steps, s.Bake))
		for _, weight := range s.Steps {
			split := modelplane.TrafficSplit{w.p.Version: weight}
			if weight < 100 {
				split[w.stable] = 100 - weight
			}
			if w.gov {
				// Each step is a transition: a closed change window stops it.
				if d, ok := w.authorize(ctx, "promotion.step", systemCaller, map[string]any{"weight": weight}); !ok {
					w.abort = &abort{Cause: modelplane.CausePolicy, Actor: "system", Reason: fmt.Sprintf("policy stopped canary step %d%%: %s", weight, d.Reason())}
					return false
				}
			}
			if err = w.setTraffic(ctx, split, fmt.Sprintf("canary step %d%%", weight)); err != nil {
				break
			}
			if !w.bake(ctx, s.Bake.D()) || !w.analyze(ctx, fmt.Sprintf("canary %d%%", weight), s.Bake) {
				return false
			}
		}
	case modelplane.StrategyBlueGreen:
		w.stage(ctx, modelplane.StageBlueGreen, "")
		var ready bool
		ref := activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}
		if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.Ready, ref).Get(ctx, &ready); err != nil || !ready {
			w.abort = &abort{Cause: modelplane.CauseAnalysis, Actor: "system", Reason: fmt.Sprintf("green version %s is not ready on %s", w.p.Version, w.p.Target)}
			return false
		}
		if err = w.setTraffic(ctx, modelplane.TrafficSplit{w.p.Version: 100}, "blue/green switch; "+w.stable+" kept warm"); err == nil {
			if !w.bake(ctx, s.Bake.D()) || !w.analyze(ctx, "bluegreen", s.Bake) {
				return false
			}
		}
	}
	if err != nil {
		// The activity gave up (invalid request or retries exhausted): try to put things back.
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "traffic change failed: " + errText(err)}
		return false
	}
	return true
}

// nativeRollout lets the platform run the canary with its own alarm-driven
// rollback, waits for it, then judges the result like any other step.
func (w *promotion) nativeRollout(ctx workflow.Context, typ string) bool {
	w.stage(ctx, modelplane.StageCanary, "the platform runs the "+typ+" itself (rollout: native), with its alarm rollback")
	in := activities.NativeInput{Model: w.p.Model, Target: w.p.Target, Stable: w.stable, Candidate: w.p.Version, MutationID: w.nextMutation()}
	var op modelplane.Op
	if err := workflow.ExecuteActivity(withActivity(ctx, 0), acts.StartNative, in).Get(ctx, &op); err != nil {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record("native_rollout_started", "system", typ, map[string]any{"mutation_id": in.MutationID, "operation": op.ID}))
	w.flush(ctx, nil)
	st, err := awaitOp(ctx, w.p.Target, op)
	switch {
	case err != nil:
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + errText(err)}
		return false
	case st.NeedsHuman:
		w.abort = &abort{Cause: modelplane.CausePlatformStuck, Actor: "platform", Reason: opFailed{st}.Error()}
		return false
	case st.RolledBack:
		// Traffic is back on the stable version already; say why, in the platform's words.
		w.abort = &abort{Cause: modelplane.CausePlatformRollback, Actor: "platform", Reason: opFailed{st}.Error()}
		return false
	case st.Failed:
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + opFailed{st}.Error()}
		return false
	}
	w.p.Traffic = modelplane.TrafficSplit{w.p.Version: 100}
	w.audit.add(ctx, w.record("traffic", "platform", w.p.Traffic.String(), map[string]any{"mutation_id": in.MutationID, "note": "native rollout finished"}))
	w.flush(ctx, w.deployment(ctx, w.p.Version))
	return w.bake(ctx, w.p.Strategy.Bake.D()) && w.analyze(ctx, "native "+typ, w.p.Strategy.Bake)
}

// shadow mirrors requests to the candidate and compares it with the stable
// version; promote asks the platform to make the shadow serve when it stops.
func (w *promotion) shadow(ctx workflow.Context, promote bool) bool {
	s := w.p.Strategy
	w.stage(ctx, modelplane.StageShadow, fmt.Sprintf("mirroring %d%% for %s", s.ShadowPercent, s.Bake))
	start := activities.ShadowInput{Model: w.p.Model, Target: w.p.Target, Shadow: &modelplane.Shadow{Version: w.p.Version, Percent: s.ShadowPercent}, MutationID: w.nextMutation()}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.Shadow, start); err != nil {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "start shadow: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record("shadow_started", "system", fmt.Sprintf("%d%%", s.ShadowPercent), map[string]any{"mutation_id": start.MutationID}))
	ok := w.bake(ctx, s.Bake.D()) && w.analyze(ctx, "shadow", s.Bake)
	stop := activities.ShadowInput{Model: w.p.Model, Target: w.p.Target, MutationID: w.nextMutation(), Promote: ok && promote && w.ops}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.Shadow, stop); err != nil && ok {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "stop shadow: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record("shadow_stopped", "system", "", map[string]any{"mutation_id": stop.MutationID}))
	return ok
}

// analyze measures the candidate (and, in shadow, the stable version for
// comparison) and applies the analysis run. It returns whether to go on.
func (w *promotion) analyze(ctx workflow.Context, step string, window modelplane.Duration) bool {
	for {
		var h modelplane.Health
		phase, msg := "", ""
		in := activities.HealthInput{VersionRef: activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}, Window: window}
		if err := workflow.ExecuteActivity(withActivity(ctx, 3), acts.Health, in).Get(ctx, &h); err != nil {
			phase, msg = modelplane.PhaseError, errText(err)
		} else {
			phase, msg = modelplane.Evaluate(h, w.p.Analysis.Thresholds)
			if step == "shadow" && w.stable != "" && phase == modelplane.PhaseSuccessful {
				var sh modelplane.Health
				in.Version = w.stable
				if workflow.ExecuteActivity(withActivity(ctx, 3), acts.Health, in).Get(ctx, &sh) == nil && !sh.NoData {
					msg = fmt.Sprintf("candidate error_rate %.4g / p99 %.4gms vs stable %.4g / %.4gms", h.ErrorRate, h.LatencyP99Ms, sh.ErrorRate, sh.LatencyP99Ms)
				}
			}
		}
		w.p.AnalysisResults = append(w.p.AnalysisResults, modelplane.AnalysisResult{Step: step, Version: w.p.Version, Phase: phase, Health: h, Message: msg, At: workflow.Now(ctx).UTC()})
		w.audit.add(ctx, w.record("analysis", "system", phase, map[string]any{"step": step, "message": msg}))
		if len(w.p.Analysis.Checks) > 0 && workflow.GetVersion(ctx, "metric-checks", workflow.DefaultVersion, 1) == 1 {
			var bad []string
			phase, bad = w.metricChecks(ctx, step, window, phase)
			if len(bad) > 0 {
				msg = strings.Join(bad, "; ")
			}
			if w.abort != nil {
				// Stopped while waiting between measurements (drift, manual): keep that cause.
				return false
			}
		}
		switch w.run.Add(phase) {
		case modelplane.PhaseFailed:
			w.abort = &abort{Cause: modelplane.CauseAnalysis, Actor: "system", Reason: fmt.Sprintf("analysis failed at %s: %s", step, msg)}
			return false
		case modelplane.PhaseInconclusive:
			return w.awaitDecision(ctx, step, msg)
		}
		w.flush(ctx, nil)
		if phase != modelplane.PhaseError {
			return w.abort == nil
		}
		// Argo retries errored measurements after a short pause.
		if !w.bake(ctx, 10*time.Second) {
			return false
		}
	}
}

// metricChecks measures every check (Count times, Interval apart) and returns
// the worst phase together with the provider's, plus what was not healthy.
func (w *promotion) metricChecks(ctx workflow.Context, step string, window modelplane.Duration, health string) (string, []string) {
	phases := []string{health}
	var bad []string
	vars := modelplane.QueryVars{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Window: modelplane.PromDuration(window.D())}
	for _, c := range w.p.Analysis.Checks {
		count, interval := c.Count, c.Interval.D()
		if count <= 0 {
			count = 1
		}
		if interval <= 0 {
			interval = 10 * time.Second
		}
		for i := 0; i < count; i++ {
			if i > 0 && !w.bake(ctx, interval) {
				return modelplane.Worst(phases...), bad // w.abort says why; the caller stops
			}
			phase, msg, res := measureCheck(ctx, w.p.Target, c, vars)
			r := modelplane.AnalysisResult{Step: step, Version: w.p.Version, Check: c.Name, Query: res.Query, Phase: phase, Message: msg, At: workflow.Now(ctx).UTC()}
			if phase != modelplane.PhaseError && !res.Empty {
				v := res.Value
				r.Value = &v
			}
			w.p.AnalysisResults = append(w.p.AnalysisResults, r)
			w.audit.add(ctx, w.record("analysis", "system", phase, map[string]any{"step": step, "check": c.Name, "query": res.Query, "message": msg}))
			phases = append(phases, phase)
			if phase != modelplane.PhaseSuccessful {
				bad = append(bad, msg)
			}
		}
	}
	return modelplane.Worst(phases...), bad
}

func (w *promotion) awaitDecision(ctx workflow.Context, step, msg string) bool {
	prev := w.p.Stage
	w.decision = nil
	w.stage(ctx, modelplane.StageAwaitingDecision, fmt.Sprintf("inconclusive at %s (%s): promote or rollback?", step, msg))
	timeout := w.p.Analysis.DecisionTimeout.D()
	ok, _ := workflow.AwaitWithTimeout(ctx, timeout, func() bool { return w.decision != nil || w.abort != nil })
	if w.abort != nil {
		return false
	}
	if !ok {
		w.abort = &abort{Cause: modelplane.CauseDecisionTimeout, Actor: "system", Reason: fmt.Sprintf("no decision within %s after inconclusive analysis at %s", timeout, step)}
		return false
	}
	d := *w.decision
	w.audit.add(ctx, w.record("decision", d.Actor, d.Decision, map[string]any{"step": step}))
	if d.Decision == "rollback" {
		w.abort = &abort{Cause: modelplane.CauseManual, Actor: d.Actor, Reason: fmt.Sprintf("%s chose rollback after inconclusive analysis at %s", d.Actor, step)}
		return false
	}
	w.stage(ctx, prev, "promoted by "+d.Actor+" after inconclusive analysis")
	return true
}

// monitor runs the same analysis over the watch window after full rollout.
func (w *promotion) monitor(ctx workflow.Context) bool {
	window := w.p.Strategy.MonitorWindow.D()
	interval := w.p.Strategy.Bake.D()
	if interval <= 0 || interval > window {
		interval = window
	}
	for elapsed := time.Duration(0); elapsed < window; elapsed += interval {
		if !w.bake(ctx, interval) || !w.analyze(ctx, "monitor", modelplane.Duration(interval)) {
			return false
		}
	}
	return true
}

// --- endings ---

func (w *promotion) succeed(ctx workflow.Context) modelplane.Promotion {
	previous := w.stable
	// Traffic and the registries' champion pointer must agree at rest: the
	// alias move is the saga's second step, and if it keeps failing the first
	// (traffic) is compensated rather than leaving them apart.
	if err := w.mark(ctx, modelplane.VersionChampion, previous, ""); err != nil && previous != "" {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "the registry's champion alias could not be moved to " + w.p.Version + " (" + errText(err) + "); traffic restored to " + previous}
		w.audit.add(ctx, w.record("saga_compensated", "system", "traffic_restored", map[string]any{"step": "champion alias", "error": errText(err)}))
		return w.rollback(ctx)
	}
	dep := &modelplane.Deployment{Model: w.p.Model, Target: w.p.Target, Stable: w.p.Version, PreviousStable: previous, Traffic: modelplane.TrafficSplit{w.p.Version: 100}, UpdatedAt: workflow.Now(ctx).UTC()}
	w.stable = w.p.Version
	w.flush(ctx, dep)
	// The version before the previous one is no longer a rollback target.
	if old := w.before.PreviousStable; old != "" && old != previous && old != w.p.Version {
		ref := activities.VersionRef{Model: w.p.Model, Version: old, Target: w.p.Target}
		if err := mutate(ctx, withActivity(ctx, 5), w.ops, w.p.Target, acts.Retire, ref); err == nil {
			w.audit.add(ctx, w.record("retired", "system", old, nil))
		}
	}
	w.handOver(ctx, GuardianUpdate{Stable: w.p.Version, Previous: previous, PromotionID: w.p.ID})
	return w.finish(ctx, modelplane.StatusSucceeded, fmt.Sprintf("%s serves 100%% of %s", w.p.Version, w.p.Target))
}

// handOver tells the deployment guardian (starting it if needed) what is stable now.
func (w *promotion) handOver(ctx workflow.Context, u GuardianUpdate) {
	sig, _ := json.Marshal(u)
	start, _ := json.Marshal(GuardianInput{Model: w.p.Model, Target: w.p.Target})
	in := activities.SignalWithStartInput{WorkflowID: GuardianWorkflowID(w.p.Model, w.p.Target), WorkflowType: GuardianWorkflow, TaskQueue: workflow.GetInfo(ctx).TaskQueueName,
		Signal: Promoted, SignalArg: sig, StartArg: start, Summary: fmt.Sprintf("Guarding %s on %s", w.p.Model, w.p.Target)}
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.SignalWithStart, in).Get(ctx, nil); err != nil {
		w.audit.add(ctx, w.record("guardian_handover_failed", "system", "", map[string]any{"error": errText(err)}))
	}
}

// rollback returns traffic to the stable version first (fast path), then cleans up.
func (w *promotion) rollback(ctx workflow.Context) modelplane.Promotion {
	a := w.abort
	if a == nil {
		a = &abort{Cause: modelplane.CauseAnalysis, Actor: "system", Reason: "stopped"}
	}
	if a.Cause == modelplane.CausePlatformStuck {
		// Touching the endpoint now could make things worse: stop and page.
		w.audit.add(ctx, w.record("rollback", a.Actor, "needs_human", map[string]any{"cause": a.Cause, "reason": a.Reason}))
		return w.finish(ctx, modelplane.StatusFailed, a.Reason)
	}
	if w.stable == "" {
		// Nothing to return to: traffic stays where it is, a human decides.
		w.audit.add(ctx, w.record("rollback", a.Actor, "impossible", map[string]any{"cause": a.Cause, "reason": a.Reason}))
		return w.finish(ctx, modelplane.StatusFailed, a.Reason+"; no previous version to roll back to — needs a human")
	}
	if w.gov {
		// Asked and recorded, never blocking: a rollback is a safety action.
		w.authorize(ctx, "promotion.rollback", systemCaller, map[string]any{"cause": a.Cause, "requested_by": a.Actor})
	}
	split := modelplane.TrafficSplit{w.stable: 100}
	in := activities.TrafficInput{Model: w.p.Model, Target: w.p.Target, Split: split, MutationID: w.nextMutation()}
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second},
	})
	if w.p.Traffic[w.p.Version] > 0 {
		if err := mutate(ctx, rctx, w.ops, w.p.Target, acts.SetTraffic, in); err != nil {
			w.audit.add(ctx, w.record("rollback", a.Actor, "failed", map[string]any{"cause": a.Cause, "error": errText(err)}))
			return w.finish(ctx, modelplane.StatusFailed, a.Reason+"; rollback failed: "+errText(err)+" — needs a human")
		}
		w.p.Traffic = split
	}
	status := modelplane.StatusRolledBack
	if a.Cause == modelplane.CauseProvider {
		// The platform refused or kept failing: traffic is back on the stable
		// version (the audit says so), but the promotion itself failed.
		status = modelplane.StatusFailed
	}
	w.audit.add(ctx, w.record("rollback", a.Actor, "rolled_back", map[string]any{"cause": a.Cause, "reason": a.Reason, "to": w.stable, "mutation_id": in.MutationID}))
	w.enter(ctx, modelplane.StageRollingBack, a.Reason)
	w.flush(ctx, &modelplane.Deployment{Model: w.p.Model, Target: w.p.Target, Stable: w.stable, PreviousStable: w.before.PreviousStable, Traffic: split, UpdatedAt: workflow.Now(ctx).UTC()})
	w.mark(ctx, modelplane.VersionRolledBack, w.stable, a.Reason)
	if a.Cause == modelplane.CauseDrift {
		w.retrain(ctx, a)
	}
	return w.finish(ctx, status, a.Reason)
}

func (w *promotion) retrain(ctx workflow.Context, a *abort) {
	decision, details := requestRetrain(ctx, activities.RetrainInput{EventID: w.p.ID + "/retrain", Model: w.p.Model, Target: w.p.Target, Version: w.p.Version, Reason: a.Reason, Drift: a.Drift})
	w.audit.add(ctx, w.record("retrain", "system", decision, details))
}

func errText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	return err.Error()
}
