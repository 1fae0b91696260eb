package telemetry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// useRecorder makes the global TracerProvider record into memory for the
// test. Tests touching the global provider must not run in parallel.
func useRecorder(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prev)
		_ = tp.Shutdown(context.Background())
	})
	return sr
}

// waitSpans waits until spans with all names have ended, then returns them
// by name. Spans end on other goroutines (server, worker), so "ended" is
// awaited rather than assumed.
func waitSpans(t *testing.T, sr *tracetest.SpanRecorder, names ...string) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range sr.Ended() {
			got[s.Name()] = s
		}
		missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool { _, ok := got[n]; return ok })
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			var have []string
			for n := range got {
				have = append(have, n)
			}
			t.Fatalf("spans %v never ended; have %v", missing, have)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

const (
	upstreamTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	upstreamSpan  = "00f067aa0ba902b7"
)

func TestEchoTracingContinuesW3CTrace(t *testing.T) {
	sr := useRecorder(t)
	e := newTestEcho(EchoTracing())
	var handlerSpan trace.SpanContext
	e.GET("/models/:name", func(c echo.Context) error {
		handlerSpan = trace.SpanContextFromContext(c.Request().Context())
		return c.NoContent(http.StatusNoContent)
	})

	req := httptest.NewRequest(http.MethodGet, "/models/churn?x=1", nil)
	req.Header.Set("traceparent", "00-"+upstreamTrace+"-"+upstreamSpan+"-01")
	req.Header.Set("User-Agent", "curl/8")
	e.ServeHTTP(httptest.NewRecorder(), req)

	spans := waitSpans(t, sr, "GET /models/:name")
	s := spans["GET /models/:name"]
	if s.SpanContext().TraceID().String() != upstreamTrace || s.Parent().SpanID().String() != upstreamSpan || !s.Parent().IsRemote() {
		t.Fatalf("span did not continue the caller's trace: trace %s parent %s", s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("kind %v, want server", s.SpanKind())
	}
	if handlerSpan.SpanID() != s.SpanContext().SpanID() {
		t.Error("handler's request context does not carry the server span")
	}
	for k, want := range map[string]string{
		"http.route": "/models/:name", "http.request.method": "GET", "url.path": "/models/churn", "user_agent.original": "curl/8",
	} {
		if got := attr(s, k).AsString(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := attr(s, "http.response.status_code").AsInt64(); got != http.StatusNoContent {
		t.Errorf("status attribute %d", got)
	}
}

func TestEchoTracingStatusFromErrorHandler(t *testing.T) {
	sr := useRecorder(t)
	e := newTestEcho(EchoTracing())
	for _, p := range []struct{ method, path string }{
		{http.MethodPost, "/promotions/p1/approve"}, // domain conflict → 409
		{http.MethodGet, "/boom"},                   // plain error → 500
	} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(p.method, p.path, nil))
	}
	spans := waitSpans(t, sr, "POST /promotions/:id/approve", "GET /boom")

	conflict := spans["POST /promotions/:id/approve"]
	if got := attr(conflict, "http.response.status_code").AsInt64(); got != http.StatusConflict {
		t.Errorf("approve status %d, want 409 as the app's error handler decided", got)
	}
	if conflict.Status().Code == codes.Error {
		t.Error("a 4xx marked the server span failed")
	}
	boom := spans["GET /boom"]
	if boom.Status().Code != codes.Error || attr(boom, "http.response.status_code").AsInt64() != 500 {
		t.Errorf("boom: status %v code %d", boom.Status(), attr(boom, "http.response.status_code").AsInt64())
	}
	if len(boom.Events()) == 0 || boom.Events()[0].Name != "exception" {
		t.Error("error not recorded on the span")
	}
}

func TestSetupTracingOffAndInvalid(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	for _, exp := range []string{"", "none", "NONE"} {
		shutdown, err := SetupTracing(context.Background(), TracingConfig{Exporter: exp})
		if err != nil {
			t.Fatalf("%q: %v", exp, err)
		}
		_, span := otel.Tracer("t").Start(context.Background(), "x")
		if span.IsRecording() {
			t.Errorf("%q: tracing off still records", exp)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Off still propagates W3C context.
	if f := otel.GetTextMapPropagator().Fields(); !slices.Contains(f, "traceparent") {
		t.Errorf("propagator fields %v lack traceparent", f)
	}
	for _, cfg := range []TracingConfig{
		{Exporter: "zipkin"},
		{Exporter: "otlp", SampleRatio: 1.5},
		{Exporter: "otlp", SampleRatio: -0.1},
	} {
		if _, err := SetupTracing(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// fakeCollector is an OTLP/gRPC trace receiver.
type fakeCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu  sync.Mutex
	req []*coltracepb.ExportTraceServiceRequest
	md  []metadata.MD
}

func (f *fakeCollector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.req = append(f.req, req)
	f.md = append(f.md, md)
	f.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestSetupTracingOTLPExportsToCollector(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &fakeCollector{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	ctx := context.Background()
	shutdown, err := SetupTracing(ctx, TracingConfig{
		Exporter: "otlp", Endpoint: lis.Addr().String(), Insecure: true,
		Headers: map[string]string{"x-collector-token": "t0k"}, ServiceName: "modelplane-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(ctx, "promote churn")
	span.End()
	// Shutdown flushes the batcher: the export has happened when it returns.
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	otel.SetTracerProvider(noop.NewTracerProvider())

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.req) == 0 {
		t.Fatal("collector received nothing")
	}
	if got := col.md[0].Get("x-collector-token"); len(got) != 1 || got[0] != "t0k" {
		t.Errorf("header x-collector-token = %v", got)
	}
	rs := col.req[0].GetResourceSpans()[0]
	var service string
	for _, kv := range rs.GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			service = kv.GetValue().GetStringValue()
		}
	}
	if service != "modelplane-test" {
		t.Errorf("service.name = %q", service)
	}
	if name := rs.GetScopeSpans()[0].GetSpans()[0].GetName(); name != "promote churn" {
		t.Errorf("span %q", name)
	}
}
