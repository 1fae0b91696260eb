// Package bench measures modelplane against bare Temporal baselines run in
// the same process, on the same embedded server, in the same run, and
// reports ratios: absolute figures move with the machine, ratios much less.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./bench/...
//
// Every benchmark reports its figures with b.ReportMetric and hides ns/op
// (one op is a whole round of samples, not a useful unit). See README.md.
package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/temporalserver"
	mpworker "github.com/modelplane/modelplane/worker"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Dev users, as `modelplane dev` creates them: all in team growth.
const (
	alice = "bench-alice-token-0123456789"
	bob   = "bench-bob-token-0123456789"
	team  = "growth"
)

// stack is the embedded deployment `modelplane dev` runs, built in-process:
// Temporal on SQLite files, the store on a SQLite file, the default OPA
// policy, the real worker and the real API over a real listener.
type stack struct {
	b     *testing.B
	c     client.Client
	kit   *testkit.Kit
	url   string
	http  *http.Client
	watch *watcher
}

// newStack starts a stack. With withWorker false nothing polls the task
// queue: started workflows wait, so only the request path costs CPU.
// register adds the baselines to the same worker (same slots, same pollers).
func newStack(b *testing.B, withWorker bool, register func(worker.Registry)) *stack {
	b.Helper()
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	port := testkit.FreePorts(b, temporalserver.Ports)
	ts, err := temporalserver.Start(temporalserver.Config{DBPath: filepath.Join(dir, "temporal.db"), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ts.Stop() })
	// Dialled as modelplane dev dials its own frontend (worker.ClientOptions).
	o, err := mpworker.ClientOptions(config.Temporal{Address: ts.HostPort}, "")
	if err != nil {
		b.Fatal(err)
	}
	o.Logger = tlog.NewStructuredLogger(quiet)
	c, err := client.Dial(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	kit := testkit.New(b, filepath.Join(dir, "modelplane.db"))
	eng, err := policy.New("")
	if err != nil {
		b.Fatal(err)
	}
	kit.Activities.Temporal, kit.Activities.Policy = c, eng
	s := &stack{b: b, c: c, kit: kit, watch: &watcher{}}
	if withWorker {
		// Pollers as `modelplane dev` has them (SDK defaults) unless
		// MODELPLANE_BENCH_POLLERS says otherwise, to see what they limit.
		pollers := envInt(b, "MODELPLANE_BENCH_POLLERS", 0)
		w := mpworker.New(c, kit.Activities, mpworker.Options{Interceptors: []interceptor.WorkerInterceptor{s.watch}, ActivityPollers: pollers, WorkflowPollers: pollers})
		if register != nil {
			register(w)
		}
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			w.Stop()
			// The SDK's workflow cache is per process: empty it, or the next
			// stack's "RSS before" carries this one's parked workflows.
			worker.PurgeStickyWorkflowCache()
		})
	}
	auth, err := api.NewTokens([]api.Token{
		{Name: "alice", Role: api.RoleRequester, Secret: alice, Teams: []string{team}},
		{Name: "bob", Role: api.RoleApprover, Secret: bob, Teams: []string{team}},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := &api.Server{Store: kit.Store, Temporal: c, Auth: auth, Policy: eng, Providers: kit.Activities.Providers, Logger: quiet}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	b.Cleanup(func() { _ = hs.Close() })
	s.url = "http://" + l.Addr().String()
	// Keep-alive connections for every concurrent client, so the figures
	// are requests, not TCP handshakes.
	s.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}
	return s
}

// call sends body as JSON and decodes the answer into out; a status other
// than want is an error carrying the body.
func (s *stack) call(method, path, token string, body, out any, want int) error {
	data, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// promote starts a canary through the API as alice.
func (s *stack) promote(model, version, target string, steps []int, bake, monitor string) (api.PromotionAccepted, error) {
	var acc api.PromotionAccepted
	err := s.call("POST", "/v1/promotions", alice, map[string]any{"model": model, "version": version, "target": target,
		"strategy": map[string]any{"type": "canary", "steps": steps, "bake": bake, "monitor_window": monitor}}, &acc, http.StatusAccepted)
	return acc, err
}

func f64(v float64) *float64 { return &v }

// target creates a simulated target. The guardian checks hourly so its
// background health checks stay out of per-promotion figures.
func (s *stack) target(name, env string) {
	s.b.Helper()
	_, err := s.kit.Store.CreateTarget(context.Background(), modelplane.Target{Name: name, Provider: "sim", Environment: env,
		Analysis:       modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f64(0.05), MaxLatencyP99Ms: f64(500), MaxDrift: f64(0.3)}},
		Metrics:        modelplane.MetricBounds{Min: map[string]float64{"auc": 0.8}},
		GuardInterval:  modelplane.Duration(time.Hour),
		RetrainWebhook: s.kit.Sink.URL, RetrainSecretEnv: testkit.RetrainSecretEnv})
	if err != nil {
		s.b.Fatal(err)
	}
}

// model creates a low-risk model of team growth with versions.
func (s *stack) model(name string, versions ...string) {
	s.b.Helper()
	ctx := context.Background()
	if _, err := s.kit.Store.CreateModel(ctx, modelplane.Model{Name: name, Owner: "ml@example.com", Team: team, RiskTier: modelplane.RiskLow}); err != nil {
		s.b.Fatal(err)
	}
	for _, v := range versions {
		s.version(name, v)
	}
}

func (s *stack) version(model, v string) {
	s.b.Helper()
	if _, err := s.kit.Store.CreateVersion(context.Background(), modelplane.Version{Model: model, Version: v, ArtifactURI: "s3://models/" + model + "/" + v,
		Metrics: map[string]float64{"auc": 0.9}, CreatedBy: "alice"}); err != nil {
		s.b.Fatal(err)
	}
}

// serve makes v the stable version of model on target, as a finished promotion leaves it.
func (s *stack) serve(model, target, v string) {
	s.b.Helper()
	ctx := context.Background()
	t, err := s.kit.Store.GetTarget(ctx, target)
	if err != nil {
		s.b.Fatal(err)
	}
	mv, err := s.kit.Store.GetVersion(ctx, model, v)
	if err != nil {
		s.b.Fatal(err)
	}
	if _, err := s.kit.Sim.RegisterVersion(ctx, t, mv); err != nil {
		s.b.Fatal(err)
	}
	split := modelplane.TrafficSplit{v: 100}
	if _, err := s.kit.Sim.SetTraffic(ctx, t, model, split, "seed/"+model+"/"+v); err != nil {
		s.b.Fatal(err)
	}
	if err := s.kit.Store.PutDeployment(ctx, modelplane.Deployment{Model: model, Target: target, Stable: v, Traffic: split}); err != nil {
		s.b.Fatal(err)
	}
}

// watcher sees every activity the worker completes, so a benchmark can
// react the moment a workflow reaches a point (parked, rolled back) without
// polling, identically for modelplane and for the baselines.
type watcher struct {
	interceptor.WorkerInterceptorBase
	fn atomic.Pointer[func(name string, arg any)]

	mu    sync.Mutex
	spent map[string]time.Duration // time inside each activity type, to say where time goes
	calls map[string]int
}

func (w *watcher) on(fn func(name string, arg any)) { w.fn.Store(&fn) }

func (w *watcher) took(name string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.spent == nil {
		w.spent, w.calls = map[string]time.Duration{}, map[string]int{}
	}
	w.spent[name] += d
	w.calls[name]++
}

// profile lists activity types by time spent (calls × mean time inside the
// activity), and resets the tally.
func (w *watcher) profile() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.spent))
	for n := range w.spent {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(w.spent[b], w.spent[a]) })
	// One line: the testing package keeps only the first lines of a benchmark's log.
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d×%.2fms", n, w.calls[n], ms(w.spent[n])/float64(w.calls[n]))
	}
	w.spent, w.calls = nil, nil
	return strings.Join(parts, ", ")
}

func (w *watcher) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &watchedActivity{root: w}
	a.Next = next
	return a
}

type watchedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	root *watcher
}

func (a *watchedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	t0 := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	a.root.took(activity.GetInfo(ctx).ActivityType.Name, time.Since(t0))
	if fn := a.root.fn.Load(); fn != nil && err == nil && len(in.Args) > 0 {
		(*fn)(activity.GetInfo(ctx).ActivityType.Name, in.Args[0])
	}
	return res, err
}

// --- baselines: bare Temporal, no modelplane code ---

// noop is the baselines' activity; the watcher sees its tag.
func noop(context.Context, string) error { return nil }

// parked runs one activity (tagged, so the driver knows it is parked),
// then waits for a signal or update "go" — or, for bake > 0, on a timer.
func parked(ctx workflow.Context, tag string, bake time.Duration) error {
	got := false
	if err := workflow.SetUpdateHandler(ctx, "go", func(workflow.Context) error { got = true; return nil }); err != nil {
		return err
	}
	sig := workflow.GetSignalChannel(ctx, "go")
	workflow.Go(ctx, func(ctx workflow.Context) { sig.Receive(ctx, nil); got = true })
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	if err := workflow.ExecuteActivity(actx, "BenchNoop", tag).Get(ctx, nil); err != nil {
		return err
	}
	if bake > 0 {
		return workflow.Sleep(ctx, bake)
	}
	if _, err := workflow.AwaitWithTimeout(ctx, 24*time.Hour, func() bool { return got }); err != nil {
		return err
	}
	return workflow.ExecuteActivity(actx, "BenchNoop", tag+"/done").Get(ctx, nil)
}

// parkedVersioned is parked behind one GetVersion, as a new promotion run
// asks one: the Go SDK records a marker and upserts the
// TemporalChangeVersion search attribute with it, so this side measures
// what Temporal charges for versioning a workflow, apart from modelplane.
func parkedVersioned(ctx workflow.Context, tag string, bake time.Duration) error {
	_ = workflow.GetVersion(ctx, "bench-change", workflow.DefaultVersion, 1)
	return parked(ctx, tag, bake)
}

// shapedParked does what a promotion does before it parks, with nothing
// in it: one GetVersion, then the promotion's activities and local
// activities as no-ops in the same workflow tasks (steps, read from a
// parked promotion's history), then a wait. Against it, a promotion's
// extra cost is modelplane's own work; against the bare workflow, this
// side's extra cost is what Temporal charges for the promotion's shape.
func shapedParked(ctx workflow.Context, steps []step, wait time.Duration) error {
	_ = workflow.GetVersion(ctx, "bench-change", workflow.DefaultVersion, 1)
	if err := shaped(ctx, steps); err != nil {
		return err
	}
	return workflow.Sleep(ctx, wait)
}

func registerBaselines(r worker.Registry) {
	r.RegisterActivityWithOptions(noop, activity.RegisterOptions{Name: "BenchNoop"})
	r.RegisterWorkflowWithOptions(parked, workflow.RegisterOptions{Name: "BenchParked"})
	r.RegisterWorkflowWithOptions(parkedVersioned, workflow.RegisterOptions{Name: "BenchParkedVersioned"})
	r.RegisterWorkflowWithOptions(shaped, workflow.RegisterOptions{Name: "BenchShaped"})
	r.RegisterWorkflowWithOptions(shapedParked, workflow.RegisterOptions{Name: "BenchShapedParked"})
}

// --- measurement helpers ---

// cpu is the process's user+system CPU time (all threads: Temporal, worker, API, store).
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB is VmRSS of pid ("self" for this process), in MiB.
func rssMB(pid string) float64 { return statusMB(pid, "VmRSS") }

// statusMB reads one kB field of /proc/PID/status, in MiB.
func statusMB(pid, field string) float64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// settledRSS returns freed memory to the OS first, so RSS tracks what is live.
func settledRSS() (rss, heap float64) {
	m := settledMem()
	return m.rss, m.heap
}

// mem is the process's memory after a GC, in MiB: RSS, live Go heap, the
// heap spans holding it (live plus the free slots between), goroutine stacks (a parked workflow keeps its coroutines' stacks), what
// the Go runtime holds from the OS in all (heap spans, stacks, GC
// metadata), and RSS backed by files (SQLite's shared-memory index).
type mem struct{ rss, heap, inuse, stack, goHeld, file float64 }

func (m mem) sub(o mem) mem {
	return mem{m.rss - o.rss, m.heap - o.heap, m.inuse - o.inuse, m.stack - o.stack, m.goHeld - o.goHeld, m.file - o.file}
}
func (m mem) add(o mem) mem {
	return mem{m.rss + o.rss, m.heap + o.heap, m.inuse + o.inuse, m.stack + o.stack, m.goHeld + o.goHeld, m.file + o.file}
}

func settledMem() mem {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	const mib = 1 << 20
	return mem{rssMB("self"), float64(ms.HeapAlloc) / mib, float64(ms.HeapInuse) / mib, float64(ms.StackInuse) / mib,
		float64(ms.Sys-ms.HeapReleased) / mib, statusMB("self", "RssFile") + statusMB("self", "RssShmem")}
}

// pct is the nearest-rank percentile p (0..1) of d.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(1, len(d)))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// envInt reads a positive integer setting, e.g. MODELPLANE_BENCH_DRIFT_SAMPLES.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s: want a positive integer, got %q", name, v)
	}
	return n
}

// fanOut runs n jobs on `clients` goroutines and returns each job's latency.
func fanOut(n, clients int, job func(i int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := job(i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return lat, first
}

// await waits for a value on ch that satisfies ok, or fails after d.
func await[T any](b *testing.B, what string, ch <-chan T, d time.Duration, ok func(T) bool) {
	b.Helper()
	timeout := time.After(d)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return
			}
		case <-timeout:
			b.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// loadNote records the machine's load average with the results.
func loadNote(b *testing.B) {
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average at start: %s (%d CPUs)", strings.Join(strings.Fields(string(data))[:3], " "), runtime.NumCPU())
	}
}
