package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer modelplane's own spans come from.
const instrumentationName = "github.com/modelplane/modelplane/telemetry"

// TracingConfig selects where spans go.
type TracingConfig struct {
	// Exporter is "" or "none" (tracing off: a no-op provider, context still
	// propagates) or "otlp" (OTLP over gRPC).
	Exporter string
	// Endpoint is the collector's host:port or URL (http:// implies
	// Insecure). Empty: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317.
	Endpoint string
	// Insecure sends without TLS, for a collector on localhost or a sidecar.
	Insecure bool
	// Headers go with every export, e.g. a vendor's API key.
	Headers map[string]string
	// ServiceName is service.name on every span. Empty: OTEL_SERVICE_NAME,
	// else "modelplane".
	ServiceName string
	// SampleRatio is the share of new traces kept, in (0, 1]; 0 means 1
	// (keep all). A sampled parent from the caller is always honoured.
	SampleRatio float64
}

// SetupTracing installs the global TracerProvider and the W3C trace-context
// and baggage propagator. The returned shutdown flushes buffered spans; call
// it before the process exits.
func SetupTracing(ctx context.Context, cfg TracingConfig) (shutdown func(context.Context) error, err error) {
	// Propagate even with tracing off, so a trace begun upstream of us is
	// not cut at modelplane.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	switch strings.ToLower(cfg.Exporter) {
	case "", "none":
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("tracing exporter %q: want none or otlp", cfg.Exporter)
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing sample ratio %v: want a number in (0, 1]", cfg.SampleRatio)
	}

	var opts []otlptracegrpc.Option
	switch {
	case strings.Contains(cfg.Endpoint, "://"):
		opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	case cfg.Endpoint != "":
		opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
	}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
	}
	// New does not dial: a collector that is down costs dropped spans, not
	// a failed start.
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}

	name := cfg.ServiceName
	if name == "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "modelplane"
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(semconv.ServiceName(name)),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}

	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
