package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

// BenchmarkDriftToRollback: a drift signal posted to the API during a canary
// bake, until the simulator serves the stable version at 100% again,
// against a bare signal → activity workflow on the same server and worker.
// MODELPLANE_BENCH_DRIFT_SAMPLES rollbacks per round (default 100).
func BenchmarkDriftToRollback(b *testing.B) {
	loadNote(b)
	n := envInt(b, "MODELPLANE_BENCH_DRIFT_SAMPLES", 100)
	s := newStack(b, true, registerBaselines)
	// Staging: a low-risk model needs no approval there, so each sample
	// goes straight to the canary; rollback takes the same path as in production.
	s.target("staging", "staging")
	s.model("churn", "v0")
	s.serve("churn", "staging", "v0")
	ctx := context.Background()

	type event struct{ kind, id string }
	events := make(chan event, 64)
	s.watch.on(func(name string, arg any) {
		var e event
		switch in := arg.(type) {
		case activities.ProgressInput:
			// The first canary step is live and recorded: the bake begins.
			if p := in.Promotion; name == "RecordProgress" && p != nil && p.Stage == modelplane.StageCanary && p.Traffic[p.Version] > 0 {
				e = event{"baking", p.Version}
			}
		case activities.TrafficInput:
			if name == "SetTraffic" && in.Split["v0"] == 100 {
				e = event{"restored", ""}
			}
		case string:
			e = event{"bare", in}
		}
		if e.kind != "" {
			select {
			case events <- e:
			default:
			}
		}
	})

	sample := 0
	ours := func() time.Duration {
		sample++
		v := fmt.Sprintf("c%d", sample)
		s.version("churn", v)
		acc, err := s.promote("churn", v, "staging", []int{10, 100}, "1h", "1h")
		if err != nil {
			b.Fatal(err)
		}
		await(b, "first canary step", events, time.Minute, func(e event) bool { return e.kind == "baking" && e.id == v })
		t0 := time.Now()
		if err := s.call("POST", "/v1/signals/drift", alice, map[string]any{"model": "churn", "target": "staging", "version": v, "metric": "psi", "score": 0.5}, nil, 202); err != nil {
			b.Fatal(err)
		}
		await(b, "v0 back at 100%", events, time.Minute, func(e event) bool { return e.kind == "restored" })
		d := time.Since(t0)
		// The retrain request and the projection follow; the next sample needs the pair free.
		var p modelplane.Promotion
		if err := s.c.GetWorkflow(ctx, acc.WorkflowID, "").Get(ctx, &p); err != nil {
			b.Fatal(err)
		}
		if p.Status != modelplane.StatusRolledBack {
			b.Fatalf("promotion %s ended %s: %s", p.ID, p.Status, p.Reason)
		}
		return d
	}
	bare := func(i int) time.Duration {
		wid := fmt.Sprintf("bare-drift-%d", i)
		run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, "BenchParked", wid, time.Duration(0))
		if err != nil {
			b.Fatal(err)
		}
		await(b, "baseline parked", events, time.Minute, func(e event) bool { return e.kind == "bare" && e.id == wid })
		t0 := time.Now()
		if err := s.c.SignalWorkflow(ctx, wid, "", "go", nil); err != nil {
			b.Fatal(err)
		}
		await(b, "baseline activity", events, time.Minute, func(e event) bool { return e.kind == "bare" && e.id == wid+"/done" })
		d := time.Since(t0)
		if err := run.Get(ctx, nil); err != nil {
			b.Fatal(err)
		}
		return d
	}

	ours() // warm caches and the retrain sink's first connection
	bare(-1)
	var ow, bw []time.Duration
	for b.Loop() {
		for i := 0; i < n; i++ {
			bw = append(bw, bare(len(bw)))
			ow = append(ow, ours())
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(ow)), "rollbacks")
	b.ReportMetric(ms(pct(ow, .5)), "drift-p50-ms")
	b.ReportMetric(ms(pct(ow, .99)), "drift-p99-ms")
	b.ReportMetric(ms(pct(bw, .5)), "bare-p50-ms")
	b.ReportMetric(ms(pct(bw, .99)), "bare-p99-ms")
	b.ReportMetric(float64(pct(ow, .5))/float64(pct(bw, .5)), "p50-ratio")
	b.ReportMetric(float64(pct(ow, .99))/float64(pct(bw, .99)), "p99-ratio")
}
