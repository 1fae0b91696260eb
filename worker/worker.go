// Package worker wires modelplane's workflows and activities into a Temporal worker.
package worker

import (
	"time"

	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register adds every workflow and activity to r.
func Register(r worker.Registry, a *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Promotion, workflow.RegisterOptions{Name: workflows.PromotionWorkflow})
	r.RegisterWorkflowWithOptions(workflows.DeploymentGuardian, workflow.RegisterOptions{Name: workflows.GuardianWorkflow})
	r.RegisterWorkflowWithOptions(workflows.MLflowReconcile, workflow.RegisterOptions{Name: workflows.MLflowReconcileWorkflow})
	r.RegisterWorkflowWithOptions(workflows.MCPRevalidate, workflow.RegisterOptions{Name: activities.MCPRevalidateWorkflow})
	r.RegisterWorkflowWithOptions(workflows.PipelineRun, workflow.RegisterOptions{Name: workflows.PipelineWorkflow})
	r.RegisterActivity(a)
}

// Options tune the worker.
type Options struct {
	// TaskQueue to poll ("": modelplane's default).
	TaskQueue string
	// MaxConcurrentActivities and MaxConcurrentWorkflowTasks bound the
	// worker's slots; the pollers say how many long polls run at once (0: SDK defaults).
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	ActivityPollers            int
	WorkflowPollers            int
	// StopTimeout is how long a stopping worker lets in-flight activities finish.
	StopTimeout  time.Duration
	Interceptors []interceptor.WorkerInterceptor
}

// FromConfig maps the worker section of the config.
func FromConfig(c config.Worker) Options {
	return Options{TaskQueue: c.TaskQueue, MaxConcurrentActivities: c.MaxConcurrentActivities, MaxConcurrentWorkflowTasks: c.MaxConcurrentWorkflows,
		ActivityPollers: c.ActivityPollers, WorkflowPollers: c.WorkflowPollers, StopTimeout: c.StopTimeout.D()}
}

// New creates a worker on modelplane's task queue.
func New(c client.Client, a *activities.Activities, o Options) worker.Worker {
	if o.StopTimeout == 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.TaskQueue == "" {
		o.TaskQueue = workflows.TaskQueue
	}
	w := worker.New(c, o.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize:     o.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: o.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityTaskPollers:       o.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:       o.WorkflowPollers,
		WorkerStopTimeout:                      o.StopTimeout,
		// The stamp interceptor comes first: votes are attributed before anything else sees them.
		Interceptors: append([]interceptor.WorkerInterceptor{workflows.Interceptor()}, o.Interceptors...),
	})
	Register(w, a)
	return w
}
