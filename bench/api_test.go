package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// BenchmarkAPIStartPromotion: POST /v1/promotions latency with concurrent
// clients (real Echo handler on a real listener, default OPA policy, SQLite
// store, embedded Temporal) against bare client.ExecuteWorkflow starts at the
// same concurrency on the same server. No worker runs, so the started
// workflows wait and the figures are the request path alone.
// MODELPLANE_BENCH_API_CLIENTS (default 32), MODELPLANE_BENCH_API_REQUESTS
// per side per round (default 640).
func BenchmarkAPIStartPromotion(b *testing.B) {
	loadNote(b)
	clients := envInt(b, "MODELPLANE_BENCH_API_CLIENTS", 32)
	total := envInt(b, "MODELPLANE_BENCH_API_REQUESTS", 640)
	s := newStack(b, false, nil)
	s.target("prod", "production")
	ctx := context.Background()
	// One active promotion per model and target: each request gets its own model.
	models := 0
	newModels := func(k int) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = fmt.Sprintf("api-%05d", models)
			s.model(out[i], "v1")
			models++
		}
		return out
	}
	var bares atomic.Int64
	bareStart := func(int) error {
		_, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bare-api-%d", bares.Add(1)), TaskQueue: "bench-no-worker",
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE}, "BenchParked", "", time.Duration(0))
		return err
	}

	// Warm up both paths (connections, policy, prepared statements).
	warm := newModels(clients)
	if _, err := fanOut(clients, clients, func(i int) error { _, err := s.promote(warm[i], "v1", "prod", []int{10, 100}, "1h", "1h"); return err }); err != nil {
		b.Fatal(err)
	}
	if _, err := fanOut(clients, clients, bareStart); err != nil {
		b.Fatal(err)
	}

	// Alternate chunks of both sides so load that comes and goes hits both alike.
	chunk := min(total, clients*5)
	var ours, bare []time.Duration
	var oursWall, bareWall time.Duration
	for b.Loop() {
		for done := 0; done < total; done += chunk {
			k := min(chunk, total-done)
			names := newModels(k)
			t0 := time.Now()
			lat, err := fanOut(k, clients, func(i int) error { _, err := s.promote(names[i], "v1", "prod", []int{10, 100}, "1h", "1h"); return err })
			oursWall += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			ours = append(ours, lat...)
			t0 = time.Now()
			lat, err = fanOut(k, clients, bareStart)
			bareWall += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			bare = append(bare, lat...)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(clients), "clients")
	b.ReportMetric(float64(len(ours)), "requests")
	b.ReportMetric(ms(pct(ours, .5)), "api-p50-ms")
	b.ReportMetric(ms(pct(ours, .99)), "api-p99-ms")
	b.ReportMetric(ms(pct(bare, .5)), "bare-p50-ms")
	b.ReportMetric(ms(pct(bare, .99)), "bare-p99-ms")
	b.ReportMetric(float64(pct(ours, .5))/float64(pct(bare, .5)), "p50-ratio")
	b.ReportMetric(float64(pct(ours, .99))/float64(pct(bare, .99)), "p99-ratio")
	b.ReportMetric(float64(len(ours))/oursWall.Seconds(), "api-req/s")
	b.ReportMetric(float64(len(bare))/bareWall.Seconds(), "bare-starts/s")
}
