package providers_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/kubetest"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/kserve"
	"github.com/modelplane/modelplane/providers/kserve/kservetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// KServe on a real kube-apiserver with the real InferenceService CRD; the
// test plays KServe's controller in the background while the workflow polls,
// and a real Prometheus answers the health queries.
func TestKServeLifecycle(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		kservetest.New(c.Dynamic, ns).Run(ctx, 20*time.Millisecond, t.Logf)
	}()
	t.Cleanup(func() { cancel(); <-done })

	exp := testkit.NewExporter(t)
	prom := testkit.StartPrometheus(t, exp.URL, "", "")
	// Gauges per version stand in for Knative's revision metrics; the
	// queries are the target's own templates, as a team would configure them.
	tg := modelplane.Target{Name: "kube-prod", Provider: kserve.Name, Environment: "production",
		Prometheus: &modelplane.PrometheusConfig{URL: prom},
		Config: map[string]string{
			kserve.KeyNamespace: ns, kserve.KeyModelFormat: "sklearn",
			kserve.KeyRequestsQuery:  `sum(serving_requests{namespace="{{.Namespace}}",version="{{.Version}}"})`,
			kserve.KeyErrorRateQuery: `sum(serving_errors{namespace="{{.Namespace}}",version="{{.Version}}"}) / sum(serving_requests{namespace="{{.Namespace}}",version="{{.Version}}"})`,
			kserve.KeyLatencyQuery:   `max(serving_p99_ms{namespace="{{.Namespace}}",version="{{.Version}}"})`,
		}}
	set := func(t *testing.T, v string, n, e5 int64, p99 float64) {
		labels := fmt.Sprintf(`{namespace=%q,version=%q}`, ns, v)
		exp.Set("serving_requests"+labels, float64(n))
		exp.Set("serving_errors"+labels, float64(e5))
		exp.Set("serving_p99_ms"+labels, p99)
	}
	set(t, "v1", 10000, 2, 40)
	set(t, "v2", 10000, 3, 45)
	set(t, "v3", 10000, 2500, 60)
	waitForSample(t, prom, fmt.Sprintf(`serving_requests{namespace=%q,version="v3"}`, ns))

	runLifecycle(t, platform{provider: kserve.New(kserve.Options{RestConfig: c.Config}), target: tg, artifacts: "gs://models",
		// Set up front instead: Prometheus must have scraped the figures
		// before the workflow first measures, and its scrapes run in real time.
		health: func(*testing.T, string, int64, int64, float64) {}})
}

// waitForSample waits until Prometheus has scraped a series, so analysis never
// races the first scrape.
func waitForSample(t *testing.T, prom, series string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var out struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		if testkit.HTTPJSON(t, "GET", prom+"/api/v1/query?query="+url.QueryEscape(series), "", nil, &out) == 200 && len(out.Data.Result) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus never scraped %s", series)
}
