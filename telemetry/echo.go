package telemetry

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// unmatchedRoute labels requests the router matched to no route template.
const unmatchedRoute = "unmatched"

// statusText caches status codes as label values: strconv.Itoa allocates
// for every code above 99, i.e. for every response.
var statusText = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func codeLabel(code int) string {
	if code >= 0 && code < len(statusText) {
		return statusText[code]
	}
	return strconv.Itoa(code)
}

// knownMethods bounds the method label: a client can send any token as an
// HTTP method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// route is the matched route template (/promotions/:id), never the raw URL,
// whose IDs would give every request its own series.
func route(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return unmatchedRoute
}

// settle hands err to Echo's error handler now, so the status the handler
// picks (the API maps domain errors to 4xx) is the one recorded; otherwise
// the middleware would see only the error. Echo calls the handler again when
// err is returned, which every handler must tolerate for a committed
// response, as Echo's own does.
func settle(c echo.Context, err error) int {
	if err != nil && !c.Response().Committed {
		c.Error(err)
	}
	if c.Response().Committed {
		return c.Response().Status
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code
	}
	if err != nil {
		return http.StatusInternalServerError
	}
	return c.Response().Status
}

// EchoMiddleware records modelplane_http_request_duration_seconds for every
// request. Register it with Echo#Use (after routing, so c.Path() is the
// template); errors are passed on unchanged.
func EchoMiddleware(m *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			code := settle(c, err)
			m.httpDuration.WithLabelValues(methodLabel(c.Request().Method), route(c), codeLabel(code)).
				Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// w3c is fixed rather than the global propagator so that inbound trace
// context is honoured even if SetupTracing was never called.
var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// EchoTracing starts a server span per request, continuing a W3C traceparent
// from the caller, named "METHOD /route/:template". The span is put in the
// request's context, so handlers that pass c.Request().Context() on (e.g. to
// a Temporal client with TemporalTracingInterceptor) extend the same trace.
// It takes the tracer from the global provider when built: build it after
// SetupTracing.
func EchoTracing() echo.MiddlewareFunc {
	tracer := otel.Tracer(instrumentationName)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := w3c.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			method, rt := methodLabel(req.Method), route(c)
			ctx, span := tracer.Start(ctx, method+" "+rt, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			// Attributes only for spans that keep them: with tracing off or
			// sampled out, building them is wasted allocation per request.
			// (Our samplers decide on trace id and parent, not attributes.)
			recording := span.IsRecording()
			if recording {
				span.SetAttributes(
					semconv.HTTPRequestMethodKey.String(method),
					semconv.HTTPRoute(rt),
					semconv.URLPath(req.URL.Path),
					semconv.URLScheme(c.Scheme()),
				)
				if ua := req.UserAgent(); ua != "" {
					span.SetAttributes(semconv.UserAgentOriginal(ua))
				}
			}
			c.SetRequest(req.WithContext(ctx))

			err := next(c)
			if !recording {
				return err
			}
			code := settle(c, err)
			span.SetAttributes(semconv.HTTPResponseStatusCode(code))
			if err != nil {
				span.RecordError(err)
			}
			// Per HTTP semconv a server span fails only on 5xx: a 404 is the
			// client's mistake, not ours.
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
			return err
		}
	}
}
