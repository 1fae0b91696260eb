package providers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/kubetest"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/kserve"
	"github.com/modelplane/modelplane/providers/kserve/kservetest"
	"github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
)

// A pipeline stage whose one wave rolls v2 out to two KServe regions on a
// real kube-apiserver, one at a time: region 1 (eu) takes v2, region 2 (us)
// serves v2 badly, so its canary's analysis fails and rolls itself back; the
// wave halts and the stage fails naming us, while eu keeps serving v2.
func TestKServePipelineFailingRegionHaltsTheWave(t *testing.T) {
	c := kubetest.Start(t)
	exp := testkit.NewExporter(t)
	prom := testkit.StartPrometheus(t, exp.URL, "", "")
	provider := kserve.New(kserve.Options{RestConfig: c.Config})

	kit := testkit.New(t, ":memory:")
	kit.Activities.Providers = modelplane.ProviderSet{kserve.Name: provider}
	eng, err := policy.New("")
	if err != nil {
		t.Fatal(err)
	}
	kit.Activities.Policy = eng
	ctx := context.Background()
	if _, err := kit.Store.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskLow}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := kit.Store.CreateVersion(ctx, modelplane.Version{Model: "churn", Version: v, ArtifactURI: "gs://models/churn/" + v, Metrics: map[string]float64{"auc": 0.9}, CreatedBy: "alice"}); err != nil {
			t.Fatal(err)
		}
	}

	// Each region is its own namespace with its own KServe controller; the
	// exporter's gauges stand in for Knative's revision metrics there.
	regions := []struct {
		target   string
		v2Errors float64 // of 10000 requests
	}{{"kube-eu", 3}, {"kube-us", 2500}}
	var last string
	for _, r := range regions {
		ns := c.Namespace(t)
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			kservetest.New(c.Dynamic, ns).Run(runCtx, 20*time.Millisecond, t.Logf)
		}()
		t.Cleanup(func() { cancel(); <-done })
		for v, e5 := range map[string]float64{"v1": 2, "v2": r.v2Errors} {
			labels := fmt.Sprintf(`{namespace=%q,version=%q}`, ns, v)
			exp.Set("serving_requests"+labels, 10000)
			exp.Set("serving_errors"+labels, e5)
			exp.Set("serving_p99_ms"+labels, 40)
		}
		last = fmt.Sprintf(`serving_errors{namespace=%q,version="v2"}`, ns)
		tg := modelplane.Target{Name: r.target, Provider: kserve.Name, Environment: "staging",
			Prometheus: &modelplane.PrometheusConfig{URL: prom},
			Analysis:   modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500)}},
			Config: map[string]string{
				kserve.KeyNamespace: ns, kserve.KeyName: "churn", kserve.KeyModelFormat: "sklearn",
				kserve.KeyRequestsQuery:  `sum(serving_requests{namespace="{{.Namespace}}",version="{{.Version}}"})`,
				kserve.KeyErrorRateQuery: `sum(serving_errors{namespace="{{.Namespace}}",version="{{.Version}}"}) / sum(serving_requests{namespace="{{.Namespace}}",version="{{.Version}}"})`,
				kserve.KeyLatencyQuery:   `max(serving_p99_ms{namespace="{{.Namespace}}",version="{{.Version}}"})`,
			}}
		if err := tg.CheckCapabilities(modelplane.CapabilitiesOf(provider)); err != nil {
			t.Fatal(err)
		}
		if _, err := kit.Store.CreateTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
	}
	// Every figure is set at once, so the last series scraped means all are.
	waitForSample(t, prom, last)

	pipeline := func(s modelplane.RolloutStrategy) modelplane.Pipeline {
		p := modelplane.Pipeline{Name: "regions", Team: "growth", Stages: []modelplane.PipelineStage{{Name: "regional", Auto: true, Strategy: s,
			Waves: []modelplane.Wave{{Name: "regions", Targets: []string{"kube-eu", "kube-us"}, MaxParallel: 1, OnFailure: modelplane.WaveHalt}}}}}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	traffic := func(target string) string {
		t.Helper()
		tg, err := kit.Store.GetTarget(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		st, err := provider.State(ctx, tg, "churn")
		if err != nil {
			t.Fatal(err)
		}
		return st.Traffic.String()
	}

	// v1 everywhere first, through the same pipeline.
	first := runPipeline(t, kit, pipeline(modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Minute)}), "v1")
	if s := first.Stages[0]; s.Status != modelplane.PipelineVerified {
		t.Fatalf("v1: stage %s %s (%s), targets %+v", s.Name, s.Status, s.Note, s.Targets)
	}
	for _, r := range regions {
		if got := traffic(r.target); got != "v1=100" {
			t.Fatalf("after v1 %s serves %s", r.target, got)
		}
	}

	view := runPipeline(t, kit, pipeline(canary(25, 100)), "v2")
	s := view.Stages[0]
	if s.Status != modelplane.PipelineFailed || !strings.HasPrefix(s.Note, "kube-us: promotion") || !strings.Contains(s.Note, "error_rate") {
		t.Fatalf("v2: stage %s %s (%q), want failed naming kube-us's error rate", s.Name, s.Status, s.Note)
	}
	for _, tr := range s.Targets {
		want := map[string]string{"kube-eu": modelplane.StatusSucceeded, "kube-us": modelplane.StatusRolledBack}[tr.Target]
		if tr.Status != want {
			t.Errorf("target %s: %s (%s), want %s", tr.Target, tr.Status, tr.Reason, want)
		}
	}
	if eu, us := traffic("kube-eu"), traffic("kube-us"); eu != "v2=100" || us != "v1=100" {
		t.Fatalf("region 1 serves %s (want v2=100, left as it is), region 2 %s (want v1=100, rolled back)", eu, us)
	}
}

// runPipeline runs a version through a pipeline to completion in a
// time-skipping environment, its promotions as child workflows.
func runPipeline(t *testing.T, kit *testkit.Kit, p modelplane.Pipeline, version string) workflows.PipelineRunView {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 30 * time.Second})
	// Activities run in real time (the KServe controller, Prometheus); the
	// default 3 s for the environment to make progress is too tight under -race.
	env.SetTestTimeout(2 * time.Minute)
	worker.Register(env, kit.Activities)
	// No Temporal client here to start the guardian: the hand-over is dropped.
	env.OnActivity("SignalWithStart", mock.Anything, mock.Anything).Return(nil)
	// As in lifecycle_test.go: each poll waits in real time for the controller.
	env.OnActivity("AwaitOp", mock.Anything, mock.Anything).Return(awaitInRealTime(kit))
	env.ExecuteWorkflow(workflows.PipelineWorkflow, workflows.PipelineRunInput{Pipeline: p, Model: "churn", Version: version, RequestedBy: "alice"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("pipeline %s: completed=%v err=%v", version, env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var view workflows.PipelineRunView
	if err := env.GetWorkflowResult(&view); err != nil {
		t.Fatal(err)
	}
	return view
}
