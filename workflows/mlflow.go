package workflows

import (
	"fmt"

	"github.com/modelplane/modelplane/activities"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// MLflowReconcileWorkflow is run by the "mlflow-reconcile" schedule.
const MLflowReconcileWorkflow = "MLflowReconcile"

// MLflowReconcileSchedule is the schedule's id.
const MLflowReconcileSchedule = "mlflow-reconcile"

// MLflowReconcile catches what lost MLflow webhooks missed: it prepares the
// promotions auto_promote rules ask for (idempotently, with the webhook's
// keys) and starts each as a workflow of its own that outlives this run.
func MLflowReconcile(ctx workflow.Context) (activities.ReconcileResult, error) {
	var res activities.ReconcileResult
	if err := workflow.ExecuteActivity(withActivity(ctx, 5), acts.ReconcileMLflow).Get(ctx, &res); err != nil {
		return res, err
	}
	for _, p := range res.Start {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: p.WorkflowID, TaskQueue: workflow.GetInfo(ctx).TaskQueueName,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			StaticSummary:         fmt.Sprintf("Promote %s %s → %s (%s), requested by MLflow reconciliation", p.Model, p.Version, p.Target, p.Strategy.Type),
		})
		err := workflow.ExecuteChildWorkflow(cctx, PromotionWorkflow, PromotionInput{Promotion: p}).GetChildWorkflowExecution().Get(ctx, nil)
		if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", p.ID, err))
		}
	}
	return res, nil
}
