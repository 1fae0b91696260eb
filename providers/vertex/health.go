package vertex

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	monitoring "google.golang.org/api/monitoring/v3"
)

// Cloud Monitoring metrics Vertex AI writes for online prediction, per
// endpoint (resource label endpoint_id) and deployed model (metric label
// deployed_model_id).
const (
	metricResponses = "aiplatform.googleapis.com/prediction/online/response_count"
	metricLatencies = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
	endpointRes     = "aiplatform.googleapis.com/Endpoint"
)

// Health reads the version's requests, 5xx rate and p99 latency over the
// window from Cloud Monitoring. The version is looked up by the deployed
// model id SetTraffic gave it, so a version retired within the window still
// reports what it served. No response points means no data.
func (p *Provider) Health(ctx context.Context, t modelplane.Target, model, version string, window time.Duration) (modelplane.Health, error) {
	c, err := parseConfig(t)
	if err != nil {
		return modelplane.Health{}, err
	}
	if window <= 0 {
		window = time.Minute
	}
	// Monitoring aligns on whole seconds, at least one minute.
	window = max(window.Truncate(time.Second), time.Minute)
	svc, err := p.monitoring(ctx)
	if err != nil {
		return modelplane.Health{}, err
	}
	ep := endpointName(c, t, model)
	dm := deployedModelID(ep, model, version)
	base := fmt.Sprintf(`resource.type = %q AND resource.labels.endpoint_id = %q AND metric.labels.deployed_model_id = %q`,
		endpointRes, endpointID(c, t, model), dm)
	end := time.Now().UTC()
	start := end.Add(-window)
	period := strconv.Itoa(int(window/time.Second)) + "s"
	list := func(metric, aligner, reducer string, group ...string) ([]*monitoring.TimeSeries, error) {
		call := svc.Projects.TimeSeries.List("projects/" + c.project).Context(ctx).
			Filter(fmt.Sprintf(`metric.type = %q AND %s`, metric, base)).
			IntervalStartTime(start.Format(time.RFC3339)).IntervalEndTime(end.Format(time.RFC3339)).
			AggregationAlignmentPeriod(period).AggregationPerSeriesAligner(aligner)
		if reducer != "" {
			call = call.AggregationCrossSeriesReducer(reducer).AggregationGroupByFields(group...)
		}
		var out []*monitoring.TimeSeries
		err := call.Pages(ctx, func(r *monitoring.ListTimeSeriesResponse) error {
			out = append(out, r.TimeSeries...)
			return nil
		})
		if err != nil {
			return nil, monitoringError(err, metric, ep, version)
		}
		return out, nil
	}

	h := modelplane.Health{Version: version}
	counts, err := list(metricResponses, "ALIGN_DELTA", "REDUCE_SUM", "metric.labels.response_code")
	if err != nil {
		return modelplane.Health{}, err
	}
	var errors5xx int64
	for _, ts := range counts {
		n := int64(0)
		for _, pt := range ts.Points {
			if pt.Value != nil && pt.Value.Int64Value != nil {
				n += *pt.Value.Int64Value
			}
		}
		h.Requests += n
		if strings.HasPrefix(ts.Metric.Labels["response_code"], "5") {
			errors5xx += n
		}
	}
	if h.Requests == 0 {
		h.NoData = true
		return h, nil
	}
	h.ErrorRate = float64(errors5xx) / float64(h.Requests)
	// Latency series differ by latency_type (model, overhead…): the worst p99 is reported.
	lat, err := list(metricLatencies, "ALIGN_PERCENTILE_99", "")
	if err != nil {
		return modelplane.Health{}, err
	}
	for _, ts := range lat {
		for _, pt := range ts.Points {
			if pt.Value != nil && pt.Value.DoubleValue != nil && *pt.Value.DoubleValue > h.LatencyP99Ms {
				h.LatencyP99Ms = *pt.Value.DoubleValue
			}
		}
	}
	return h, nil
}

// monitoringError keeps 4xx refusals (a bad filter, a missing project or
// permission) permanent and everything else retryable.
func monitoringError(err error, metric, endpoint, version string) error {
	what := fmt.Sprintf("vertex: read %s for %s on %s from Cloud Monitoring", metric, version, endpoint)
	if status := httpStatus(err); status >= 400 && status < 500 && status != 429 && status != 408 {
		return fmt.Errorf("%s: %v: %w", what, err, modelplane.ErrInvalid)
	}
	return fmt.Errorf("%s: %w", what, err)
}
