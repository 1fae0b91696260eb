package workflows

import (
	"fmt"

	"github.com/modelplane/modelplane"
	"go.temporal.io/sdk/workflow"
)

// --- approval ---

// approve waits for the quorum. It returns a terminal status when the promotion ends here.
func (w *promotion) approve(ctx workflow.Context) (status, reason string) {
	required := w.p.RequiredApprovals
	if required == 0 {
		w.audit.add(ctx, w.record(modelplane.AuditApprovalNotRequired, "system", "approve", map[string]any{"risk_tier": w.tier}))
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
			w.audit.add(ctx, w.record(modelplane.AuditApproved, "system", "approve", map[string]any{"approvals": w.p.Approvals, "waited_seconds": workflow.Now(ctx).Sub(start).Seconds()}))
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
			w.audit.add(ctx, w.record(modelplane.AuditApprovalEscalated, "system", "escalate", map[string]any{"waited": escalateAfter.String(), "approvals": approvals, "required": required}))
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
