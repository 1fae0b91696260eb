package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/prometheus"
)

// usePrometheus points target prod at a real Prometheus scraping the test's exporter.
func (h *harness) usePrometheus(url string, checks ...modelplane.MetricCheck) {
	h.t.Helper()
	tg, err := h.kit.Store.GetTarget(context.Background(), "prod")
	if err != nil {
		h.t.Fatal(err)
	}
	tg.Prometheus = &modelplane.PrometheusConfig{URL: url, Timeout: modelplane.Duration(5 * time.Second)}
	tg.Analysis.Checks = checks
	if err := tg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.kit.Store.PutTarget(context.Background(), tg); err != nil {
		h.t.Fatal(err)
	}
}

var errorRatio = modelplane.MetricCheck{Name: "error-ratio",
	Query:     `max(model_error_ratio{model="{{.Model}}",version="{{.Version}}",target="{{.Target}}"})`,
	Condition: "result < 0.05"}

func series(name, version string) string {
	return fmt.Sprintf(`%s{model="churn",version=%q,target="prod"}`, name, version)
}

func TestCanaryJudgedByPrometheus(t *testing.T) {
	h := newHarness(t, true)
	h.seed("low")
	exp := testkitExporter(t)
	prom := startPrometheus(t, exp.URL, "", "")
	h.usePrometheus(prom, errorRatio)

	exp.Set(series("model_error_ratio", "v2"), 0.01)
	waitScraped(t, prom, "model_error_ratio")
	id := h.promote("alice", canaryBody("v2", []int{50, 100}, "1s"))
	p := h.waitStatus(id, modelplane.StatusSucceeded, 60*time.Second)
	var checked int
	for _, r := range p.AnalysisResults {
		if r.Check == "error-ratio" {
			checked++
			if r.Value == nil || *r.Value != 0.01 || !strings.Contains(r.Query, `version="v2"`) || r.Phase != modelplane.PhaseSuccessful {
				t.Fatalf("check result = %+v", r)
			}
		}
	}
	if checked < 3 { // two steps and the monitor window
		t.Fatalf("error-ratio measured %d times", checked)
	}

	// The same query, now failing: the canary rolls back and says which check failed.
	h.kit.AddVersion(t, "v3", 0.9)
	exp.Set(series("model_error_ratio", "v3"), 0.2)
	waitScraped(t, prom, `model_error_ratio{version="v3"}`)
	id = h.promote("alice", canaryBody("v3", []int{50, 100}, "1s"))
	p = h.waitStatus(id, modelplane.StatusRolledBack, 60*time.Second)
	if !strings.Contains(p.Reason, "error-ratio: 0.2 does not satisfy result < 0.05") {
		t.Fatalf("reason = %s", p.Reason)
	}
	if h.kit.Traffic(t) != "v2=100" {
		t.Fatalf("traffic = %s", h.kit.Traffic(t))
	}
}

func TestEmptyQueryIsInconclusiveAndBadQueryIsAnError(t *testing.T) {
	h := newHarness(t, true)
	h.seed("low")
	exp := testkitExporter(t)
	prom := startPrometheus(t, exp.URL, "", "")
	h.usePrometheus(prom, modelplane.MetricCheck{Name: "absent", Query: `max(model_error_ratio{version="{{.Version}}"})`, Condition: "result < 1"})
	id := h.promote("alice", canaryBody("v2", []int{100}, "1s"))
	h.waitFor("awaiting decision", 30*time.Second, func() bool { return h.promotion(id).Stage == modelplane.StageAwaitingDecision })
	p := h.promotion(id)
	last := p.AnalysisResults[len(p.AnalysisResults)-1]
	if last.Phase != modelplane.PhaseInconclusive || last.Value != nil || !strings.Contains(last.Message, "no data") {
		t.Fatalf("empty result = %+v", last)
	}
	h.must(h.call("POST", "/v1/promotions/"+id+"/decision", "bob", map[string]any{"decision": "rollback"}), 200)
	h.waitStatus(id, modelplane.StatusRolledBack, 30*time.Second)

	// A malformed query is refused by Prometheus (not retried); with no errors tolerated the run fails at once.
	h.usePrometheus(prom, modelplane.MetricCheck{Name: "broken", Query: `sum(rate(model_error_ratio[{{.Window}}]`, Condition: "result < 1"})
	id = h.promote("alice", map[string]any{"model": "churn", "version": "v2", "target": "prod",
		"strategy": map[string]any{"type": "canary", "steps": []int{100}, "bake": "1s", "monitor_window": "1s"},
		"analysis": map[string]any{"consecutive_error_limit": 0}})
	p = h.waitStatus(id, modelplane.StatusRolledBack, 120*time.Second)
	if !strings.Contains(p.Reason, "broken") || !strings.Contains(p.Reason, "bad_data") {
		t.Fatalf("reason = %s", p.Reason)
	}
}

func testkitExporter(t *testing.T) *testkit.Exporter { return testkit.NewExporter(t) }

func startPrometheus(t *testing.T, target, rules, am string) string {
	return testkit.StartPrometheus(t, target, rules, am)
}

// waitScraped waits until Prometheus has a sample for the selector.
func waitScraped(t *testing.T, prom, selector string) {
	t.Helper()
	c := &prometheus.Client{URL: prom}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, empty, err := c.Query(context.Background(), selector, time.Time{})
		if (err == nil && !empty) || (err != nil && strings.Contains(err.Error(), "series")) {
			return // one sample, or several series: scraped either way
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped %s", selector)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
