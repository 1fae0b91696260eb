// Package bench measures modelplane against a bare Temporal baseline on the
// same in-process server, in the same run, and reports ratios.
//
//	make bench   (or: go test -run '^$' -bench . -benchtime 30x ./bench/)
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
	mpworker "github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
)

// notifying wraps the real simulator and reports when a split puts one version at 100%.
type notifying struct {
	modelplane.Provider
	full chan string
}

func (n notifying) SetTraffic(ctx context.Context, t modelplane.Target, model string, s modelplane.TrafficSplit, id string) (modelplane.Op, error) {
	op, err := n.Provider.SetTraffic(ctx, t, model, s, id)
	if err == nil && len(s) == 1 {
		for v := range s {
			select {
			case n.full <- v:
			default:
			}
		}
	}
	return op, err
}

// baseline is the smallest workflow with the same shape as a drift rollback:
// wait for a signal, then run one activity.
func baseline(ctx workflow.Context) error {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, "Touch").Get(ctx, nil)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(p*float64(len(s)-1)+0.5)]
}

// BenchmarkDriftToRollback: a drift signal through the API during a canary
// bake until the stable version serves 100% again, against a bare
// signal→activity workflow on the same server.
func BenchmarkDriftToRollback(b *testing.B) {
	ts := temporaltest.NewServer()
	defer ts.Stop()
	kit := testkit.New(b, ":memory:")
	c := ts.GetDefaultClient()
	kit.Activities.Temporal = c
	full := make(chan string, 16)
	kit.Activities.Providers = modelplane.ProviderSet{"sim": notifying{Provider: kit.Sim, full: full}}
	touched := make(chan struct{}, 16)
	ts.NewWorker(workflows.TaskQueue, func(r worker.Registry) {
		mpworker.Register(r, kit.Activities)
		r.RegisterWorkflowWithOptions(baseline, workflow.RegisterOptions{Name: "Baseline"})
		r.RegisterActivityWithOptions(func(context.Context) error { touched <- struct{}{}; return nil }, activity.RegisterOptions{Name: "Touch"})
	})
	id, _ := api.NewTokens([]api.Token{{Name: "alice", Role: api.RoleRequester, Secret: "bench-alice-token-0123"}})
	srv := httptest.NewServer((&api.Server{Store: kit.Store, Temporal: c, Auth: id, Providers: kit.Activities.Providers}).Handler())
	defer srv.Close()
	post := func(path string, body any) map[string]any {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer bench-alice-token-0123")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		if res.StatusCode/100 != 2 {
			b.Fatalf("%s: %d %v", path, res.StatusCode, out)
		}
		return out
	}
	kit.Seed(b, modelplane.RiskLow, "v1", "v2")
	kit.Serve(b, "v1", "")
	ctx := context.Background()

	var ours, base []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Baseline: signal → activity on the same server.
		wid := fmt.Sprintf("baseline-%d", i)
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, "Baseline"); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let it block on the signal
		t0 := time.Now()
		if err := c.SignalWorkflow(ctx, wid, "", "go", nil); err != nil {
			b.Fatal(err)
		}
		<-touched
		base = append(base, time.Since(t0))

		// modelplane: a canary at its first step, then drift.
		p := post("/v1/promotions", map[string]any{"model": "churn", "version": "v2", "target": "prod",
			"strategy": map[string]any{"type": "canary", "steps": []int{10, 100}, "bake": "1h"}})
		pid := p["id"].(string)
		testkit.WaitFor(b, "first step", 30*time.Second, func() bool {
			pr, _ := kit.Store.GetPromotion(ctx, pid)
			return pr.Traffic["v2"] == 10 && pr.Stage == modelplane.StageCanary
		})
		for len(full) > 0 {
			<-full
		}
		b.StartTimer()
		t1 := time.Now()
		post("/v1/signals/drift", map[string]any{"model": "churn", "target": "prod", "version": "v2", "metric": "psi", "score": 0.5})
		for v := range full {
			if v == "v1" {
				break
			}
		}
		ours = append(ours, time.Since(t1))
		b.StopTimer()
		testkit.WaitFor(b, "rolled back", 30*time.Second, func() bool {
			pr, _ := kit.Store.GetPromotion(ctx, pid)
			return pr.Status == modelplane.StatusRolledBack
		})
		b.StartTimer()
	}
	b.StopTimer()
	p50, p99, b50, b99 := percentile(ours, .5), percentile(ours, .99), percentile(base, .5), percentile(base, .99)
	b.ReportMetric(float64(p50.Microseconds())/1000, "drift-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "drift-p99-ms")
	b.ReportMetric(float64(b50.Microseconds())/1000, "baseline-p50-ms")
	b.ReportMetric(float64(b99.Microseconds())/1000, "baseline-p99-ms")
	b.ReportMetric(float64(p50)/float64(b50), "p50-ratio")
	b.ReportMetric(float64(p99)/float64(b99), "p99-ratio")
}
