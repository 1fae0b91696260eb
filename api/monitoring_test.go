package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/prometheus"
	"golang.org/x/crypto/bcrypt"
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
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	exp := testkit.NewExporter(t)
	prom := testkit.StartPrometheus(t, exp.URL, "", "")
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
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	exp := testkit.NewExporter(t)
	prom := testkit.StartPrometheus(t, exp.URL, "", "")
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

const driftRules = `groups:
  - name: modelplane
    rules:
      - alert: ModelDrift
        expr: max by (model, target, version) (model_drift_score) > 0.3
        for: 0s
        labels:
          severity: page
        annotations:
          value: "{{ $value }}"
          summary: "{{ $labels.model }} {{ $labels.version }} drifts on {{ $labels.target }}"
`

// TestAlertmanagerRollsBackAFullyPromotedModel: a real alert rule fires in a
// real Prometheus, a real Alertmanager posts it to modelplane, and the
// deployment guardian returns traffic to the previous version.
func TestAlertmanagerRollsBackAFullyPromotedModel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	id := h.promote("alice", canaryBody("v2", []int{100}, "200ms"))
	h.waitStatus(id, modelplane.StatusSucceeded, 30*time.Second)
	h.waitGuardian()

	exp := testkit.NewExporter(t)
	exp.Set(series("model_drift_score", "v2"), 0.05)
	am := testkit.StartAlertmanager(t, h.url+"/v1/alerts/alertmanager", tokens["dave"])
	prom := testkit.StartPrometheus(t, exp.URL, driftRules, am)
	waitScraped(t, prom, "model_drift_score")

	changed := time.Now()
	exp.Set(series("model_drift_score", "v2"), 0.8)
	h.waitFor("traffic back on v1", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=100" })
	back := time.Since(changed)

	var fired, received time.Time
	h.waitFor("alert audited", 60*time.Second, func() bool {
		recs := h.must(h.call("GET", "/v1/audit?model=churn", "dave", nil), 200).body["records"].([]any)
		for _, r := range recs {
			rec := r.(map[string]any)
			if rec["action"] == "alert_firing" {
				received, _ = time.Parse(time.RFC3339Nano, rec["time"].(string))
				fired, _ = time.Parse(time.RFC3339Nano, rec["details"].(map[string]any)["starts_at"].(string))
				return rec["actor"] == "dave"
			}
		}
		return false
	})
	t.Logf("drift exported → traffic back: %s; alert active in Prometheus → webhook received: %s; webhook → traffic back: %s",
		back.Round(time.Millisecond), received.Sub(fired).Round(time.Millisecond), changed.Add(back).Sub(received).Round(time.Millisecond))
	h.waitFor("retrain", 60*time.Second, func() bool { return len(h.kit.Sink.Events()) == 1 })
	if ev := h.kit.Sink.Events()[0]; ev.Data["version"] != "v2" {
		t.Fatalf("retrain event = %+v", ev)
	}
}

func TestAlertmanagerWebhookContract(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	alert := func(status, fp string, labels map[string]string) map[string]any {
		return map[string]any{"status": status, "labels": labels, "annotations": map[string]string{"value": "0.7"}, "startsAt": start, "endsAt": time.Time{}, "fingerprint": fp}
	}
	payload := func(alerts ...map[string]any) map[string]any {
		return map[string]any{"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "modelplane", "alerts": alerts}
	}
	labels := map[string]string{"alertname": "ModelDrift", "model": "churn", "target": "prod", "version": "v9"}

	h.must(h.call("POST", "/v1/alerts/alertmanager", "", payload()), 401)
	h.must(h.call("POST", "/v1/alerts/alertmanager", "Basic "+basic("am", "wrong-token-0123456789"), payload()), 401)
	r := h.must(h.call("POST", "/v1/alerts/alertmanager", "dave", map[string]any{"version": "3", "alerts": []any{}}), 400)
	if r.errField() != "version" {
		t.Fatalf("version error = %s", r.raw)
	}

	// Basic auth with the token as password works, as Alertmanager's http_config allows.
	r = h.must(h.call("POST", "/v1/alerts/alertmanager", "Basic "+basic("alertmanager", tokens["dave"]), payload(
		alert("firing", "fp1", labels),
		alert("firing", "fp2", map[string]string{"alertname": "DiskFull", "instance": "node1"}),
	)), 200)
	outcomes := r.body["alerts"].([]any)
	if got := outcomes[0].(map[string]any)["outcome"]; got != "signalled" {
		t.Fatalf("first alert outcome = %v (%s)", got, r.raw)
	}
	if got := outcomes[1].(map[string]any)["outcome"]; got != "ignored" {
		t.Fatalf("unrelated alert outcome = %v", got)
	}
	// Alertmanager repeats notifications: the same alert again is a duplicate.
	r = h.must(h.call("POST", "/v1/alerts/alertmanager", "dave", payload(alert("firing", "fp1", labels))), 200)
	if got := r.body["alerts"].([]any)[0].(map[string]any)["outcome"]; got != "duplicate" {
		t.Fatalf("repeat outcome = %v", got)
	}
	r = h.must(h.call("POST", "/v1/alerts/alertmanager", "dave", payload(alert("resolved", "fp1", labels))), 200)
	if got := r.body["alerts"].([]any)[0].(map[string]any)["outcome"]; got != "resolved_recorded" {
		t.Fatalf("resolve outcome = %v", got)
	}
	audit := h.must(h.call("GET", "/v1/audit?model=churn", "dave", nil), 200).raw
	if strings.Count(audit, `"action":"alert_firing"`) != 1 || strings.Count(audit, `"action":"alert_resolved"`) != 1 {
		t.Fatalf("audit = %s", audit)
	}
	// v9 is not what serves: the guardian-less deployment is untouched.
	if h.kit.Traffic(t) != "v1=100" {
		t.Fatalf("traffic = %s", h.kit.Traffic(t))
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestGuardianJudgesTheStableVersionWithPrometheus: after full promotion the
// guardian keeps running the target's checks; a drift check failing rolls
// back to the previous version and asks for retraining.
func TestGuardianJudgesTheStableVersionWithPrometheus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	exp := testkit.NewExporter(t)
	prom := testkit.StartPrometheus(t, exp.URL, "", "")
	h.usePrometheus(prom, modelplane.MetricCheck{Name: "drift", Drift: true,
		Query: `max(model_drift_score{model="{{.Model}}",version="{{.Version}}"})`, Condition: "result < 0.3"})
	tg, _ := h.kit.Store.GetTarget(context.Background(), "prod")
	tg.GuardInterval = modelplane.Duration(time.Second)
	if err := h.kit.Store.PutTarget(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	exp.Set(series("model_drift_score", "v2"), 0.05)
	waitScraped(t, prom, "model_drift_score")
	id := h.promote("alice", canaryBody("v2", []int{100}, "1s"))
	h.waitStatus(id, modelplane.StatusSucceeded, 60*time.Second)

	exp.Set(series("model_drift_score", "v2"), 0.8)
	h.waitFor("guardian rollback to v1", 30*time.Second, func() bool { return h.kit.Traffic(t) == "v1=100" })
	h.waitFor("retrain", 60*time.Second, func() bool { return len(h.kit.Sink.Events()) == 1 })
	ev := h.kit.Sink.Events()[0]
	if !strings.Contains(ev.Data["reason"].(string), "drift: 0.8 does not satisfy result < 0.3") {
		t.Fatalf("retrain reason = %v", ev.Data["reason"])
	}
}

// TestPrometheusBasicAuth: a Prometheus behind basic auth answers with the
// password read from the environment variable the target names, and refuses
// clearly without it.
func TestPrometheusBasicAuth(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-prom"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(web, []byte("basic_auth_users:\n  modelplane: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exp := testkit.NewExporter(t)
	exp.Set(series("model_error_ratio", "v2"), 0.02)
	prom := testkit.StartPrometheus(t, exp.URL, "", "", "--web.config.file="+web)
	env := map[string]string{"PROM_PASSWORD": "s3cret-prom"}
	c, err := prometheus.FromConfig(modelplane.PrometheusConfig{URL: prom, Username: "modelplane", PasswordEnv: "PROM_PASSWORD"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, empty, err := c.Query(context.Background(), `max(model_error_ratio)`, time.Time{})
		if err == nil && !empty {
			if v != 0.02 {
				t.Fatalf("value = %g", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer with credentials: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	anon := &prometheus.Client{URL: prom}
	if _, _, err := anon.Query(context.Background(), `up`, time.Time{}); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("without credentials: %v", err)
	}
	if _, err := prometheus.FromConfig(modelplane.PrometheusConfig{URL: prom, BearerTokenEnv: "UNSET_TOKEN"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "UNSET_TOKEN") {
		t.Fatalf("empty bearer env: %v", err)
	}
}
