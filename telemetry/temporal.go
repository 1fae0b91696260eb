package telemetry

import (
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Temporal SDK timers cover a single RPC up to a promotion that waits days
// for approval; the OTel default buckets assume milliseconds and would put
// every observation in the first few.
var temporalBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// TemporalHandler returns a Temporal SDK metrics handler whose metrics
// (temporal_request_total, temporal_workflow_completed_total, …) are served
// by Handler next to the modelplane_ ones. Set it as client.Options
// MetricsHandler; workers built from that client inherit it. Every call
// returns the same handler, since the bridge can be registered only once.
func (m *Metrics) TemporalHandler() client.MetricsHandler {
	m.temporalOnce.Do(func() {
		exp, err := otelprom.New(
			otelprom.WithRegisterer(m.Registry),
			// Scope and target info would add otel_scope_* labels to every
			// series and a target_info family the scrape config already knows.
			otelprom.WithoutScopeInfo(),
			otelprom.WithoutTargetInfo(),
			otelprom.WithAggregationSelector(func(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
				if k == sdkmetric.InstrumentKindHistogram {
					return sdkmetric.AggregationExplicitBucketHistogram{Boundaries: temporalBuckets}
				}
				return sdkmetric.DefaultAggregationSelector(k)
			}),
		)
		if err != nil {
			// Only a name clash in our own registry gets here: a bug, but
			// not one worth taking the worker down for.
			otel.Handle(err)
			m.temporalHandler = client.MetricsNopHandler
			return
		}
		meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)).Meter("go.temporal.io/sdk")
		m.temporalHandler = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter: meter,
			// The SDK's counters only ever grow; as monotonic counters they
			// export as Prometheus counters (…_total) that rate() accepts.
			UseMonotonicCounters: true,
			// The default panics; a metric glitch must not crash a worker.
			OnError: otel.Handle,
		})
	})
	return m.temporalHandler
}

// TemporalTracingInterceptor returns the Temporal OpenTelemetry interceptor,
// using the global TracerProvider. Put it in client.Options.Interceptors of
// both the API's client and the worker's: the client side injects the
// caller's span into workflow headers, the worker side continues it through
// workflow and activity spans, so an activity's ctx carries the trace begun
// by the HTTP request. Call after SetupTracing.
func TemporalTracingInterceptor() (interceptor.Interceptor, error) {
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
}
