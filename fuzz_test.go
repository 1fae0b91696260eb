package modelplane_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

// The fuzz targets decode arbitrary JSON the way the API does and run the
// strategy and analysis checks on it: no panic; a refusal is a field error
// naming the field under the prefix the caller gave; what is accepted is
// normalized to something the workflow can run, and stays so when
// normalized again or sent through JSON. `go test` runs the seeds; `go test
// -fuzz=FuzzRolloutStrategy .` explores.

// fieldError fails unless err is an invalid-field error whose field starts
// with one of prefixes.
func fieldError(t *testing.T, input []byte, err error, prefixes ...string) {
	t.Helper()
	var e *modelplane.Error
	if !errors.As(err, &e) {
		t.Fatalf("%q: error %v (%T) is not a modelplane.Error", input, err, err)
	}
	if e.Code != modelplane.EInvalid || e.Message == "" || !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.Field, p) }) {
		t.Fatalf("%q: error %+v; want code invalid, a message, and a field under %v", input, *e, prefixes)
	}
}

func FuzzRolloutStrategy(f *testing.F) {
	for _, s := range []string{
		`{"type":"canary","steps":[10,25,50,100],"bake":"30s","monitor_window":"10m"}`,
		`{"type":"canary"}`,
		`{"type":"direct","monitor_window":"1s"}`,
		`{"type":"bluegreen","bake":45}`,
		`{"type":"shadow","shadow_percent":20,"steps":[50,100]}`,
		`{"type":"shadow","then":"direct","bake":"1m"}`,
		`{"type":"canary","steps":[10,50]}`,
		`{"type":"canary","steps":[50,10,100]}`,
		`{"type":"canary","steps":[0,100]}`,
		`{"type":"canary","steps":[10,100,100]}`,
		`{"type":"canary","steps":[101]}`,
		`{"type":"canary","steps":[]}`,
		`{"type":"direct","steps":[100]}`,
		`{"type":"direct","steps":[]}`,
		`{"type":"canary","shadow_percent":5}`,
		`{"type":"bluegreen","then":"canary"}`,
		`{"type":"shadow","shadow_percent":101}`,
		`{"type":"shadow","then":"bluegreen"}`,
		`{"type":"canary","bake":"-1s"}`,
		`{"type":"canary","monitor_window":-5}`,
		`{"type":"canary","bake":1e-12}`,
		`{"type":"canary","bake":"2562047h47m16.854775807s"}`,
		`{"type":"rainbow"}`,
		`{"type":""}`,
		`{}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Add([]byte(`{"type":"shadow"}`), false)
	f.Fuzz(func(t *testing.T, data []byte, shadowCapable bool) {
		var s modelplane.RolloutStrategy
		if json.Unmarshal(data, &s) != nil {
			return
		}
		tg := modelplane.Target{Name: "prod", Provider: "p", Environment: "production",
			AutoPromote: []modelplane.AutoPromote{{MLflowModel: "churn", Model: "churn", Strategy: s}}}
		n, err := s.Normalize()
		terr := tg.Validate()
		if err != nil {
			fieldError(t, data, err, "strategy.")
			// A target's auto_promote rule says which rule the field is in.
			fieldError(t, data, terr, "auto_promote[0].strategy.")
			return
		}
		if terr != nil {
			t.Fatalf("%q: strategy valid alone but refused in an auto_promote rule: %v", data, terr)
		}
		checkNormalized(t, data, n)
		again, err := n.Normalize()
		if err != nil || !sameStrategy(again, n) {
			t.Fatalf("%q: normalizing %+v again gave %+v, %v", data, n, again, err)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		var back modelplane.RolloutStrategy
		if err := json.Unmarshal(b, &back); err != nil || !sameStrategy(back, n) {
			t.Fatalf("%q: %+v became %s and then %+v (%v)", data, n, b, back, err)
		}
		err = n.CheckStrategy(tg, modelplane.Capabilities{Shadow: shadowCapable})
		if n.Type == modelplane.StrategyShadow && !shadowCapable {
			fieldError(t, data, err, "strategy.type")
		} else if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
	})
}

// checkNormalized holds a normalized strategy to what the workflow assumes.
func checkNormalized(t *testing.T, data []byte, s modelplane.RolloutStrategy) {
	t.Helper()
	if s.Bake <= 0 || s.MonitorWindow <= 0 {
		t.Fatalf("%q: bake %s, monitor window %s: want both positive", data, s.Bake, s.MonitorWindow)
	}
	shadow := s.Type == modelplane.StrategyShadow
	switch s.Type {
	case modelplane.StrategyDirect, modelplane.StrategyCanary, modelplane.StrategyBlueGreen, modelplane.StrategyShadow:
	default:
		t.Fatalf("%q: accepted type %q", data, s.Type)
	}
	if shadow != (s.ShadowPercent != 0) || (shadow && (s.ShadowPercent < 1 || s.ShadowPercent > 100)) {
		t.Fatalf("%q: type %s with shadow_percent %d", data, s.Type, s.ShadowPercent)
	}
	if shadow != (s.Then != "") || (shadow && s.Then != modelplane.StrategyCanary && s.Then != modelplane.StrategyDirect) {
		t.Fatalf("%q: type %s then %q", data, s.Type, s.Then)
	}
	steps := s.Type == modelplane.StrategyCanary || (shadow && s.Then == modelplane.StrategyCanary)
	if !steps {
		if len(s.Steps) > 0 {
			t.Fatalf("%q: %s with steps %v", data, s.Type, s.Steps)
		}
		return
	}
	prev := 0
	for _, w := range s.Steps {
		if w <= prev || w > 100 {
			t.Fatalf("%q: steps %v do not increase within 1..100", data, s.Steps)
		}
		prev = w
	}
	if prev != 100 {
		t.Fatalf("%q: steps %v do not end at 100", data, s.Steps)
	}
}

// sameStrategy compares strategies, an empty step list equal to none.
func sameStrategy(a, b modelplane.RolloutStrategy) bool {
	if !slices.Equal(a.Steps, b.Steps) {
		return false
	}
	a.Steps, b.Steps = nil, nil
	return reflect.DeepEqual(a, b)
}

func FuzzAnalysis(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"max_error_rate":0.01,"max_latency_p99_ms":250,"max_drift":0.2,"failure_limit":1,"consecutive_error_limit":2,"decision_timeout":"30m"}`,
		`{"failure_limit":-1}`,
		`{"max_error_rate":0}`,
		`{"max_error_rate":1.5}`,
		`{"max_error_rate":-0.1}`,
		`{"max_latency_p99_ms":-1}`,
		`{"max_drift":-1}`,
		`{"failure_limit":-2}`,
		`{"consecutive_error_limit":-1}`,
		`{"decision_timeout":"-1m"}`,
		`{"decision_timeout":90}`,
		`{"checks":[{"name":"errors","query":"sum(rate(http_errors{model=\"{{.Model}}\",version=\"{{.Version}}\"}[{{.Window}}]))","condition":"result < 0.01","count":3,"interval":"10s"}]}`,
		`{"checks":[{"name":"drift","query":"model_drift{target=\"{{.Target}}\"}","condition":"result >= 0 && result <= 0.3","drift":true}]}`,
		`{"checks":[{"name":"p","query":"up","condition":"result == 1 || result == 2"}]}`,
		`{"checks":[{"name":"loop","query":"{{range 3}}up{{end}}","condition":"result > 0"}]}`,
		`{"checks":[{"name":"","query":"up","condition":"result < 1"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result < 1"},{"name":"a","query":"up","condition":"result < 1"}]}`,
		`{"checks":[{"name":"a","query":"  ","condition":"result < 1"}]}`,
		`{"checks":[{"name":"a","query":"{{.Nope}}","condition":"result < 1"}]}`,
		`{"checks":[{"name":"a","query":"{{","condition":"result < 1"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result < 1 && result > 0 || result == 5"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"value < 1"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result ~ 1"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result < one"}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result < 1","count":101}]}`,
		`{"checks":[{"name":"a","query":"up","condition":"result < 1","interval":"-1s"}]}`,
	} {
		f.Add([]byte(s), 0.01, 120.0, 0.1, false)
	}
	f.Add([]byte(`{"max_error_rate":0.01}`), 0.5, 40.0, 0.0, true)
	defaults := modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: ptr(0.05), MaxLatencyP99Ms: ptr(500.0), MaxDrift: ptr(0.3)}}
	// Long values, so that a query template that repeats them stands out.
	vars := modelplane.QueryVars{Model: strings.Repeat("m", 63), Version: strings.Repeat("v", 63), Target: strings.Repeat("t", 63), Window: "10m"}
	f.Fuzz(func(t *testing.T, data []byte, errorRate, latency, drift float64, noData bool) {
		var a modelplane.Analysis
		if json.Unmarshal(data, &a) != nil {
			return
		}
		n, err := modelplane.NormalizeAnalysis(a, defaults)
		tg := modelplane.Target{Name: "prod", Provider: "p", Environment: "production", Analysis: a, Prometheus: &modelplane.PrometheusConfig{URL: "http://prom:9090"}}
		terr := tg.Validate()
		if err != nil {
			fieldError(t, data, err, "analysis.")
			fieldError(t, data, terr, "analysis.")
			return
		}
		if terr != nil {
			t.Fatalf("%q: analysis valid for a promotion but refused for a target: %v", data, terr)
		}
		if n.FailureLimit == nil || n.ConsecutiveErrorLimit == nil || n.DecisionTimeout <= 0 {
			t.Fatalf("%q: normalized %+v lacks Argo's defaults", data, n)
		}
		for name, p := range map[string]*float64{"max_error_rate": n.MaxErrorRate, "max_latency_p99_ms": n.MaxLatencyP99Ms, "max_drift": n.MaxDrift} {
			if p == nil || *p < 0 {
				t.Fatalf("%q: %s = %v after merging the target's defaults", data, name, p)
			}
		}
		for _, c := range n.Checks {
			q, err := c.Render(vars)
			if err != nil {
				t.Fatalf("%q: check %s passed validation but does not render: %v", data, c.Name, err)
			}
			// Substitution may lengthen a query by the values it names, no
			// more: a template that loops would turn a short request into an
			// arbitrarily long query (and validation into as much work).
			if max := 64*len(c.Query) + 64; len(q) > max {
				t.Fatalf("%q: check %s renders %d bytes from a %d-byte template", data, c.Name, len(q), len(c.Query))
			}
			if phase, msg := modelplane.EvaluateCheck(c, errorRate, noData); !slices.Contains([]string{modelplane.PhaseSuccessful, modelplane.PhaseFailed, modelplane.PhaseInconclusive}, phase) || msg == "" {
				t.Fatalf("%q: check %s judged %v as %q (%q)", data, c.Name, errorRate, phase, msg)
			}
		}
		run := modelplane.NewAnalysisRun(n)
		phase, msg := modelplane.Evaluate(modelplane.Health{Version: "v2", Requests: 100, ErrorRate: errorRate, LatencyP99Ms: latency, Drift: drift, NoData: noData}, n.Thresholds)
		switch {
		case noData && phase != modelplane.PhaseInconclusive:
			t.Fatalf("%q: no data judged %s: silence must never pass", data, phase)
		case !noData && phase != modelplane.PhaseSuccessful && phase != modelplane.PhaseFailed:
			t.Fatalf("%q: a measurement judged %s (%s)", data, phase, msg)
		}
		if got := run.Add(phase); !slices.Contains([]string{modelplane.PhaseRunning, modelplane.PhaseFailed, modelplane.PhaseInconclusive}, got) {
			t.Fatalf("%q: the run is %q after one %s measurement", data, got, phase)
		}
	})
}

func ptr[T any](v T) *T { return &v }
