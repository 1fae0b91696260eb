package kserve

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// promStandIn answers /api/v1/query like Prometheus: a one-sample vector
// chosen by the query's metric, or an empty vector.
type promStandIn struct {
	mu      sync.Mutex
	queries []string
	values  map[string]string // substring of the query → sample
}

func (p *promStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.FormValue("query")
	p.mu.Lock()
	p.queries = append(p.queries, q)
	// The most specific (longest) matching key wins: the error-rate query
	// mentions the request counter too.
	val, best := "", 0
	for sub, v := range p.values {
		if strings.Contains(q, sub) && len(sub) > best {
			val, best = v, len(sub)
		}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if val == "" {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		return
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%s"]}]}}`, time.Now().Unix(), val)
}

func TestHealthQueriesTheVersionsRevisions(t *testing.T) {
	e := newKEnv(t)
	prom := &promStandIn{values: map[string]string{
		"revision_request_count":            "1200",
		`response_code_class="5xx"`:         "0.02",
		"revision_request_latencies_bucket": "87.5",
	}}
	srv := httptest.NewServer(prom)
	defer srv.Close()
	e.Target.Prometheus = &modelplane.PrometheusConfig{URL: srv.URL}
	e.register(t, "v1", "v2")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "a")
	e.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "b")

	h, err := e.p.Health(ctx, e.Target, e.Model, "v2", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h.NoData || h.Requests != 1200 || h.ErrorRate != 0.02 || h.LatencyP99Ms != 87.5 {
		t.Fatalf("health = %+v", h)
	}
	for _, q := range prom.queries {
		if !strings.Contains(q, `revision_name=~"fraud-predictor-00002"`) || !strings.Contains(q, `namespace_name="`+e.ns+`"`) || !strings.Contains(q, "[300s]") {
			t.Errorf("query does not select v2's revision in the namespace over the window: %s", q)
		}
	}

	// Nothing served: no data, whatever the error and latency queries say.
	delete(prom.values, "revision_request_count")
	if h, err = e.p.Health(ctx, e.Target, e.Model, "v1", time.Minute); err != nil || !h.NoData {
		t.Fatalf("health without requests = %+v, %v; want NoData", h, err)
	}

	// Overridden queries see the template data.
	prom.queries = nil
	e.Target.Config[KeyRequestsQuery] = `my_requests{isvc="{{.Name}}",version="{{.Version}}",model="{{.Model}}"}`
	prom.values["my_requests"] = "5"
	if h, err = e.p.Health(ctx, e.Target, e.Model, "v1", time.Minute); err != nil || h.Requests != 5 {
		t.Fatalf("health with a custom query = %+v, %v", h, err)
	}
	if want := `my_requests{isvc="fraud",version="v1",model="fraud"}`; prom.queries[0] != want {
		t.Fatalf("custom query = %s, want %s", prom.queries[0], want)
	}
}
