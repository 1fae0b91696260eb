package workflows

// The steps every workflow shares: activity options, the audit buffer,
// lifecycle events, metric checks, retraining and platform operations.

import (
	"fmt"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// activity options: short timeouts so a lost worker is noticed fast, retries
// with backoff so a flaky platform is ridden out, and invalid requests (marked
// non-retryable by the activities) fail at once.
func withActivity(ctx workflow.Context, maxAttempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: retries(maxAttempts)})
}

// retries backs off from 500 ms to 10 s, at most maxAttempts times.
func retries(maxAttempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: maxAttempts}
}

// publishOptions: event delivery retries for up to ten minutes (a sink
// outage must not stall a rollout, so promotions do not wait on it mid-way).
func withPublish(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}

// eventsOf picks the audit records that announce lifecycle events.
func eventsOf(recs []modelplane.AuditRecord) []modelplane.Event {
	var out []modelplane.Event
	for _, r := range recs {
		if e, ok := modelplane.EventFor(r); ok {
			out = append(out, e)
		}
	}
	return out
}

// publishing reports whether this run sends lifecycle events (added after the first release).
func publishing(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, "publish-events", workflow.DefaultVersion, 1) == 1
}

// measureCheck takes one measurement of a metric check and judges it.
func measureCheck(ctx workflow.Context, target string, c modelplane.MetricCheck, vars modelplane.QueryVars) (phase, msg string, res activities.CheckResult) {
	err := workflow.ExecuteActivity(withActivity(ctx, 3), acts.MeasureCheck, activities.CheckInput{Target: target, Check: c, Vars: vars}).Get(ctx, &res)
	if err != nil {
		return modelplane.PhaseError, c.Name + ": " + errText(err), res
	}
	phase, msg = modelplane.EvaluateCheck(c, res.Value, res.Empty)
	return phase, msg, res
}

// requestRetrain asks for retraining and says what came of it, for the audit.
func requestRetrain(ctx workflow.Context, in activities.RetrainInput) (decision string, details map[string]any) {
	var res activities.RetrainResult
	err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.RequestRetrain, in).Get(ctx, &res)
	details = map[string]any{"event_id": in.EventID, "sent": res.Sent, "deduplicated": res.Deduplicated, "skipped": res.Skipped}
	if res.PipelineRun != "" {
		details["pipeline_run"] = res.PipelineRun
	}
	switch {
	case err != nil:
		decision, details["error"] = "failed", errText(err)
	case res.Deduplicated:
		decision = "deduplicated"
	default:
		decision = "requested"
	}
	return decision, details
}

// acts is only used for its method values: the SDK resolves activity names from them.
var acts *activities.Activities

// auditLog buffers audit records with deterministic keys until the next flush.
type auditLog struct {
	prefix  string
	n       int
	pending []modelplane.AuditRecord
}

func (l *auditLog) add(ctx workflow.Context, r modelplane.AuditRecord) {
	l.n++
	r.Key = fmt.Sprintf("%s/%04d", l.prefix, l.n)
	r.Time = workflow.Now(ctx).UTC()
	l.pending = append(l.pending, r)
}

func (l *auditLog) take() []modelplane.AuditRecord {
	out := l.pending
	l.pending = nil
	return out
}

// OperationTimeout bounds the wait for one platform operation (a SageMaker
// endpoint update can take tens of minutes).
const OperationTimeout = 2 * time.Hour

// awaitsOps reports whether this run waits for platforms' long-running
// operations and mirrors stages into their registries (added with the cloud
// providers; older histories replay without those activities).
func awaitsOps(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, "provider-operations", workflow.DefaultVersion, 1) == 1
}

// withOpPolling: each poll is one short activity; while the operation runs
// the activity fails as "pending" and Temporal's backoff does the waiting,
// so no worker slot sleeps and a restarted worker simply polls again.
func withOpPolling(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: OperationTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     1.5,
			MaximumInterval:        15 * time.Second,
			NonRetryableErrorTypes: []string{"invalid"},
		},
	})
}

// opFailed is a platform operation that ended without effect.
type opFailed struct{ st modelplane.OpStatus }

func (e opFailed) Error() string {
	switch {
	case e.st.NeedsHuman:
		return "the platform is stuck and needs a human: " + e.st.Reason
	case e.st.RolledBack:
		return "the platform rolled the change back: " + e.st.Reason
	}
	return "the platform reports the operation failed: " + e.st.Reason
}

// awaitOp waits for op to finish and returns its status (Failed included).
func awaitOp(ctx workflow.Context, target string, op modelplane.Op) (modelplane.OpStatus, error) {
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}, nil
	}
	var st modelplane.OpStatus
	err := workflow.ExecuteActivity(withOpPolling(ctx), acts.AwaitOp, activities.OpInput{Target: target, Op: op}).Get(ctx, &st)
	return st, err
}

// mutate runs a provider mutation and, when the run awaits operations, waits
// for the one it started; a failed operation is an error.
func mutate(ctx, actx workflow.Context, ops bool, target string, activity, in any) error {
	if !ops {
		return workflow.ExecuteActivity(actx, activity, in).Get(ctx, nil)
	}
	var op modelplane.Op
	if err := workflow.ExecuteActivity(actx, activity, in).Get(ctx, &op); err != nil {
		return err
	}
	st, err := awaitOp(ctx, target, op)
	if err == nil && st.Failed {
		err = opFailed{st}
	}
	return err
}

// markVersion mirrors a stage into the platform's registry; it never stops a
// rollout, but a failure is written to the audit.
func markVersion(ctx workflow.Context, target string, c modelplane.StageChange) (stager bool, err error) {
	err = workflow.ExecuteActivity(withActivity(ctx, 8), acts.MarkVersion, activities.MarkInput{Target: target, Change: c}).Get(ctx, &stager)
	return stager, err
}
