package bench

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

// BenchmarkPlatformDrift: a traffic change made by hand on the simulator
// (as in a cloud console) until the guardian's platform_drift record is
// written, with the guardian checking every second; and what one check
// costs (store read + the platform's State + the comparison) against the
// bare State call it wraps. MODELPLANE_BENCH_PLATFORM_DRIFT_SAMPLES hand
// changes per round (default 20), each put back before the next and made
// at a different point of the check cycle.
func BenchmarkPlatformDrift(b *testing.B) {
	loadNote(b)
	n := envInt(b, "MODELPLANE_BENCH_PLATFORM_DRIFT_SAMPLES", 20)
	const interval = time.Second
	s := newStack(b, true, nil)
	ctx := context.Background()
	s.target("staging", "staging")
	tg, err := s.kit.Store.GetTarget(ctx, "staging")
	if err != nil {
		b.Fatal(err)
	}
	tg.GuardInterval = modelplane.Duration(interval)
	if err := s.kit.Store.PutTarget(ctx, tg); err != nil {
		b.Fatal(err)
	}
	s.model("churn", "v0", "v1")
	s.serve("churn", "staging", "v0")
	v1, _ := s.kit.Store.GetVersion(ctx, "churn", "v1")
	if _, err := s.kit.Sim.RegisterVersion(ctx, tg, v1); err != nil {
		b.Fatal(err)
	}

	seen := make(chan modelplane.SyncStatus, 16)
	s.watch.on(func(name string, arg any) {
		if in, ok := arg.(activities.ProgressInput); ok && name == "RecordProgress" {
			for _, r := range in.Audit {
				if r.Action == modelplane.AuditPlatformDrift {
					seen <- modelplane.SyncStatus(r.Decision)
				}
			}
		}
	})
	wid := workflows.GuardianWorkflowID("churn", "staging")
	if _, err := s.c.SignalWithStartWorkflow(ctx, wid, workflows.Promoted, workflows.GuardianUpdate{Stable: "v0"},
		client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, workflows.GuardianWorkflow, workflows.GuardianInput{Model: "churn", Target: "staging"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.c.TerminateWorkflow(context.Background(), wid, "", "benchmark over") })

	hand := func(split modelplane.TrafficSplit) {
		if err := s.kit.Sim.ChangeByHand(ctx, "staging", "churn", split, nil); err != nil {
			b.Fatal(err)
		}
	}
	var delays []time.Duration
	for b.Loop() {
		for i := 0; i < n; i++ {
			// Spread the changes over the check cycle: a change just after a
			// check waits a whole interval, one just before it hardly any.
			time.Sleep(time.Duration(i%10) * interval / 10)
			t0 := time.Now()
			hand(modelplane.TrafficSplit{"v0": 70, "v1": 30})
			await(b, "drift reported", seen, time.Minute, func(st modelplane.SyncStatus) bool { return st == modelplane.Drifted })
			delays = append(delays, time.Since(t0))
			hand(modelplane.TrafficSplit{"v0": 100})
			await(b, "in sync again", seen, time.Minute, func(st modelplane.SyncStatus) bool { return st == modelplane.InSync })
		}
	}

	// One check against the bare platform read it is built on, in this process.
	const checks = 2000
	ref := activities.VersionRef{Model: "churn", Target: "staging"}
	measure := func(f func()) (time.Duration, float64) {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		for i := 0; i < checks; i++ {
			f()
		}
		d := time.Since(t0) / checks
		runtime.ReadMemStats(&m1)
		return d, float64(m1.Mallocs-m0.Mallocs) / checks
	}
	state, stateAllocs := measure(func() {
		if _, err := s.kit.Sim.State(ctx, tg, "churn"); err != nil {
			b.Fatal(err)
		}
	})
	check, checkAllocs := measure(func() {
		if c, err := s.kit.Activities.CheckPlatform(ctx, ref); err != nil || c.Status != modelplane.InSync {
			b.Fatalf("check: %+v %v", c, err)
		}
	})
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(interval.Seconds(), "interval-s")
	b.ReportMetric(float64(len(delays)), "hand-changes")
	b.ReportMetric(ms(pct(delays, .5)), "detect-p50-ms")
	b.ReportMetric(ms(pct(delays, .99)), "detect-p99-ms")
	b.ReportMetric(float64(check)/1e3, "check-us")
	b.ReportMetric(float64(state)/1e3, "state-us")
	b.ReportMetric(float64(check)/float64(state), "check/state")
	b.ReportMetric(checkAllocs, "check-allocs")
	b.ReportMetric(stateAllocs, "state-allocs")
}
