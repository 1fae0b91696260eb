package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
)

// benchCaller is the governance-off authenticator: every bearer is alice.
type benchCaller struct{}

func (benchCaller) Authenticate(context.Context, string) (modelplane.Principal, error) {
	return modelplane.Principal{Name: "alice", Teams: []string{"growth"}, Roles: []string{modelplane.RoleRequester}, Method: modelplane.AuthToken}, nil
}

// benchAPI is the API over a fresh SQLite file holding model churn of team
// growth, without Temporal (these routes never reach a workflow). Governed:
// static token auth, the shipped policy, denials audited. Not governed: a
// fixed caller and no policy. Both audit what they change.
func benchAPI(b *testing.B, engine *policy.Engine) http.Handler {
	b.Helper()
	st, err := store.Open(filepath.Join(b.TempDir(), "modelplane.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if _, err := st.CreateModel(context.Background(), modelplane.Model{Name: "churn", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskHigh}); err != nil {
		b.Fatal(err)
	}
	s := &api.Server{Store: st, Auth: benchCaller{}}
	if engine != nil {
		if s.Auth, err = api.NewTokens(govUsers); err != nil {
			b.Fatal(err)
		}
		s.Policy = engine
	}
	return s.Handler()
}

// benchRequest builds the i-th request; each server gets its own copy.
type benchRequest func(i int) *http.Request

// measureOverhead serves the same request to the governed and the
// ungoverned API, alternating which goes first, timing each ServeHTTP, and
// reports both latency distributions and the difference.
func measureOverhead(b *testing.B, engine *policy.Engine, want int, req benchRequest) {
	on, off := benchAPI(b, engine), benchAPI(b, nil)
	serve := func(h http.Handler, r *http.Request) time.Duration {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, r)
		d := time.Since(start)
		if rec.Code != want {
			b.Fatalf("%s %s: status %d, want %d: %s", r.Method, r.URL, rec.Code, want, rec.Body)
		}
		return d
	}
	// Warm both up (policy caches, SQLite pages, the router's pools).
	for i := -1; i >= -50; i-- {
		serve(on, req(i))
		serve(off, req(i))
	}
	onD, offD := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rOn, rOff := req(i), req(i)
		if i%2 == 0 {
			onD = append(onD, serve(on, rOn))
			offD = append(offD, serve(off, rOff))
		} else {
			offD = append(offD, serve(off, rOff))
			onD = append(onD, serve(on, rOn))
		}
	}
	b.StopTimer()

	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	onP50, onP99 := percentile(onD, 0.50), percentile(onD, 0.99)
	offP50, offP99 := percentile(offD, 0.50), percentile(offD, 0.99)
	b.ReportMetric(us(onP50), "on-p50-us")
	b.ReportMetric(us(onP99), "on-p99-us")
	b.ReportMetric(us(offP50), "off-p50-us")
	b.ReportMetric(us(offP99), "off-p99-us")
	b.ReportMetric(us(onP50-offP50), "overhead-p50-us")
	b.ReportMetric(us(onP99-offP99), "overhead-p99-us")
	b.ReportMetric(float64(onP50)/float64(offP50), "ratio-p50")
	b.ReportMetric(float64(onP99)/float64(offP99), "ratio-p99")
	if over := onP99 - offP99; b.N >= 1000 && over > time.Millisecond {
		b.Logf("p99 overhead %s is above the 1 ms target (on %s, off %s, %d calls each)", over, onP99, offP99, b.N)
	}
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// BenchmarkGovernanceOverhead measures what governance adds to one API
// call in-process: token authentication, the policy decision (and, for a
// change, its record on the audit) against the same server with a fixed
// caller and no policy. Run with -benchtime 2000x for stable percentiles.
//
// GET_model repeats one read, which the policy engine answers from its
// decision cache after the warm-up; GET_model_evaluated asks an engine
// with the cache off, so every read is evaluated. Each POST_model names a
// new model: always a fresh question.
func BenchmarkGovernanceOverhead(b *testing.B) {
	auth := as("alice")
	getModel := func(int) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/v1/models/churn", nil)
		r.Header.Set("Authorization", auth)
		return r
	}
	b.Run("GET_model", func(b *testing.B) {
		measureOverhead(b, shipped(b), http.StatusOK, getModel)
	})
	b.Run("GET_model_evaluated", func(b *testing.B) {
		engine, err := policy.New("", policy.WithDecisionCache(0))
		if err != nil {
			b.Fatal(err)
		}
		measureOverhead(b, engine, http.StatusOK, getModel)
	})
	b.Run("POST_model", func(b *testing.B) {
		measureOverhead(b, shipped(b), http.StatusCreated, func(i int) *http.Request {
			name := fmt.Sprintf("m-%d", i)
			if i < 0 {
				name = fmt.Sprintf("warm-%d", -i)
			}
			body := `{"name":"` + name + `","owner":"ml@example.com","team":"growth","risk_tier":"low"}`
			r := httptest.NewRequest(http.MethodPost, "/v1/models", strings.NewReader(body))
			r.Header.Set("Authorization", auth)
			r.Header.Set("Content-Type", "application/json")
			return r
		})
	})
}
