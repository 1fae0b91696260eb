package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
)

// One in-process Temporal server serves every test in the package: starting
// one costs seconds on a small machine. Each test has its own client, worker
// and task queue.
var (
	tsOnce sync.Once
	ts     *temporaltest.TestServer
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ts != nil {
		ts.Stop()
	}
	os.Exit(code)
}

func temporalServer() *temporaltest.TestServer {
	tsOnce.Do(func() { ts = temporaltest.NewServer() })
	return ts
}

// dial connects a client with opts to the shared server; the client and
// workers built on it close with the test.
func dial(t *testing.T, opts client.Options) client.Client {
	t.Helper()
	s := temporalServer()
	opts.HostPort = s.GetFrontendHostPort()
	opts.Namespace = s.GetDefaultNamespace()
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func startWorker(t *testing.T, c client.Client, queue string, register func(worker.Registry)) {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

type deployRequest struct {
	PromotionID, Model, Target string
}

func deployWorkflow(ctx workflow.Context, req deployRequest) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, "Deploy", req).Get(ctx, &out)
	return out, err
}

func TestTemporalAndDomainMetricsShareOneScrape(t *testing.T) {
	m := NewMetrics()
	// A second call must hand back the working handler, not fail to
	// register the bridge again and degrade to a no-op.
	_ = m.TemporalHandler()
	c := dial(t, client.Options{MetricsHandler: m.TemporalHandler()})
	const queue = "telemetry-metrics"
	startWorker(t, c, queue, func(r worker.Registry) {
		r.RegisterWorkflow(deployWorkflow)
		r.RegisterActivityWithOptions(func(ctx context.Context, req deployRequest) (string, error) {
			return Observe(m, "fake", "deploy", func() (string, error) { return "endpoint/" + req.Model, nil })
		}, activity.RegisterOptions{Name: "Deploy"})
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, deployWorkflow, deployRequest{Model: "churn"})
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "endpoint/churn" {
		t.Fatalf("workflow: %q, %v", out, err)
	}
	m.PromotionTransition("promote", "full", "succeeded", "prod")

	// The worker records completion around its last task response, which
	// can trail Get: wait for the series instead of assuming.
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		body = scrape(t, m)
		if strings.Contains(body, "\ntemporal_workflow_completed_total{") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no temporal_workflow_completed_total in scrape:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		"# TYPE temporal_request_total counter",
		"\ntemporal_request_total{",
		"# TYPE temporal_workflow_endtoend_latency_seconds histogram",
		"# TYPE temporal_activity_execution_latency_seconds histogram",
		`modelplane_provider_call_duration_seconds_count{op="deploy",provider="fake"} 1`,
		`modelplane_promotion_transitions_total{kind="promote",stage="full",status="succeeded",target="prod"} 1`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// Temporal's series carry its own tags, not OTel scope labels.
	if strings.Contains(body, "otel_scope_name") {
		t.Error("otel scope labels leaked into the exposition")
	}
}

func TestTraceFlowsFromHTTPThroughWorkflowToActivity(t *testing.T) {
	sr := useRecorder(t)
	logs := &syncBuffer{}
	logger, err := NewLogger(logs, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	ti, err := TemporalTracingInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	// One client for API and worker, as in a single-binary deployment; the
	// interceptor is on the client, which hands it to the worker.
	c := dial(t, client.Options{Interceptors: []interceptor.ClientInterceptor{ti}})
	const queue = "telemetry-tracing"
	startWorker(t, c, queue, func(r worker.Registry) {
		r.RegisterWorkflow(deployWorkflow)
		r.RegisterActivityWithOptions(func(ctx context.Context, req deployRequest) (string, error) {
			ctx = WithActivity(ctx)
			ctx, _ = WithPromotion(ctx, logger, req.PromotionID, "", req.Model, req.Target)
			ctx, span := otel.Tracer("provider").Start(ctx, "provider.deploy")
			defer span.End()
			logger.InfoContext(ctx, "deploying", "api_key", "sk-live-123")
			return "ok", nil
		}, activity.RegisterOptions{Name: "Deploy"})
	})

	e := echo.New()
	e.Use(EchoTracing())
	e.POST("/promotions/:id", func(ec echo.Context) error {
		id := ec.Param("id")
		run, err := c.ExecuteWorkflow(ec.Request().Context(),
			client.StartWorkflowOptions{ID: "promote-" + id, TaskQueue: queue},
			deployWorkflow, deployRequest{PromotionID: id, Model: "churn", Target: "prod"})
		if err != nil {
			return err
		}
		return ec.JSON(http.StatusAccepted, map[string]string{"workflow_id": run.GetID()})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/promotions/p-9", nil)
	req.Header.Set("traceparent", "00-"+upstreamTrace+"-"+upstreamSpan+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.GetWorkflow(ctx, "promote-p-9", "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	spans := waitSpans(t, sr, "POST /promotions/:id", "StartWorkflow:deployWorkflow",
		"RunWorkflow:deployWorkflow", "StartActivity:Deploy", "RunActivity:Deploy", "provider.deploy")
	httpSpan, child := spans["POST /promotions/:id"], spans["provider.deploy"]
	if got := httpSpan.SpanContext().TraceID().String(); got != upstreamTrace {
		t.Fatalf("HTTP span trace %s, want the caller's %s", got, upstreamTrace)
	}
	for name, s := range spans {
		if s.SpanContext().TraceID() != httpSpan.SpanContext().TraceID() {
			t.Errorf("%s is in trace %s, not the HTTP request's", name, s.SpanContext().TraceID())
		}
	}
	// The chain is unbroken: HTTP → StartWorkflow, RunActivity → activity's own span.
	if spans["StartWorkflow:deployWorkflow"].Parent().SpanID() != httpSpan.SpanContext().SpanID() {
		t.Error("StartWorkflow is not a child of the HTTP span")
	}
	if child.Parent().SpanID() != spans["RunActivity:Deploy"].SpanContext().SpanID() {
		t.Error("the activity's span is not a child of RunActivity")
	}

	// The activity's log line carries the promotion, the workflow and the trace.
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"msg":"deploying"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, want := range map[string]any{
		KeyPromotionID: "p-9", KeyWorkflowID: "promote-p-9", KeyModel: "churn", KeyTarget: "prod",
		KeyActivity: "Deploy", KeyAttempt: float64(1), KeyTraceID: upstreamTrace,
		KeySpanID: child.SpanContext().SpanID().String(), "api_key": Redacted,
	} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v (line %v)", k, line[k], want, line)
		}
	}
}
