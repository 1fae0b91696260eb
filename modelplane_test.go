package modelplane_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func ip(v int) *int         { return &v }
func fp(v float64) *float64 { return &v }

func TestAnalysisRunArgoSemantics(t *testing.T) {
	cases := []struct {
		name   string
		a      modelplane.Analysis
		phases []string
		want   []string
	}{
		{"default tolerates no failure", modelplane.Analysis{}, []string{"successful", "failed"}, []string{"running", "failed"}},
		{"failure_limit 1 tolerates one", modelplane.Analysis{FailureLimit: ip(1)}, []string{"failed", "successful", "failed"}, []string{"running", "running", "failed"}},
		{"failure_limit -1 never fails", modelplane.Analysis{FailureLimit: ip(-1)}, []string{"failed", "failed", "failed"}, []string{"running", "running", "running"}},
		{"errors up to the limit are retried", modelplane.Analysis{}, []string{"error", "error", "error", "error", "error"}, []string{"running", "running", "running", "running", "failed"}},
		{"a success resets consecutive errors", modelplane.Analysis{ConsecutiveErrorLimit: ip(1)}, []string{"error", "successful", "error", "error"}, []string{"running", "running", "running", "failed"}},
		{"no data is inconclusive", modelplane.Analysis{}, []string{"inconclusive"}, []string{"inconclusive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := modelplane.NewAnalysisRun(c.a)
			for i, p := range c.phases {
				if got := r.Add(p); got != c.want[i] {
					t.Fatalf("measurement %d (%s): run = %s, want %s", i, p, got, c.want[i])
				}
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	th := modelplane.Thresholds{MaxErrorRate: fp(0.01), MaxLatencyP99Ms: fp(200), MaxDrift: fp(0.3)}
	if p, _ := modelplane.Evaluate(modelplane.Health{ErrorRate: 0.005, LatencyP99Ms: 150, Drift: 0.1}, th); p != modelplane.PhaseSuccessful {
		t.Fatalf("healthy = %s", p)
	}
	p, msg := modelplane.Evaluate(modelplane.Health{ErrorRate: 0.05, LatencyP99Ms: 250, Drift: 0.1}, th)
	if p != modelplane.PhaseFailed || !strings.Contains(msg, "error_rate") || !strings.Contains(msg, "latency_p99_ms") || strings.Contains(msg, "drift") {
		t.Fatalf("unhealthy = %s (%s)", p, msg)
	}
	if p, _ := modelplane.Evaluate(modelplane.Health{NoData: true, ErrorRate: 0}, th); p != modelplane.PhaseInconclusive {
		t.Fatalf("no data = %s, want inconclusive (never a pass)", p)
	}
	if p, _ := modelplane.Evaluate(modelplane.Health{ErrorRate: 0.9}, modelplane.Thresholds{}); p != modelplane.PhaseSuccessful {
		t.Fatalf("unchecked thresholds = %s", p)
	}
}

func TestStrategyNormalize(t *testing.T) {
	s, err := modelplane.RolloutStrategy{Type: "canary"}.Normalize()
	if err != nil || len(s.Steps) != 4 || s.Bake.D() != modelplane.DefaultBake || s.MonitorWindow.D() != modelplane.DefaultMonitorWindow {
		t.Fatalf("defaults = %+v, %v", s, err)
	}
	s, err = modelplane.RolloutStrategy{Type: "shadow"}.Normalize()
	if err != nil || s.Then != "canary" || s.ShadowPercent != 10 || len(s.Steps) != 4 {
		t.Fatalf("shadow defaults = %+v, %v", s, err)
	}
	bad := map[string]modelplane.RolloutStrategy{
		"strategy.type":           {},
		"strategy.steps[2]":       {Type: "canary", Steps: []int{10, 50, 50, 100}},
		"strategy.steps":          {Type: "direct", Steps: []int{100}},
		"strategy.then":           {Type: "shadow", Then: "bluegreen"},
		"strategy.shadow_percent": {Type: "canary", ShadowPercent: 5},
		"strategy.bake":           {Type: "canary", Bake: -1},
	}
	for field, st := range bad {
		_, err := st.Normalize()
		var e *modelplane.Error
		if !errors.As(err, &e) || e.Field != field {
			t.Errorf("%+v: err = %v, want field %s", st, err, field)
		}
	}
}

func TestValidateCandidate(t *testing.T) {
	m := modelplane.Model{Name: "m", Owner: "o", Team: "t", RiskTier: modelplane.RiskHigh}
	v := modelplane.Version{Version: "2", ArtifactURI: "s3://x", Metrics: map[string]float64{"auc": 0.85, "latency_ms": 30}}
	tg := modelplane.Target{Metrics: modelplane.MetricBounds{Min: map[string]float64{"auc": 0.8, "recall": 0.5}}}
	r := modelplane.ValidateCandidate(m, v, tg, "1", modelplane.MetricBounds{Min: map[string]float64{"auc": 0.9}, Max: map[string]float64{"latency_ms": 50}})
	if r.Passed {
		t.Fatal("passed with auc below the request's gate and recall missing")
	}
	if got := strings.Join(r.Failed(), ","); got != "metric_auc_min,metric_recall_min" {
		t.Fatalf("failed checks = %s", got)
	}
	r = modelplane.ValidateCandidate(m, v, modelplane.Target{}, "2", modelplane.MetricBounds{})
	if got := strings.Join(r.Failed(), ","); got != "not_current_stable" {
		t.Fatalf("failed checks = %s", got)
	}
	if modelplane.RequiredApprovals(modelplane.RiskLow, modelplane.Target{MinApprovals: 1}) != 1 || modelplane.RequiredApprovals(modelplane.RiskCritical, modelplane.Target{MinApprovals: 1}) != 2 {
		t.Fatal("target must raise, never lower, the tier's approvals")
	}
}

func TestTrafficSplitValidate(t *testing.T) {
	for _, bad := range []modelplane.TrafficSplit{{}, {"a": 50}, {"a": 101, "b": -1}, {"": 100}} {
		if bad.Validate() == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if err := (modelplane.TrafficSplit{"a": 90, "b": 10}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDurationJSON(t *testing.T) {
	var d modelplane.Duration
	if err := d.UnmarshalJSON([]byte(`"90s"`)); err != nil || d.String() != "1m30s" {
		t.Fatalf("%v %v", d, err)
	}
	if err := d.UnmarshalJSON([]byte(`"soon"`)); err == nil {
		t.Fatal("bad duration accepted")
	}
}
