package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mustContain asserts each line appears whole in the exposition text.
func mustContain(t testing.TB, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains("\n"+body, "\n"+l+"\n") {
			t.Errorf("scrape lacks %s", l)
		}
	}
}

// scrape fetches the exposition text through Metrics.Handler, as Prometheus would.
func scrape(t testing.TB, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestDomainMetrics(t *testing.T) {
	m := NewMetrics()
	m.PromotionTransition("promote", "canary", "running", "prod")
	m.PromotionTransition("promote", "canary", "running", "prod")
	m.PromotionTransition("rollback", "full", "succeeded", "staging")
	m.Rollback("drift", "prod")
	m.Rollback("because I said so", "prod") // free text must not become a label value
	m.ApprovalWait("prod", 90*time.Minute)
	m.AnalysisResult("error-rate", "passed")
	m.AnalysisResult("error-rate", "failed")
	m.ProviderCall("sagemaker", "deploy", 2*time.Second, nil)
	m.ProviderCall("sagemaker", "deploy", 3*time.Second, status.Error(codes.ResourceExhausted, "slow down"))
	m.PolicyDecision("promote", true, time.Millisecond)
	m.PolicyDecision("promote", false, time.Millisecond)

	body := scrape(t, m)
	mustContain(t, body,
		`modelplane_promotion_transitions_total{kind="promote",stage="canary",status="running",target="prod"} 2`,
		`modelplane_promotion_transitions_total{kind="rollback",stage="full",status="succeeded",target="staging"} 1`,
		`modelplane_rollbacks_total{cause="drift",target="prod"} 1`,
		`modelplane_rollbacks_total{cause="other",target="prod"} 1`,
		`modelplane_analysis_results_total{check="error-rate",phase="failed"} 1`,
		`modelplane_analysis_results_total{check="error-rate",phase="passed"} 1`,
		`modelplane_provider_call_errors_total{code="throttled",op="deploy",provider="sagemaker"} 1`,
		`modelplane_policy_decisions_total{action="promote",decision="allow"} 1`,
		`modelplane_policy_decisions_total{action="promote",decision="deny"} 1`,
		`# TYPE modelplane_promotion_transitions_total counter`,
		`# TYPE modelplane_approval_wait_seconds histogram`,
	)
	if strings.Contains(body, "said so") {
		t.Error("free-text rollback cause became a label value")
	}
	for _, line := range []string{
		// 90 minutes lands in the 2h bucket, not the 1h one.
		`modelplane_approval_wait_seconds_bucket{target="prod",le="3600"} 0`,
		`modelplane_approval_wait_seconds_bucket{target="prod",le="7200"} 1`,
		`modelplane_approval_wait_seconds_bucket{target="prod",le="604800"} 1`,
		`modelplane_provider_call_duration_seconds_count{op="deploy",provider="sagemaker"} 2`,
		`modelplane_provider_call_duration_seconds_sum{op="deploy",provider="sagemaker"} 5`,
		`modelplane_policy_decision_duration_seconds_count{action="promote"} 2`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %s", line)
		}
	}
	// The per-process registry still carries the runtime collectors.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func TestMetricNamesPassPromlint(t *testing.T) {
	m := NewMetrics()
	m.PromotionTransition("promote", "canary", "running", "prod")
	m.SetPromotionsActive(map[string]int{"canary": 1})
	m.Rollback("manual", "prod")
	m.ApprovalWait("prod", time.Minute)
	m.AnalysisResult("latency", "passed")
	m.ProviderCall("kserve", "deploy", time.Second, errors.New("boom"))
	m.PolicyDecision("promote", true, time.Microsecond)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestSetPromotionsActiveReplacesSnapshot(t *testing.T) {
	m := NewMetrics()
	m.SetPromotionsActive(map[string]int{"canary": 3, "awaiting_approval": 2})
	mustContain(t, scrape(t, m),
		`# TYPE modelplane_promotions_active gauge`,
		`modelplane_promotions_active{stage="awaiting_approval"} 2`,
		`modelplane_promotions_active{stage="canary"} 3`,
	)
	// canary emptied: it must vanish, not stay at 3.
	in := map[string]int{"full": 1}
	m.SetPromotionsActive(in)
	in["full"] = 99 // the caller's map is copied, not kept
	body := scrape(t, m)
	mustContain(t, body, `modelplane_promotions_active{stage="full"} 1`)
	for _, gone := range []string{`stage="canary"`, `stage="awaiting_approval"`} {
		if strings.Contains(body, gone) {
			t.Errorf("stale series %s still exported", gone)
		}
	}
}

func TestObservePassesResultsThrough(t *testing.T) {
	m := NewMetrics()
	v, err := Observe(m, "vertex", "describe", func() (string, error) { return "ready", nil })
	if v != "ready" || err != nil {
		t.Fatalf("got %q, %v", v, err)
	}
	notFound := modelplane.Errorf(modelplane.ENotFound, "no endpoint")
	n, err := Observe(m, "vertex", "describe", func() (int, error) { return 7, notFound })
	if n != 7 || !errors.Is(err, notFound) {
		t.Fatalf("got %d, %v; want 7 and the original error", n, err)
	}
	body := scrape(t, m)
	for _, line := range []string{
		`modelplane_provider_call_duration_seconds_count{op="describe",provider="vertex"} 2`,
		`modelplane_provider_call_errors_total{code="not_found",op="describe",provider="vertex"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %s", line)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func awsErr(status int, code string) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "x"},
	}
}

type statusCoder int

func (s statusCoder) Error() string   { return fmt.Sprintf("status %d", int(s)) }
func (s statusCoder) StatusCode() int { return int(s) }

func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{context.Canceled, ClassCanceled},
		{fmt.Errorf("deploy: %w", context.DeadlineExceeded), ClassTimeout},
		{timeoutErr{}, ClassTimeout},
		{modelplane.Errorf(modelplane.EConflict, "busy"), ClassConflict},
		{modelplane.Errorf(modelplane.EForbidden, "no"), ClassAuth},
		{fmt.Errorf("bad: %w", modelplane.ErrInvalid), ClassInvalid},
		{status.Error(codes.Unavailable, "down"), ClassUnavailable},
		{status.Error(codes.PermissionDenied, "no"), ClassAuth},
		{fmt.Errorf("vertex: %w", status.Error(codes.NotFound, "gone")), ClassNotFound},
		// AWS throttling is a 400 with a code: the code wins.
		{awsErr(400, "ThrottlingException"), ClassThrottled},
		{awsErr(400, "ValidationException"), ClassInvalid},
		{awsErr(503, "SomethingNew"), ClassUnavailable},
		{awsErr(500, "SomethingNew"), ClassInternal},
		{statusCoder(429), ClassThrottled},
		{statusCoder(404), ClassNotFound},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ClassNetwork},
		{errors.New("mystery"), ClassOther},
	} {
		if got := ErrorClass(tc.err); got != tc.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func newTestEcho(mw ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	// The API's handler: domain errors become 4xx, and a committed response
	// is left alone (it may be called twice, see settle).
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := http.StatusInternalServerError
		var me *modelplane.Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &me) && me.Code == modelplane.EConflict:
			code = http.StatusConflict
		case errors.As(err, &he):
			code = he.Code
		}
		_ = c.JSON(code, map[string]string{"error": err.Error()})
	}
	e.Use(mw...)
	e.GET("/promotions/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id")})
	})
	e.POST("/promotions/:id/approve", func(c echo.Context) error {
		return modelplane.Errorf(modelplane.EConflict, "already approved")
	})
	e.GET("/boom", func(c echo.Context) error { return errors.New("kaput") })
	return e
}

func TestEchoMiddlewareLabelsByRouteTemplate(t *testing.T) {
	m := NewMetrics()
	e := newTestEcho(EchoMiddleware(m))
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	do(http.MethodGet, "/promotions/p-7f3a91")
	do(http.MethodGet, "/promotions/p-0c44e2")
	rec := do(http.MethodPost, "/promotions/p-7f3a91/approve")
	// The error went through the app's handler exactly once.
	if rec.Code != http.StatusConflict || strings.Count(rec.Body.String(), "already approved") != 1 {
		t.Fatalf("approve: %d %q", rec.Code, rec.Body)
	}
	do(http.MethodGet, "/boom")
	do("BREW", "/promotions/p-1")  // made-up method
	do(http.MethodGet, "/nowhere") // no route

	body := scrape(t, m)
	for _, line := range []string{
		`modelplane_http_request_duration_seconds_count{code="200",method="GET",route="/promotions/:id"} 2`,
		`modelplane_http_request_duration_seconds_count{code="409",method="POST",route="/promotions/:id/approve"} 1`,
		`modelplane_http_request_duration_seconds_count{code="500",method="GET",route="/boom"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %s", line)
		}
	}
	if !strings.Contains(body, `method="OTHER"`) {
		t.Error("unknown method not folded into OTHER")
	}
	for _, raw := range []string{"p-7f3a91", "p-0c44e2", "BREW", "/nowhere"} {
		if strings.Contains(body, raw) {
			t.Errorf("raw request data %q became a label value", raw)
		}
	}
}

func TestMetricsConcurrentUse(t *testing.T) {
	m := NewMetrics()
	e := newTestEcho(EchoMiddleware(m))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				m.PromotionTransition("promote", "canary", "running", "prod")
				m.SetPromotionsActive(map[string]int{"canary": i + j})
				m.Rollback(modelplane.CauseDecisionTimeout, "prod")
				_, _ = Observe(m, "p", "op", func() (int, error) { return 0, nil })
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/promotions/x", nil))
				if j%10 == 0 {
					rec := httptest.NewRecorder()
					m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
					_, _ = io.Copy(io.Discard, rec.Body)
				}
			}
		}()
	}
	wg.Wait()
	mustContain(t, scrape(t, m),
		`modelplane_rollbacks_total{cause="decision_timeout",target="prod"} 400`,
		`modelplane_http_request_duration_seconds_count{code="200",method="GET",route="/promotions/:id"} 400`,
	)
}

// Every rollback cause is counted under its own name; anything else is "other".
func TestEveryRollbackCauseIsALabel(t *testing.T) {
	m := NewMetrics()
	var want []string
	for _, c := range modelplane.RollbackCauses {
		m.Rollback(c, "prod")
		want = append(want, `modelplane_rollbacks_total{cause="`+string(c)+`",target="prod"} 1`)
	}
	m.Rollback("timeout", "prod")
	mustContain(t, scrape(t, m), append(want, `modelplane_rollbacks_total{cause="other",target="prod"} 1`)...)
}
