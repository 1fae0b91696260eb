package workflows

import (
	"github.com/modelplane/modelplane/telemetry"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"
)

// logger is the workflow's replay-safe logger (the SDK adds the workflow and
// run ids) tagged with what it works on, under the keys every JSON log line
// of modelplane uses, so an SRE can grep one promotion across API and worker.
func logger(ctx workflow.Context, promotionID, model, target string) log.Logger {
	var kv []any
	for _, p := range [...][2]string{{telemetry.KeyPromotionID, promotionID}, {telemetry.KeyModel, model}, {telemetry.KeyTarget, target}} {
		if p[1] != "" {
			kv = append(kv, p[0], p[1])
		}
	}
	return log.With(workflow.GetLogger(ctx), kv...)
}
