package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// Pipeline local steps (change "pipeline-local-steps", version 1): a
// pipeline run reads and writes the store — its audit and status
// (RecordProgress), the freeze switch, soak marks, the policy's decisions
// and each target's promotion record — as local activities, in the worker
// that runs its workflow task, as promotions do since local-steps. Inputs,
// calls and their order are those of the activities they replace, so the
// audit chain and the store are unchanged; each round trip through the
// server's matching and history services is gone. Child promotions,
// timers and the wave rollback's signals stay as they are.
const pipelineLocalSteps = "pipeline-local-steps"

// pipelineLocal reports whether this run takes the pipeline-local-steps branch.
func pipelineLocal(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, pipelineLocalSteps, workflow.DefaultVersion, 1) == 1
}

// step runs activity with withActivity(ctx, maxAttempts) before
// pipeline-local-steps and as a local activity after it.
func (r *pipelineRun) step(ctx workflow.Context, maxAttempts int32, activity any, args ...any) workflow.Future {
	if r.local {
		return workflow.ExecuteLocalActivity(withLocal(ctx, maxAttempts), activity, args...)
	}
	return workflow.ExecuteActivity(withActivity(ctx, maxAttempts), activity, args...)
}

// readFreeze reads the freeze switch. The activity retries without end
// (maxAttempts 0), so only a cancelled run sees an error; the local
// activity's retries end with withLocal's ScheduleToClose, so on that
// branch a switch that cannot be read holds the stage, checking again
// every 15 s, as the endless retries did.
func (r *pipelineRun) readFreeze(ctx workflow.Context, f any) error {
	for {
		err := r.step(ctx, 0, acts.Freeze).Get(ctx, f)
		if err == nil || !r.local || ctx.Err() != nil {
			return err
		}
		if workflow.Sleep(ctx, 15*time.Second) != nil {
			return err
		}
	}
}
