package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/prometheus"
	"go.temporal.io/sdk/temporal"
)

// CheckInput asks for one measurement of a metric check.
type CheckInput struct {
	Target string
	Check  modelplane.MetricCheck
	Vars   modelplane.QueryVars
}

// CheckResult is one measurement.
type CheckResult struct {
	Query string  `json:"query"`
	Value float64 `json:"value"`
	Empty bool    `json:"empty"`
}

// MeasureCheck renders the check's query and asks the target's Prometheus.
// A query Prometheus refuses as malformed is not retried.
func (a *Activities) MeasureCheck(ctx context.Context, in CheckInput) (CheckResult, error) {
	t, err := a.Store.GetTarget(ctx, in.Target)
	if err != nil {
		return CheckResult{}, nonRetryable(err)
	}
	if t.Prometheus == nil {
		return CheckResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("target %s has no prometheus configured", t.Name), "invalid", nil)
	}
	q, err := in.Check.Render(in.Vars)
	if err != nil {
		return CheckResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("check %s: %v", in.Check.Name, err), "invalid", nil)
	}
	c, err := prometheus.FromConfig(*t.Prometheus, a.Getenv)
	if err != nil {
		return CheckResult{Query: q}, temporal.NewNonRetryableApplicationError(err.Error(), "invalid", nil)
	}
	v, empty, err := c.Query(ctx, q, a.now())
	var qe *prometheus.QueryError
	if errors.As(err, &qe) && qe.BadQuery() {
		return CheckResult{Query: q}, temporal.NewNonRetryableApplicationError(err.Error(), "bad_query", nil)
	}
	return CheckResult{Query: q, Value: v, Empty: empty}, err
}
