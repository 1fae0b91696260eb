package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
)

// TestGovernanceCacheOnReads: the policy engine keeps the answers to
// repeated reads; a caller whose teams change is answered afresh, and
// every request still counts as a policy decision in the metrics.
func TestGovernanceCacheOnReads(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "modelplane.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateModel(context.Background(), modelplane.Model{Name: "churn", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskHigh}); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New("")
	if err != nil {
		t.Fatal(err)
	}
	metrics := telemetry.NewMetrics()
	const secret = "tok-cache-0123456789abcdef"
	server := func(teams ...string) http.Handler {
		auth, err := api.NewTokens([]api.Token{{Name: "erin", Role: api.RoleRequester, Secret: secret, Teams: teams}})
		if err != nil {
			t.Fatal(err)
		}
		return (&api.Server{Store: st, Auth: auth, Policy: engine, Metrics: metrics}).Handler()
	}
	get := func(h http.Handler) int {
		r := httptest.NewRequest(http.MethodGet, "/v1/models/churn", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	requests := 0
	member, outsider := server("growth"), server("fraud")
	for _, step := range []struct {
		name string
		h    http.Handler
		want int
	}{
		{"member", member, http.StatusOK}, {"member", member, http.StatusOK}, {"member, from the cache", member, http.StatusOK},
		{"moved to fraud", outsider, http.StatusForbidden}, {"moved to fraud", outsider, http.StatusForbidden},
		{"moved to fraud, from the cache", outsider, http.StatusForbidden},
		{"back in growth", member, http.StatusOK},
	} {
		if got := get(step.h); got != step.want {
			t.Fatalf("%s: status %d, want %d", step.name, got, step.want)
		}
		requests++
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := 0.0
	for _, f := range families {
		if strings.HasSuffix(f.GetName(), "policy_decisions_total") {
			for _, m := range f.GetMetric() {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	if int(counted) != requests {
		t.Errorf("%v policy decisions counted for %d requests", counted, requests)
	}
}
