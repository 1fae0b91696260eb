package policy

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/modelplane/modelplane"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// benchInputs mix the cheap and the expensive questions modelplane asks.
func benchInputs() []Input {
	approve := question("promotion.approve", bob)
	approve.Request = map[string]any{"evidence_hash": "sha256:e1"}
	approve.Promotion.Approvals = []ApprovalInfo{{Approver: "carl", Decision: "approve", EvidenceHash: "sha256:e1"}}
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

func BenchmarkDecide(b *testing.B) {
	e := defaultEngine(b)
	ins := benchInputs()
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu := processCPU()
	n := 0
	for b.Loop() {
		start := time.Now()
		if _, err := e.Decide(ctx, ins[n%len(ins)]); err != nil {
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
	e := defaultEngine(b)
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
// read-only tool called by a team member, with arguments.
func BenchmarkDecideTool(b *testing.B) {
	e := defaultEngine(b)
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
