package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
)

func TestGovernanceProbe(t *testing.T) {
	kit := testkit.New(t, ":memory:")
	id, _ := api.NewTokens([]api.Token{{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: []string{"growth"}}})
	s := &api.Server{Store: kit.Store, Auth: id, Policy: governance(t), Providers: kit.Activities.Providers}
	for _, c := range []struct{ m, p, b string }{{"GET", "/v1/models/nope", ""}, {"POST", "/v1/models", "{"}, {"POST", "/v1/models", `{"name":"x"}`}} {
		req := httptest.NewRequest(c.m, c.p, strings.NewReader(c.b))
		req.Header.Set("Authorization", "Bearer "+tokens["alice"])
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		t.Logf("%s %s -> %d %s", c.m, c.p, rec.Code, rec.Body.String())
		_ = http.StatusOK
	}
}
