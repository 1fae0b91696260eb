package workflows

import (
	"errors"
	"fmt"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

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
					w.audit.add(ctx, w.record(modelplane.AuditApprovalDenied, v.Approver, v.Decision, details))
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
			rec := w.record(modelplane.AuditApprovalDenied, v.Approver, v.Decision, map[string]any{"via": via, "method": who.Method, "error": d.Reason()})
			rec.Policy, rec.EvidenceHash = &d, a.EvidenceHash
			w.audit.add(ctx, rec)
			w.dirty = true
			return errors.New(d.Reason())
		}
		a.PolicyDecision, decision = d.ID, &d
	}
	w.p.Approvals = append(w.p.Approvals, a)
	rec := w.record(modelplane.AuditVote, v.Approver, v.Decision, map[string]any{"via": via, "comment": v.Comment, "method": a.Method})
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
	pi := &modelplane.PolicyPromotion{ID: w.p.ID, RequestedBy: w.p.RequestedBy, Stage: w.p.Stage, EvidenceHash: w.evidenceHash()}
	for _, a := range w.current() {
		pi.Approvals = append(pi.Approvals, modelplane.PolicyApproval{Approver: a.Approver, Decision: a.Decision, EvidenceHash: a.EvidenceHash})
	}
	kind := ""
	if w.p.Kind == modelplane.KindMCPServer {
		kind = modelplane.KindMCPServer
	}
	in := activities.AuthorizeInput{Action: action, Caller: who, Kind: kind, Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Promotion: pi, Request: req}
	var d modelplane.PolicyDecision
	if err := w.step(ctx, 5, acts.Authorize, in).Get(ctx, &d); err != nil {
		d = modelplane.PolicyDecision{Reasons: []string{"policy engine unavailable: " + errText(err)}}
		if action == "promotion.rollback" {
			d.Allow = true
		}
	}
	if who.Method == modelplane.AuthSystem {
		rec := w.record(modelplane.AuditPolicyDecision, who.Name, map[bool]string{true: "allow", false: "deny"}[d.Allow], map[string]any{"action": action})
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
	if err := w.step(ctx, 10, acts.Validate, activities.ValidateInput{VersionRef: ref, Metrics: w.p.Metrics}).Get(ctx, &vr); err != nil {
		return modelplane.StatusFailed, "validate: " + errText(err)
	}
	old := w.evidenceHash()
	w.p.Validation = &vr.Report
	if vr.Report.EvidenceHash != old {
		rec := w.record(modelplane.AuditEvidenceChanged, "system", "revalidated", map[string]any{"previous": old, "report": vr.Report, "approvals_voided": len(w.p.Approvals) - len(w.current())})
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
