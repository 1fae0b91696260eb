package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// --- endings ---

func (w *promotion) succeed(ctx workflow.Context) modelplane.Promotion {
	previous := w.stable
	// Traffic and the registries' champion pointer must agree at rest: the
	// alias move is the saga's second step, and if it keeps failing the first
	// (traffic) is compensated rather than leaving them apart.
	if err := w.mark(ctx, modelplane.VersionChampion, previous, ""); err != nil && previous != "" {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "the registry's champion alias could not be moved to " + w.p.Version + " (" + errText(err) + "); traffic restored to " + previous}
		w.audit.add(ctx, w.record(modelplane.AuditSagaCompensated, "system", "traffic_restored", map[string]any{"step": "champion alias", "error": errText(err)}))
		return w.rollback(ctx)
	}
	dep := &modelplane.Deployment{Model: w.p.Model, Target: w.p.Target, Stable: w.p.Version, PreviousStable: previous, Traffic: modelplane.TrafficSplit{w.p.Version: 100}, UpdatedAt: workflow.Now(ctx).UTC()}
	w.stable = w.p.Version
	w.flush(ctx, dep)
	// The version before the previous one is no longer a rollback target.
	if old := w.before.PreviousStable; old != "" && old != previous && old != w.p.Version {
		ref := activities.VersionRef{Model: w.p.Model, Version: old, Target: w.p.Target}
		if err := mutate(ctx, withActivity(ctx, 5), w.ops, w.p.Target, acts.Retire, ref); err == nil {
			w.audit.add(ctx, w.record(modelplane.AuditRetired, "system", old, nil))
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
		w.audit.add(ctx, w.record(modelplane.AuditGuardianHandoverFail, "system", "", map[string]any{"error": errText(err)}))
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
		w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "needs_human", map[string]any{"cause": a.Cause, "reason": a.Reason}))
		return w.finish(ctx, modelplane.StatusFailed, a.Reason)
	}
	if w.stable == "" {
		// Nothing to return to: traffic stays where it is, a human decides.
		w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "impossible", map[string]any{"cause": a.Cause, "reason": a.Reason}))
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
			w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "failed", map[string]any{"cause": a.Cause, "error": errText(err)}))
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
	w.audit.add(ctx, w.record(modelplane.AuditRollback, a.Actor, "rolled_back", map[string]any{"cause": a.Cause, "reason": a.Reason, "to": w.stable, "mutation_id": in.MutationID}))
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
	w.audit.add(ctx, w.record(modelplane.AuditRetrain, "system", decision, details))
}

func errText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Error()
	}
	return err.Error()
}
