package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"go.temporal.io/server/temporaltest"
)

// The fuzz targets drive the real Echo handler with arbitrary bodies (and
// callers, and idempotency keys) and hold every answer to the API's
// contract: never a 5xx, never a panic; every 4xx is
// {"error": {"code", "message", "field"}}, and a 400 about a well-formed JSON
// object names the field at fault. `go test` runs the seeds; `go test
// -fuzz=FuzzCreatePromotion ./api/` explores.

// fuzzUsers are the callers a fuzzed request may come as: the growth team's
// requester, approver and admin, a requester of another team, and nobody.
var fuzzUsers = []struct{ name, role, team string }{
	{"fz-alice", modelplane.RoleRequester, "growth"},
	{"fz-bob", modelplane.RoleApprover, "growth"},
	{"fz-admin", modelplane.RoleAdmin, "growth"},
	{"fz-eve", modelplane.RoleRequester, "risk"},
	{"", "", ""},
}

func fuzzToken(name string) string { return "fuzz-token-" + name + "-0123456789" }

// fuzzHarness is one API per test process, shared by the fuzz targets:
// built-in policy, in-memory store seeded with a model (fz-model: v1, v2), a
// target (prod, simulated) and a promotion whose workflow does not exist,
// and a real Temporal server without a worker, so a valid promotion starts
// a workflow that simply waits.
type fuzzHarness struct {
	handler   http.Handler
	promotion string
}

var (
	fuzzOnce sync.Once
	fuzzH    *fuzzHarness
	fuzzErr  error
)

func fuzzAPI(tb testing.TB) *fuzzHarness {
	tb.Helper()
	fuzzOnce.Do(func() { fuzzH, fuzzErr = newFuzzHarness() })
	if fuzzErr != nil {
		tb.Fatal(fuzzErr)
	}
	return fuzzH
}

// newFuzzHarness builds what lives as long as the process (fuzz workers
// are processes of their own): nothing here is closed.
func newFuzzHarness() (*fuzzHarness, error) {
	ctx := context.Background()
	st, err := store.Open(":memory:")
	if err != nil {
		return nil, err
	}
	sp, err := sim.New(st.DB(), st)
	if err != nil {
		return nil, err
	}
	engine, err := policy.New("")
	if err != nil {
		return nil, err
	}
	var list []api.Token
	for _, u := range fuzzUsers {
		if u.name != "" {
			list = append(list, api.Token{Name: u.name, Role: u.role, Secret: fuzzToken(u.name), Teams: []string{u.team}})
		}
	}
	auth, err := api.NewTokens(list)
	if err != nil {
		return nil, err
	}
	if _, err := st.CreateModel(ctx, modelplane.Model{Name: "fz-model", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskMedium}); err != nil {
		return nil, err
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := st.CreateVersion(ctx, modelplane.Version{Model: "fz-model", Version: v, ArtifactURI: "s3://m/" + v, Metrics: map[string]float64{"auc": 0.9}}); err != nil {
			return nil, err
		}
	}
	if _, err := st.CreateTarget(ctx, modelplane.Target{Name: "prod", Provider: sim.Name, Environment: "production"}); err != nil {
		return nil, err
	}
	// A running promotion with no workflow: votes, rollbacks and decisions
	// on it pass validation and policy and reach Temporal, which knows nothing of it.
	p := modelplane.Promotion{ID: "p-fuzz", WorkflowID: "promotion/p-fuzz", Model: "fz-model", Version: "v2", Target: "prod", RequestedBy: "fz-alice",
		Stage: modelplane.StageAwaitingApproval, Status: modelplane.StatusRunning, Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}}
	if _, _, err := st.CreatePromotion(ctx, p, ""); err != nil {
		return nil, err
	}
	ts := temporaltest.NewServer()
	srv := &api.Server{Store: st, Temporal: ts.GetDefaultClient(), Auth: auth, Policy: engine,
		Providers: modelplane.ProviderSet{sim.Name: sp}, Sim: sp}
	return &fuzzHarness{handler: srv.Handler(), promotion: p.ID}, nil
}

// do serves one request in-process and checks the answer against the contract.
func (h *fuzzHarness) do(t *testing.T, method, path string, who uint8, body []byte, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if u := fuzzUsers[int(who)%len(fuzzUsers)]; u.name != "" {
		req.Header.Set("Authorization", "Bearer "+fuzzToken(u.name))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	checkContract(t, method+" "+path, body, rec)
	return rec
}

func checkContract(t *testing.T, what string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s answered %d for body %q: %s", what, rec.Code, body, rec.Body.Bytes())
	}
	if rec.Code < 400 {
		return
	}
	var e struct {
		Error *struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%s answered %d with %q for body %q: want {\"error\": {\"code\", \"message\", \"field\"}} (%v)", what, rec.Code, rec.Body.Bytes(), body, err)
	}
	// A well-formed object is wrong in some field: a 400 must say which.
	var obj map[string]json.RawMessage
	if rec.Code == http.StatusBadRequest && json.Unmarshal(body, &obj) == nil && obj != nil && (e.Error.Field == nil || *e.Error.Field == "") {
		t.Fatalf("%s answered 400 without naming the field for the JSON object %q: %s", what, body, rec.Body.Bytes())
	}
}

func FuzzCreateModel(f *testing.F) {
	for _, s := range []string{
		`{"name":"churn","owner":"ml@example.com","team":"growth","risk_tier":"medium"}`,
		`{"name":"churn-2","owner":"ml@example.com","team":"growth","risk_tier":"low","description":"d","data_domain":"pii","tags":{"a":"b"}}`,
		`{"name":"Churn","owner":"o","team":"growth","risk_tier":"low"}`,
		`{"name":"churn","owner":"","team":"growth","risk_tier":"low"}`,
		`{"name":"churn","owner":"o","team":"growth","risk_tier":"extreme"}`,
		`{"name":"churn","owner":"o","team":"risk","risk_tier":"low"}`,
		`{"name":"` + strings.Repeat("a", 64) + `","owner":"o","team":"growth","risk_tier":"low"}`,
		`{"name":"churn","owner":"o","team":"growth","risk_tier":"low","tags":{"a":1}}`,
		`{"name":"churn","owner":"o","team":"growth","risk_tier":"low","colour":"red"}`,
		`{"name":"churn","owner":"o","team":"growth","risk_tier":"low","":1}`,
		`{"name":7}`, `{}`, `null`, `[]`, `"churn"`, `{"name":"churn"}{}`, ``, `{"name":`,
	} {
		f.Add(uint8(0), []byte(s))
	}
	f.Add(uint8(3), []byte(`{"name":"eve-model","owner":"o","team":"growth","risk_tier":"low"}`))
	f.Add(uint8(4), []byte(`{"name":"anon","owner":"o","team":"growth","risk_tier":"low"}`))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, who uint8, body []byte) {
		h.do(t, "POST", "/v1/models", who, body)
	})
}

func FuzzCreateVersion(f *testing.F) {
	for _, s := range []string{
		`{"version":"v9","artifact_uri":"s3://m/v9","metrics":{"auc":0.93},"lineage":{"run_id":"r1","source":"git@x"}}`,
		`{"version":"v1","artifact_uri":"s3://m/v1"}`,
		`{"version":"","artifact_uri":"s3://m/x"}`,
		`{"version":"v 1","artifact_uri":"s3://m/x"}`,
		`{"version":"v10"}`,
		`{"version":"v11","artifact_uri":"s3://m/x","metrics":{"auc":"high"}}`,
		`{"version":"v12","artifact_uri":"s3://m/x","metrics":{"auc":1e400}}`,
		`{"version":"v13","artifact_uri":"s3://m/x","lineage":"main"}`,
		`{"version":"v14","artifact_uri":"s3://m/x","model":"other"}`,
		`{}`, `[]`, `nul`,
	} {
		f.Add(uint8(0), "fz-model", []byte(s))
	}
	f.Add(uint8(0), "no-such-model", []byte(`{"version":"v1","artifact_uri":"s3://m/v1"}`))
	f.Add(uint8(3), "fz-model", []byte(`{"version":"v15","artifact_uri":"s3://m/v15"}`))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, who uint8, model string, body []byte) {
		if !pathSegment(model) {
			return
		}
		h.do(t, "POST", "/v1/models/"+model+"/versions", who, body)
	})
}

func FuzzCreatePromotion(f *testing.F) {
	for _, s := range []string{
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","steps":[10,50,100],"bake":"30s","monitor_window":"1m"}}`,
		`{"model":"fz-model","version":"v1","target":"prod","strategy":{"type":"direct"},"approval_timeout":"2h"}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"shadow","shadow_percent":20,"then":"direct"}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"bluegreen","bake":60}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","steps":[10,50]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","steps":[50,10,100]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","steps":[0,100]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","steps":[10,"50",100]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","shadow_percent":10}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct","then":"canary"}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"linear"}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","bake":"-1s"}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"approval_timeout":"-1h"}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"approval_timeout":true}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"canary","bake":"\u007f"}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"analysis":{"max_error_rate":2}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"analysis":{"failure_limit":-2,"consecutive_error_limit":-1}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"analysis":{"checks":[{"name":"e","query":"up","condition":"result < 1"}]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"analysis":{"checks":[{"name":"e","query":"{{.Nope}}","condition":"result < 1"}]}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"metrics":{"min":{"auc":0.95}}}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"mlflow":{"name":"churn","alias":"candidate"}}`,
		`{"model":"fz-model","target":"prod","strategy":{"type":"direct"},"mlflow":{"name":"churn","version":"3"}}`,
		`{"model":"fz-model","version":"v3","target":"prod","strategy":{"type":"direct"}}`,
		`{"model":"fz-model","version":"v2","target":"nowhere","strategy":{"type":"direct"}}`,
		`{"model":"nope","version":"v2","target":"prod","strategy":{"type":"direct"}}`,
		`{"model":"fz-model","version":"v2","target":"prod"}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":"canary"}`,
		`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"},"priority":1}`,
		`{}`, `[]`, `null`, `{"model":"fz-model"} trailing`, ``,
	} {
		f.Add(uint8(0), "", []byte(s))
	}
	f.Add(uint8(0), "retry-1", []byte(`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"}}`))
	f.Add(uint8(1), "", []byte(`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"}}`))
	f.Add(uint8(3), "", []byte(`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"}}`))
	f.Add(uint8(4), "", []byte(`{"model":"fz-model","version":"v2","target":"prod","strategy":{"type":"direct"}}`))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, who uint8, key string, body []byte) {
		var headers []string
		if key != "" {
			headers = []string{"Idempotency-Key", key}
		}
		h.do(t, "POST", "/v1/promotions", who, body, headers...)
	})
}

func FuzzCreateTarget(f *testing.F) {
	for _, s := range []string{
		`{"name":"edge","provider":"sim","environment":"staging","analysis":{"max_error_rate":0.02,"max_latency_p99_ms":300,"max_drift":0.25},"metrics":{"min":{"auc":0.8}},"min_approvals":2,"guard_interval":"30s"}`,
		`{"name":"edge2","provider":"sim","environment":"production","retrain_webhook":"https://hooks.example.com/r","retrain_secret_env":"HOOK_SECRET","retrain_cooldown":"1h"}`,
		`{"name":"edge3","provider":"sim","environment":"production","prometheus":{"url":"http://prom:9090"},"analysis":{"checks":[{"name":"err","query":"sum(rate(x{model=\"{{.Model}}\"}[{{.Window}}]))","condition":"result < 0.01","count":3,"interval":"10s"}]}}`,
		`{"name":"edge4","provider":"sim","environment":"production","auto_promote":[{"mlflow_model":"churn","model":"fz-model","strategy":{"type":"canary","steps":[25,100]}}]}`,
		`{"name":"edge5","provider":"sim","environment":"production","auto_promote":[{"mlflow_model":"churn","model":"fz-model","strategy":{"type":"canary","steps":[25]}}]}`,
		`{"name":"edge6","provider":"nowhere","environment":"production"}`,
		`{"name":"edge7","provider":"sim","environment":"moon"}`,
		`{"name":"edge8","provider":"sim","environment":"dev","min_approvals":11}`,
		`{"name":"edge9","provider":"sim","environment":"dev","guard_interval":"10ms"}`,
		`{"name":"edge10","provider":"sim","environment":"dev","config":{"rollout":"native"}}`,
		`{"name":"edge11","provider":"sim","environment":"dev","config":{"colour":"red"}}`,
		`{"name":"edge12","provider":"sim","environment":"dev","prometheus":{"url":"prom:9090"}}`,
		`{"name":"edge13","provider":"sim","environment":"dev","analysis":{"checks":[{"name":"x","query":"up","condition":"result ~ 1"}]}}`,
		`{"name":"edge14","provider":"sim","environment":"dev","analysis":{"decision_timeout":"forever"}}`,
		`{"name":"prod","provider":"sim","environment":"production"}`,
		`{}`, `{"name":["a"]}`, `1`,
	} {
		f.Add(uint8(2), []byte(s))
	}
	f.Add(uint8(0), []byte(`{"name":"mine","provider":"sim","environment":"dev"}`))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, who uint8, body []byte) {
		h.do(t, "POST", "/v1/targets", who, body)
	})
}

// FuzzPromotionActions sends votes, rollbacks and decisions about the
// seeded promotion (no workflow behind it) and about one that does not exist.
func FuzzPromotionActions(f *testing.F) {
	for _, c := range []struct {
		action uint8
		body   string
	}{
		{0, `{"decision":"approve","comment":"looks good"}`},
		{0, `{"decision":"reject","evidence_hash":"sha256:00"}`},
		{0, `{"decision":"maybe"}`},
		{0, `{"decision":1}`},
		{1, `{"reason":"error rate"}`},
		{1, `{"reason":"   "}`},
		{1, `{"why":"x"}`},
		{2, `{"decision":"promote"}`},
		{2, `{"decision":"rollback"}`},
		{2, `{"decision":"later"}`},
		{0, `{}`}, {1, `[]`}, {2, ``},
	} {
		for _, who := range []uint8{0, 1} {
			f.Add(c.action, who, false, []byte(c.body))
		}
		f.Add(c.action, uint8(1), true, []byte(c.body))
	}
	h := fuzzAPI(f)
	actions := []string{"approvals", "rollback", "decision"}
	f.Fuzz(func(t *testing.T, action, who uint8, missing bool, body []byte) {
		id := h.promotion
		if missing {
			id = "p-missing"
		}
		h.do(t, "POST", "/v1/promotions/"+id+"/"+actions[int(action)%len(actions)], who, body)
	})
}

func FuzzDriftSignal(f *testing.F) {
	for _, s := range []string{
		`{"model":"fz-model","target":"prod","metric":"psi","score":0.4,"source":"evidently"}`,
		`{"model":"fz-model","target":"prod","version":"v1","metric":"psi","score":0.4}`,
		`{"model":"fz-model","target":"prod","metric":"","score":0.4}`,
		`{"model":"nope","target":"prod","metric":"psi","score":1}`,
		`{"model":"fz-model","target":"nowhere","metric":"psi","score":1}`,
		`{"model":"fz-model","target":"prod","metric":"psi","score":"high"}`,
		`{}`, `[1]`,
	} {
		f.Add(uint8(0), []byte(s))
	}
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, who uint8, body []byte) {
		h.do(t, "POST", "/v1/signals/drift", who, body)
	})
}

// pathSegment keeps fuzzed path parameters to what a client could send
// unescaped in one segment (the router never sees the rest).
func pathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("/?#%", r) {
			return false
		}
	}
	return true
}
