package sagemaker_test

import (
	"math"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

func TestHealthFromCloudWatch(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m1")
	f.srv.SetMetrics(f.endpoint(), sagemaker.VariantName("v2"), sagemakertest.Metrics{Invocations: 400, Errors5XX: 12, LatencyP99Ms: 250})
	h, err := f.p.Health(ctx, f.tg, model, "v2", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h.NoData || h.Requests != 400 || math.Abs(h.ErrorRate-0.03) > 1e-9 || math.Abs(h.LatencyP99Ms-250) > 1e-9 || h.Version != "v2" {
		t.Fatalf("health = %+v, want 400 requests, 3%% errors, p99 250ms", h)
	}
	// A variant that got no invocations has no data, never a pass.
	f.srv.SetMetrics(f.endpoint(), sagemaker.VariantName("v1"), sagemakertest.Metrics{})
	if h, err := f.p.Health(ctx, f.tg, model, "v1", time.Minute); err != nil || !h.NoData {
		t.Fatalf("no invocations: %+v, %v; want NoData", h, err)
	}
	f.srv.FailNext("GetMetricData", 1, sagemakertest.Throttle)
	if _, err := f.p.Health(ctx, f.tg, model, "v2", time.Minute); err == nil {
		t.Fatal("throttled GetMetricData returned no error")
	}
}
