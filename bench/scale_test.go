package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

// BenchmarkScale: how many promotions the embedded stack holds while they
// wait — on approval (production: the policy asks one approval) or in a
// canary bake (staging, 1h bake) — started through the API by concurrent
// clients, against bare workflows parked the same way (one activity, then a
// wait) on the same server. MODELPLANE_BENCH_VERSIONED=1 parks a third
// side, the same bare workflow behind one GetVersion: what Temporal
// charges for versioning, which every promotion run pays once.
// MODELPLANE_BENCH_SHAPED=1 parks one more, BenchShapedParked: the first
// parked promotion's shape (its activities and local activities as no-ops,
// in the same workflow tasks) before the same wait. Each wait
// kind is one stack that grows through the sizes in MODELPLANE_BENCH_SCALE
// (default 250,500,1000): n=500 adds 250
// promotions to the 250 already parked, and reports RSS of the whole
// process, RSS per parked promotion, and the start throughput of that step.
// MODELPLANE_BENCH_HEAPPROFILE=prefix writes a heap profile at each size
// (prefix-approval-1000.pprof), to see what the parked workflows keep;
// MODELPLANE_BENCH_CPUPROFILE=prefix a CPU profile of each chunk
// (prefix-bake-promotions-250.cpu, prefix-bake-bare-250.cpu, …).
func BenchmarkScale(b *testing.B) {
	loadNote(b)
	sizes := []int{250, 500, 1000}
	if v := os.Getenv("MODELPLANE_BENCH_SCALE"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("MODELPLANE_BENCH_SCALE: want sizes like 500,1000,2000, got %q", v)
			}
			sizes = append(sizes, n)
		}
	}
	slices.Sort(sizes)
	for _, wait := range []string{"approval", "bake"} {
		b.Run(wait, func(b *testing.B) {
			h := newHold(b, wait)
			for _, n := range sizes {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { h.grow(b, n) })
			}
		})
	}
}

// MODELPLANE_BENCH_MEMPROFILERATE sets runtime.MemProfileRate (bytes per
// sample) from the start, so the heap profiles can split a parked
// promotion's few tens of KiB by allocation site; the default samples one
// allocation per 512 KiB.
func init() {
	if v := os.Getenv("MODELPLANE_BENCH_MEMPROFILERATE"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			runtime.MemProfileRate = n
		}
	}
}

// hold is a stack with promotions and bare workflows parked on it.
type hold struct {
	s       *stack
	wait    string
	target  string
	bake    time.Duration
	clients int

	parked, bareParked, versionedParked, shapedParked atomic.Int64
	seen                                              sync.Map
	failed                                            atomic.Pointer[string] // why a promotion ended instead of parking

	ours               int     // how many of each side are parked
	rss0               float64 // RSS with nothing parked
	grewOurs, grewBare mem     // summed growth while each side parked
	grewVersioned      mem
	versioned          bool // park the third side too
	shaped             bool // and the promotion's shape
	shape              []step
}

func newHold(b *testing.B, wait string) *hold {
	h := &hold{s: newStack(b, true, registerBaselines), wait: wait, target: "prod", clients: envInt(b, "MODELPLANE_BENCH_API_CLIENTS", 32),
		versioned: os.Getenv("MODELPLANE_BENCH_VERSIONED") == "1", shaped: os.Getenv("MODELPLANE_BENCH_SHAPED") == "1"}
	if wait == "bake" {
		h.target, h.bake = "staging", time.Hour
		h.s.target(h.target, "staging")
	} else {
		h.s.target(h.target, "production")
	}
	h.s.watch.on(func(name string, arg any) {
		switch in := arg.(type) {
		case activities.ProgressInput:
			p := in.Promotion
			if name != "RecordProgress" || p == nil {
				return
			}
			if modelplane.Terminal(p.Status) {
				why := fmt.Sprintf("promotion %s ended %s: %s", p.ID, p.Status, p.Reason)
				h.failed.CompareAndSwap(nil, &why)
			}
			if (wait == "approval" && p.Stage == modelplane.StageAwaitingApproval) || (wait == "bake" && p.Stage == modelplane.StageCanary && p.Traffic[p.Version] > 0) {
				if _, dup := h.seen.LoadOrStore(p.ID, true); !dup {
					h.parked.Add(1)
				}
			}
		case string:
			if strings.HasPrefix(in, "park/") {
				h.bareParked.Add(1)
			} else if strings.HasPrefix(in, "vpark/") {
				h.versionedParked.Add(1)
			} else if strings.HasPrefix(in, "ready/spark/") {
				h.shapedParked.Add(1)
			}
		}
	})
	h.rss0 = settledMem().rss
	return h
}

func (h *hold) until(b *testing.B, what string, c *atomic.Int64, want int) {
	deadline := time.Now().Add(15 * time.Minute)
	for c.Load() < int64(want) {
		if why := h.failed.Load(); why != nil {
			b.Fatal(*why)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d after 15m", what, c.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// models creates k models of team growth, each with its own version to
// promote: only one promotion per model and target may run.
func (h *hold) models(k int) []string {
	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("scale-%05d", h.ours+i)
		if h.wait == "bake" {
			// A canary needs a stable version to split traffic with.
			h.s.model(names[i], "v1", "v2")
			h.s.serve(names[i], h.target, "v1")
		} else {
			h.s.model(names[i], "v2")
		}
	}
	return names
}

// settle lets the tail of a chunk (the timer each parked workflow starts,
// event deliveries) finish before memory is read, so it counts for its own side.
const settle = 2 * time.Second

// chunk starts k workflows with start on concurrent clients, waits until
// parked reaches want, lets the tail settle, and returns the time to start
// them, the time until all were parked, the process CPU spent until then
// and the memory they added.
func (h *hold) chunk(b *testing.B, k int, what string, parked *atomic.Int64, want int, start func(i int) error) (started, park, used time.Duration, grew mem) {
	m0 := settledMem()
	if prefix := os.Getenv("MODELPLANE_BENCH_CPUPROFILE"); prefix != "" {
		// One side's chunk alone, to set against the other's (pprof -diff_base).
		f, err := os.Create(fmt.Sprintf("%s-%s-%s-%d.cpu", prefix, h.wait, strings.Fields(what)[0], h.ours))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	c0, t0 := cpu(), time.Now()
	if _, err := fanOut(k, h.clients, start); err != nil {
		b.Fatal(err)
	}
	started = time.Since(t0)
	h.until(b, what, parked, want)
	park, used = time.Since(t0), cpu()-c0
	time.Sleep(settle)
	return started, park, used, settledMem().sub(m0)
}

// grow parks promotions and bare workflows until n of each are parked, in
// alternating chunks so both sides meet a server of about the same size.
func (h *hold) grow(b *testing.B, n int) {
	ctx := context.Background()
	var accept, park, bareStart, barePark, versionedPark time.Duration
	var cpuOurs, cpuBare, cpuVersioned time.Duration
	var shapedPark, cpuShaped time.Duration
	before := h.ours
	diag := os.Getenv("MODELPLANE_BENCH_DIAG") != ""
	storeDB, err := h.s.kit.Store.DB().DB()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for h.ours < n {
			k := min(250, n-h.ours)
			names := h.models(k)
			wids := make([]string, k)
			var db0 sql.DBStats
			if diag {
				db0 = storeDB.Stats()
			}
			st, pk, used, grew := h.chunk(b, k, "promotions parked", &h.parked, h.ours+k, func(i int) error {
				acc, err := h.s.promote(names[i], "v2", h.target, []int{10, 100}, "1h", "1h")
				wids[i] = acc.WorkflowID
				return err
			})
			if diag {
				diagnose(b, h.s.c, wids, 3)
				db1 := storeDB.Stats()
				b.Logf("store connection: %d waits, %s waited in all, while %d promotions parked in %s", db1.WaitCount-db0.WaitCount, db1.WaitDuration-db0.WaitDuration, k, pk)
			}
			accept, park, cpuOurs, h.grewOurs = accept+st, park+pk, cpuOurs+used, h.grewOurs.add(grew)
			st, pk, used, grew = h.chunk(b, k, "bare workflows parked", &h.bareParked, h.ours+k, func(i int) error {
				id := fmt.Sprintf("park/%d", h.ours+i)
				_, err := h.s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, "BenchParked", id, h.bake)
				return err
			})
			bareStart, barePark, cpuBare, h.grewBare = bareStart+st, barePark+pk, cpuBare+used, h.grewBare.add(grew)
			if h.shaped {
				if h.shape == nil {
					h.shape = h.shapeOf(b, wids[0])
				}
				_, pk, used, _ = h.chunk(b, k, "shaped workflows parked", &h.shapedParked, h.ours+k, func(i int) error {
					id := fmt.Sprintf("spark/%d", h.ours+i)
					_, err := h.s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, "BenchShapedParked", h.shape, max(h.bake, 24*time.Hour))
					return err
				})
				shapedPark, cpuShaped = shapedPark+pk, cpuShaped+used
			}
			if !h.versioned {
				h.ours += k
				continue
			}
			_, pk, used, grew = h.chunk(b, k, "versioned bare workflows parked", &h.versionedParked, h.ours+k, func(i int) error {
				id := fmt.Sprintf("vpark/%d", h.ours+i)
				_, err := h.s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, "BenchParkedVersioned", id, h.bake)
				return err
			})
			versionedPark, cpuVersioned, h.grewVersioned = versionedPark+pk, cpuVersioned+used, h.grewVersioned.add(grew)
			h.ours += k
		}
	}
	now := settledMem()
	rss, heap := now.rss, now.heap
	b.Logf("%s: %d promotions and as many bare workflows (and versioned bare ones, if asked) parked; RSS %.0f MiB (%.0f with none), Go heap %.0f MiB, %d goroutines; time inside activities (bare: BenchNoop): %s",
		h.wait, h.ours, rss, h.rss0, heap, runtime.NumGoroutine(), h.s.watch.profile())
	if prefix := os.Getenv("MODELPLANE_BENCH_HEAPPROFILE"); prefix != "" {
		// What the parked workflows keep, by allocation site: go tool pprof -sample_index=inuse_space.
		f, err := os.Create(fmt.Sprintf("%s-%s-%d.pprof", prefix, h.wait, h.ours))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(h.ours), "promotions")
	b.ReportMetric(h.rss0, "rss-before-MB")
	b.ReportMetric(rss, "rss-after-MB")
	per := func(mib float64) float64 { return mib * 1024 / float64(h.ours) }
	b.ReportMetric(per(h.grewOurs.rss), "rss-KB/promotion")
	b.ReportMetric(per(h.grewBare.rss), "rss-KB/bare")
	b.ReportMetric(per(h.grewOurs.heap), "heap-KB/promotion")
	b.ReportMetric(per(h.grewBare.heap), "heap-KB/bare")
	b.ReportMetric(per(h.grewOurs.stack), "stack-KB/promotion")
	b.ReportMetric(per(h.grewBare.stack), "stack-KB/bare")
	// The rest of RSS: free slots in the heap's spans, what else the Go
	// runtime maps (GC metadata, span structures: an upper bound, as not all
	// of it is touched), anonymous memory outside Go (SQLite's caches) and
	// file-backed pages.
	for _, side := range []struct {
		name string
		m    mem
	}{{"promotion", h.grewOurs}, {"bare", h.grewBare}} {
		m := side.m
		b.ReportMetric(per(m.inuse-m.heap), "heap-free-slots-KB/"+side.name)
		b.ReportMetric(per(m.goHeld-m.inuse-m.stack), "go-other-KB/"+side.name)
		b.ReportMetric(per(m.rss-m.file-m.goHeld), "non-go-KB/"+side.name)
		b.ReportMetric(per(m.file), "file-KB/"+side.name)
	}
	added := h.ours - before
	if added == 0 {
		return // already this size: nothing started, no rates
	}
	rate := func(d time.Duration) float64 { return float64(added) / d.Seconds() }
	b.ReportMetric(rate(accept), "accepted/s")
	b.ReportMetric(rate(park), "parked/s")
	b.ReportMetric(rate(bareStart), "bare-starts/s")
	b.ReportMetric(rate(barePark), "bare-parked/s")
	b.ReportMetric(rate(accept)/rate(bareStart), "accept-ratio")
	b.ReportMetric(rate(park)/rate(barePark), "parked-ratio")
	// Process CPU (all of it: server, worker, API, store) per workflow
	// parked, and how many of the cores that kept busy while parking: below
	// the core count, something other than CPU sets the pace.
	perMs := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(added) }
	b.ReportMetric(perMs(cpuOurs), "cpu-ms/promotion")
	b.ReportMetric(perMs(cpuBare), "cpu-ms/bare")
	b.ReportMetric(cpuOurs.Seconds()/park.Seconds(), "cores-busy/promotion")
	b.ReportMetric(cpuBare.Seconds()/barePark.Seconds(), "cores-busy/bare")
	if h.shaped {
		// The promotion against a bare workflow of its shape: modelplane's
		// own work; the shape against the bare workflow: Temporal's.
		b.ReportMetric(rate(shapedPark), "shaped-parked/s")
		b.ReportMetric(rate(park)/rate(shapedPark), "parked-ratio-shaped")
		b.ReportMetric(rate(shapedPark)/rate(barePark), "shaped-ratio")
		b.ReportMetric(perMs(cpuShaped), "cpu-ms/shaped")
	}
	if h.versioned {
		// Temporal's own price for one GetVersion, and the promotion against
		// a bare workflow that pays it too.
		b.ReportMetric(per(h.grewVersioned.rss), "rss-KB/versioned")
		b.ReportMetric(rate(versionedPark), "versioned-parked/s")
		b.ReportMetric(rate(versionedPark)/rate(barePark), "versioned-ratio")
		b.ReportMetric(rate(park)/rate(versionedPark), "parked-ratio-versioned")
		b.ReportMetric(perMs(cpuVersioned), "cpu-ms/versioned")
	}
}

// shapeOf reads a parked promotion's shape: what it asked Temporal to do
// before it parked (its bake timer, still running, is left out). The last
// step tells the driver the shaped workflow is parked.
func (h *hold) shapeOf(b *testing.B, wid string) []step {
	steps, n, err := shapeOf(context.Background(), h.s.c, wid)
	if err != nil {
		b.Fatal(err)
	}
	if len(steps) == 0 {
		b.Fatalf("promotion %s did nothing before it parked", wid)
	}
	for i := range steps {
		steps[i].Notify = i == len(steps)-1
	}
	b.Logf("%s: a parked promotion's shape: %d activities, %d local activities in %d workflow tasks", h.wait, n.activities, n.locals, steps[len(steps)-1].Batch)
	return steps
}
