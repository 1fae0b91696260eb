package workflows

import (
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// Local steps (change "local-steps", version 1): a model promotion runs the
// steps where a round trip through the Temporal server buys nothing as
// local activities, in the worker that runs its workflow task — the store
// projection and audit (RecordProgress), validation, the policy's
// decisions, the deployment read, registering the version and mirroring a
// stage into registries. Their results are recorded in history as markers,
// they retry as before, and their inputs, calls and order are those of the
// activities they replace, so the audit chain, the store's projection and
// the events are unchanged. What changes is the number of workflow tasks and
// activity tasks: a promotion parks on approval after one workflow task, and
// a rollback asks the policy and moves traffic in the same workflow task.
// Traffic changes, health, hand-over, retraining and event delivery stay
// activities.
//
// A run on this branch also takes the branches of the changes that came
// before it (provider-operations, governance, stamped-principal,
// publish-events) without asking, so it records one version marker where
// it recorded four; and it schedules no event delivery when the worker that
// wrote the projection has no sink to deliver to.
const localSteps = "local-steps"

// withLocal: the options of withActivity for a local activity. The whole
// retry budget must fit ScheduleToClose (which otherwise defaults to one
// attempt's StartToClose); maxAttempts bounds it as for the activity.
func withLocal(ctx workflow.Context, maxAttempts int32) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            retries(maxAttempts),
	})
}

// step runs activity with withActivity(ctx, maxAttempts): as a local
// activity on the local-steps branch, as an activity before it.
func (w *promotion) step(ctx workflow.Context, maxAttempts int32, activity, in any) workflow.Future {
	if w.local {
		return workflow.ExecuteLocalActivity(withLocal(ctx, maxAttempts), activity, in)
	}
	return workflow.ExecuteActivity(withActivity(ctx, maxAttempts), activity, in)
}

// register is the Register step: mutate with withActivity(ctx, 10) before
// local-steps, a local activity and then the wait for its operation after.
func (w *promotion) register(ctx workflow.Context, ref activities.VersionRef) error {
	if !w.local {
		return mutate(ctx, withActivity(ctx, 10), w.ops, w.p.Target, acts.Register, ref)
	}
	var op modelplane.Op
	if err := workflow.ExecuteLocalActivity(withLocal(ctx, 10), acts.Register, ref).Get(ctx, &op); err != nil {
		return err
	}
	if w.batched && op.Pending() {
		// A platform may take minutes to register: show that it does.
		w.flush(ctx, nil)
	}
	st, err := awaitOp(ctx, w.p.Target, op)
	if err == nil && st.Failed {
		err = opFailed{st}
	}
	return err
}

// markVersion is markVersion, as a local activity on the local-steps
// branch; on batched-progress, only where validation found a registry to
// mirror into (elsewhere the activity reached none and reported false).
func (w *promotion) markVersion(ctx workflow.Context, c modelplane.StageChange) (stager bool, err error) {
	if !w.local {
		return markVersion(ctx, w.p.Target, c)
	}
	if w.batched && !w.mirrors {
		return false, nil
	}
	err = workflow.ExecuteLocalActivity(withLocal(ctx, 8), acts.MarkVersion, activities.MarkInput{Target: w.p.Target, Change: c}).Get(ctx, &stager)
	return stager, err
}

// Batched progress (change "batched-progress", version 1): in its first
// workflow task a model promotion writes the store once where it wrote up
// to five times, and skips what it already knows.
//   - Registering and validating are entered, not projected at once: their
//     audit records and the projection go out with the next flush (the
//     approval wait, the first rollout stage or the end; registering's at
//     once when the platform is still at it), in the same order and with
//     the same keys.
//   - Validation also reports whether a stage change reaches any registry
//     and what the deployment was; where none does, MarkVersion is not
//     called (it reached none and reported false), and when no approval
//     was waited for, the deployment validation read is used instead of
//     reading it again.
//
// A run on this branch takes local-steps (and the changes it takes) without
// asking, so it still records one version marker.
const batchedProgress = "batched-progress"

// pass enters a stage the run passes through without waiting: projected at
// once before batched-progress, with the next flush after it.
func (w *promotion) pass(ctx workflow.Context, stage string) {
	if w.batched {
		w.enter(ctx, stage, "")
		return
	}
	w.stage(ctx, stage, "")
}

// deploymentNow reads what serves on the target after approval. On
// batched-progress, with no approval waited for, it is what validation read
// moments before, with nothing waited for since.
func (w *promotion) deploymentNow(ctx workflow.Context, ref activities.VersionRef) (modelplane.Deployment, error) {
	if w.batched && w.validated != nil && w.p.RequiredApprovals == 0 {
		return *w.validated, nil
	}
	var dep modelplane.Deployment
	err := w.step(ctx, 10, acts.Deployment, ref).Get(ctx, &dep)
	return dep, err
}
