// Package worker wires modelplane's workflows and activities into a Temporal worker.
package worker

import (
	"time"

	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register adds every workflow and activity to r.
func Register(r worker.Registry, a *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Promotion, workflow.RegisterOptions{Name: workflows.PromotionWorkflow})
	r.RegisterWorkflowWithOptions(workflows.DeploymentGuardian, workflow.RegisterOptions{Name: workflows.GuardianWorkflow})
	r.RegisterWorkflowWithOptions(workflows.MLflowReconcile, workflow.RegisterOptions{Name: workflows.MLflowReconcileWorkflow})
	r.RegisterWorkflowWithOptions(workflows.MCPRevalidate, workflow.RegisterOptions{Name: activities.MCPRevalidateWorkflow})
	r.RegisterActivity(a)
}

// Options tune the worker.
type Options struct {
	// MaxConcurrentActivities bounds activity slots (0: SDK default).
	MaxConcurrentActivities int
	// StopTimeout is how long a stopping worker lets in-flight activities finish.
	StopTimeout time.Duration
}

// New creates a worker on modelplane's task queue.
func New(c client.Client, a *activities.Activities, o Options) worker.Worker {
	if o.StopTimeout == 0 {
		o.StopTimeout = 15 * time.Second
	}
	w := worker.New(c, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
		WorkerStopTimeout:                  o.StopTimeout,
	})
	Register(w, a)
	return w
}
