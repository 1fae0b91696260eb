package testkit

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Exporter serves Prometheus text-format gauges whose values the test sets.
type Exporter struct {
	URL string
	mu  sync.Mutex
	g   map[string]float64 // "name{labels}" → value
}

// NewExporter starts an exporter for the test's lifetime.
func NewExporter(t testing.TB) *Exporter {
	e := &Exporter{g: map[string]float64{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		keys := make([]string, 0, len(e.g))
		for k := range e.g {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, k := range keys {
			fmt.Fprintf(w, "%s %g\n", k, e.g[k])
		}
	}))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	return e
}

// Set sets a gauge, e.g. Set(`model_drift_score{model="churn",version="v2"}`, 0.8).
func (e *Exporter) Set(series string, v float64) {
	e.mu.Lock()
	e.g[series] = v
	e.mu.Unlock()
}

func binary(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s not installed: run hack/ensure-monitoring.sh (make test does)", names[0])
	return ""
}

func waitHTTP(t testing.TB, url string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			// 401: up, behind the basic auth the test configured.
			if res.StatusCode == 200 || res.StatusCode == 401 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become ready:\n%s", url, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartPrometheus runs a real Prometheus scraping target every second and
// evaluating rules every second; alertmanager may be empty.
func StartPrometheus(t testing.TB, target, rules, alertmanager string, extraArgs ...string) string {
	t.Helper()
	bin := binary(t, "prometheus")
	dir := t.TempDir()
	port := FreePorts(t, 1)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: [%q]
rule_files: [rules.yml]
`, strings.TrimPrefix(target, "http://"))
	if alertmanager != "" {
		cfg += fmt.Sprintf(`alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
`, strings.TrimPrefix(alertmanager, "http://"))
	}
	if rules == "" {
		rules = "groups: []\n"
	}
	must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o644))
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := append([]string{"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn"}, extraArgs...)
	p := Start(t, bin, args...)
	waitHTTP(t, url+"/-/ready", p)
	return url
}

// StartAlertmanager runs a real Alertmanager sending every alert to webhook
// with a bearer token, grouping by alert and waiting as little as it allows.
func StartAlertmanager(t testing.TB, webhook, token string) string {
	t.Helper()
	bin := binary(t, "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	port := FreePorts(t, 1)
	cfg := fmt.Sprintf(`route:
  receiver: modelplane
  group_by: [alertname, model, target]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: modelplane
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %q
`, webhook, token)
	must(t, os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644))
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := Start(t, bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=", "--log.level=warn")
	waitHTTP(t, url+"/-/ready", p)
	return url
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
