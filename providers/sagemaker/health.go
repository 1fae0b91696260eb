package sagemaker

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/modelplane/modelplane"
)

// Health reads the version's variant metrics from CloudWatch (namespace
// AWS/SageMaker, dimensions EndpointName + VariantName): invocations, 5xx
// errors and p99 ModelLatency. Shadow variants publish the same metrics
// under their own variant name. No invocations in the window is NoData.
func (p *Provider) Health(ctx context.Context, t modelplane.Target, model, version string, window time.Duration) (modelplane.Health, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Health{}, err
	}
	if window < time.Minute {
		window = time.Minute
	}
	// One period covering the window: SageMaker publishes per minute.
	period := int32((window + time.Minute - 1) / time.Minute * 60)
	end := p.opts.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(period) * time.Second)
	dims := []cwtypes.Dimension{
		{Name: aws.String("EndpointName"), Value: aws.String(s.cfg.Endpoint)},
		{Name: aws.String("VariantName"), Value: aws.String(VariantName(version))},
	}
	query := func(id, metric, stat string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{
			Id: aws.String(id),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String(metric), Dimensions: dims},
				Period: aws.Int32(period),
				Stat:   aws.String(stat),
			},
			ReturnData: aws.Bool(true),
		}
	}
	in := &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start),
		EndTime:   aws.Time(end),
		MetricDataQueries: []cwtypes.MetricDataQuery{
			query("invocations", "Invocations", "Sum"),
			query("errors", "Invocation5XXErrors", "Sum"),
			query("latency", "ModelLatency", "p99"),
		},
	}
	sums := map[string]float64{}
	var p99 float64
	pager := cloudwatch.NewGetMetricDataPaginator(s.cw, in)
	for pager.HasMorePages() {
		out, err := pager.NextPage(ctx)
		if err != nil {
			return modelplane.Health{}, wrap(err, "cloudwatch GetMetricData", s.cfg.Endpoint+"/"+VariantName(version))
		}
		for _, r := range out.MetricDataResults {
			id := aws.ToString(r.Id)
			for _, v := range r.Values {
				if id == "latency" {
					// The worst minute: a p99 cannot be averaged.
					p99 = max(p99, v)
				} else {
					sums[id] += v
				}
			}
		}
	}
	h := modelplane.Health{Version: version, Requests: int64(sums["invocations"])}
	if h.Requests == 0 {
		h.NoData = true
		return h, nil
	}
	h.ErrorRate = sums["errors"] / sums["invocations"]
	h.LatencyP99Ms = p99 / 1000 // ModelLatency is in microseconds
	return h, nil
}
