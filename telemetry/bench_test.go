package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkEchoMiddleware compares a bare route with the same route behind
// the metrics middleware, and behind metrics plus tracing both off (the
// default) and sampling every request, in one run so the numbers compare.
func BenchmarkEchoMiddleware(b *testing.B) {
	prev := otel.GetTracerProvider()
	b.Cleanup(func() { otel.SetTracerProvider(prev) })
	otel.SetTracerProvider(noop.NewTracerProvider())
	tracingOff := EchoTracing()
	// Recording without an exporter: the cost modelplane adds, not the
	// exporter's.
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())))
	tracingOn := EchoTracing()

	handler := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
	build := func(mw ...echo.MiddlewareFunc) *echo.Echo {
		e := echo.New()
		e.Use(mw...)
		e.GET("/promotions/:id", handler)
		return e
	}
	m := NewMetrics()
	for _, bc := range []struct {
		name string
		e    *echo.Echo
	}{
		{"bare", build()},
		{"metrics", build(EchoMiddleware(m))},
		{"metrics+tracing_off", build(tracingOff, EchoMiddleware(m))},
		{"metrics+tracing_sampled", build(tracingOn, EchoMiddleware(m))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/promotions/p-42", nil)
			b.ReportAllocs()
			for b.Loop() {
				bc.e.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
