package workflows

import (
	"fmt"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// mcpLifecycle promotes an MCP server version to a channel: validate (tool
// contract) → approve (the same quorum, four-eyes and audit as models) →
// check the live tools still match what was approved → publish to the MCP
// registry → move the channel, deprecating the replaced version → watch →
// done, or roll the channel back on request.
func (w *promotion) mcpLifecycle(ctx workflow.Context) modelplane.Promotion {
	ref := activities.MCPRef{Name: w.p.Model, Version: w.p.Version, Channel: w.p.Target}
	status := func(s, reason string, contract map[string]string, hash string) {
		in := activities.MCPStatusInput{MCPRef: ref, Status: s, Reason: reason, Contract: contract, ContractHash: hash}
		if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.SetMCPStatus, in).Get(ctx, nil); err != nil {
			w.audit.add(ctx, w.record(modelplane.AuditMCPStatusFailed, "system", s, map[string]any{"error": errText(err)}))
		}
	}

	w.stage(ctx, modelplane.StageValidating, "handshake, tool inventory, schemas, prompt-injection markers, fingerprints")
	var vr activities.ValidateResult
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.ValidateMCP, ref).Get(ctx, &vr); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "validate: "+errText(err))
	}
	w.p.Validation, w.p.RequiredApprovals, w.tier = &vr.Report, vr.RequiredApprovals, vr.RiskTier
	w.stable, w.p.StableVersion = vr.Stable, vr.Stable
	w.audit.add(ctx, w.record(modelplane.AuditValidated, "system", map[bool]string{true: "passed", false: "failed"}[vr.Report.Passed],
		map[string]any{"report": vr.Report, "evidence_hash": vr.Report.EvidenceHash}))
	if !vr.Report.Passed {
		return w.finish(ctx, modelplane.StatusFailedValidation, "validation failed: "+strings.Join(vr.Report.Failed(), ", "))
	}

	if st, reason := w.approve(ctx); st != "" {
		if st == modelplane.StatusRejected {
			status(modelplane.MCPRejected, reason, nil, "")
		}
		return w.finish(ctx, st, reason)
	}
	// The approval is bound to this contract: publishing re-checks it live.
	status(modelplane.MCPApproved, "", vr.Report.Contract, vr.Report.EvidenceHash)
	w.audit.add(ctx, w.record(modelplane.AuditContractApproved, "system", vr.Report.EvidenceHash, map[string]any{"tools": len(vr.Report.Contract)}))

	w.stage(ctx, modelplane.StageDirect, "publishing to the MCP registry and moving channel "+w.p.Target)
	var published string
	pin := activities.PublishMCPInput{MCPRef: ref, PromotionID: w.p.ID, Approvers: w.approvers()}
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.PublishMCP, pin).Get(ctx, &published); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "publish: "+errText(err))
	}
	w.audit.add(ctx, w.record(modelplane.AuditPublished, "system", published, map[string]any{"evidence_hash": vr.Report.EvidenceHash}))
	var previous string
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.MoveChannel, ref).Get(ctx, &previous); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, "move channel: "+errText(err))
	}
	w.stable = previous
	w.p.Traffic = modelplane.TrafficSplit{w.p.Version: 100}
	w.audit.add(ctx, w.record(modelplane.AuditChannelMoved, "system", w.p.Target, map[string]any{"to": w.p.Version, "from": previous}))
	w.flush(ctx, nil)
	if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.EnsureRevalidation, ref).Get(ctx, nil); err != nil {
		w.audit.add(ctx, w.record(modelplane.AuditRevalidationScheduleFail, "system", "", map[string]any{"error": errText(err)}))
	}

	w.stage(ctx, modelplane.StageMonitoring, fmt.Sprintf("watching for %s", w.p.Strategy.MonitorWindow))
	if w.bake(ctx, w.p.Strategy.MonitorWindow.D()) {
		return w.finish(ctx, modelplane.StatusSucceeded, fmt.Sprintf("%s %s serves channel %s", w.p.Model, w.p.Version, w.p.Target))
	}
	a := w.abort
	if previous == "" {
		w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "impossible", map[string]any{"cause": a.Cause, "reason": a.Reason}))
		return w.finish(ctx, modelplane.StatusFailed, a.Reason+"; no previous version on the channel — needs a human")
	}
	w.enter(ctx, modelplane.StageRollingBack, a.Reason)
	rin := activities.RollbackChannelInput{MCPRef: ref, Previous: previous, Reason: a.Reason}
	if err := workflow.ExecuteActivity(withActivity(ctx, 0), acts.RollbackChannel, rin).Get(ctx, nil); err != nil {
		return w.finish(ctx, modelplane.StatusFailed, a.Reason+"; rollback failed: "+errText(err))
	}
	w.p.Traffic = modelplane.TrafficSplit{previous: 100}
	w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "rolled_back", map[string]any{"cause": a.Cause, "reason": a.Reason, "to": previous}))
	return w.finish(ctx, modelplane.StatusRolledBack, a.Reason)
}

// MCPRevalidate is run by each server's re-validation schedule.
func MCPRevalidate(ctx workflow.Context, in activities.MCPRef) (activities.RevalidateResult, error) {
	var res activities.RevalidateResult
	err := workflow.ExecuteActivity(withActivity(ctx, 5), acts.RevalidateMCP, in).Get(ctx, &res)
	return res, err
}
