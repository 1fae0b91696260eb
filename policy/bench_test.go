package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"time"

	"github.com/modelplane/modelplane"

	"github.com/open-policy-agent/opa/v1/rego"
)

// benchInputs mix the cheap and the expensive questions modelplane asks.
func benchInputs() []Input {
	approve := question("promotion.approve", bob)
	approve.Request = map[string]any{"evidence_hash": "sha256:e1"}
	approve.Promotion.Approvals = []modelplane.PolicyApproval{{Approver: "carl", Decision: "approve", EvidenceHash: "sha256:e1"}}
	return []Input{
		question("promotion.start", alice),
		approve,
		question("model.read", audrey),
		question("promotion.step", system),
		question("model.create", mallory), // a deny
	}
}

// reportLatency records each call's duration and reports percentiles:
// ns/op alone hides the tail that matters on a request path.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
}

var (
	uncachedOnce sync.Once
	uncachedEng  *Engine
	uncachedErr  error
)

// uncachedEngine is the default bundle with the decision cache off: every
// question is evaluated.
func uncachedEngine(t testing.TB) *Engine {
	t.Helper()
	uncachedOnce.Do(func() { uncachedEng, uncachedErr = New("", WithDecisionCache(0)) })
	if uncachedErr != nil {
		t.Fatal(uncachedErr)
	}
	return uncachedEng
}

// BenchmarkDecide is the cost of evaluating one decision: the cache is off.
func BenchmarkDecide(b *testing.B) {
	benchDecide(b, uncachedEngine(b))
}

// BenchmarkDecideCached asks the same questions of the engine as deployed:
// after the first two rounds each is answered from the decision cache.
func BenchmarkDecideCached(b *testing.B) {
	e, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	for range 2 { // seen, then traced and kept
		for _, in := range benchInputs() {
			if _, err := e.Decide(context.Background(), in); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchDecide(b, e)
	if c := e.cur.Load().cache; c.hits.Load() < uint64(b.N) {
		b.Fatalf("%d of %d answered from the cache", c.hits.Load(), b.N)
	}
}

// BenchmarkDecideFresh asks the engine as deployed questions it has not
// seen (each names another model): an evaluation plus the cache's
// bookkeeping.
func BenchmarkDecideFresh(b *testing.B) {
	e, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	ins := benchInputs()
	names := make([]string, 1<<16) // more than any -benchtime here asks
	for i := range names {
		names[i] = fmt.Sprintf("model-%d", i)
	}
	benchQuestions(b, e, func(n int) Input {
		in := ins[n%len(ins)]
		in.Asset.Name = names[n%len(names)]
		return in
	})
}

func benchDecide(b *testing.B, e *Engine) {
	ins := benchInputs()
	benchQuestions(b, e, func(n int) Input { return ins[n%len(ins)] })
}

// benchQuestions times Decide on question(0), question(1), … (the
// questions are built outside the timed call).
func benchQuestions(b *testing.B, e *Engine, question func(n int) Input) {
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu := processCPU()
	n := 0
	for b.Loop() {
		in := question(n)
		start := time.Now()
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
		n++
	}
	reportCPU(b, processCPU()-cpu, n)
	reportLatency(b, durations)
}

// reportCPU reports CPU time per decision, GC included.
func reportCPU(b *testing.B, cpu time.Duration, n int) {
	if cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n)/1e3, "cpu-us/op")
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	e := uncachedEngine(b)
	ins := benchInputs()
	ctx := context.Background()
	results := make(chan []time.Duration, 64)
	b.ReportAllocs()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for i := 0; pb.Next(); i++ {
			start := time.Now()
			if _, err := e.Decide(ctx, ins[i%len(ins)]); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(start))
		}
		results <- local
	})
	b.StopTimer()
	cpu = processCPU() - cpu
	close(results)
	var all []time.Duration
	for r := range results {
		all = append(all, r...)
	}
	reportCPU(b, cpu, len(all))
	reportLatency(b, all)
}

// BenchmarkInput compares ways of handing the input to OPA: the hand-built
// value Decide uses, a map[string]any (which OPA round-trips through JSON),
// and the struct itself (marshalled to JSON by OPA).
func BenchmarkInput(b *testing.B) {
	e := defaultEngine(b)
	q := e.cur.Load().query
	in := benchInputs()[1]
	in.Time = tuesday
	ctx := context.Background()
	var asMap map[string]any
	raw, _ := json.Marshal(in)
	if err := json.Unmarshal(raw, &asMap); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		opt  func() rego.EvalOption
	}{
		{"ast", func() rego.EvalOption {
			v, err := inputValue(in)
			if err != nil {
				b.Fatal(err)
			}
			return rego.EvalParsedInput(v)
		}},
		{"map", func() rego.EvalOption { return rego.EvalInput(asMap) }},
		{"struct", func() rego.EvalOption { return rego.EvalInput(in) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Eval(ctx, c.opt(), rego.EvalTime(tuesday)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideTool is the MCP gateway's question on every tool call: a
// read-only tool called by a team member, with arguments (evaluated: the
// cache is off).
func BenchmarkDecideTool(b *testing.B) {
	e := uncachedEngine(b)
	ctx := context.Background()
	in := Input{Caller: modelplane.Principal{Name: "alice", Teams: []string{"growth"}, Roles: []string{modelplane.RoleRequester}, Method: modelplane.AuthToken},
		Asset:  Asset{Kind: KindMCPServer, Name: "io.github.acme/notes", Owner: "alice", Team: "growth", RiskTier: "low", Version: "1.0.0"},
		Target: &TargetInfo{Name: "prod", Environment: "prod", Provider: "mcp"},
		Request: map[string]any{"tool": map[string]any{"name": "search_notes", "annotations": map[string]any{"readOnlyHint": true}},
			"agent": "research-agent", "arguments": map[string]any{"query": "ship v2", "limit": 10}}}
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu := processCPU()
	n := 0
	for b.Loop() {
		start := time.Now()
		d, err := e.DecideTool(ctx, in)
		if err != nil || !d.Allow {
			b.Fatal(err, d.Reasons)
		}
		durations = append(durations, time.Since(start))
		n++
	}
	reportCPU(b, processCPU()-cpu, n)
	reportLatency(b, durations)
}
