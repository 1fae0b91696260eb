package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"
)

var tokens = map[string]string{
	"alice": "tok-alice-0123456789abcdef", // requester
	"dave":  "tok-dave-0123456789abcdef",  // requester
	"bob":   "tok-bob-0123456789abcdef",   // approver
	"carol": "tok-carol-0123456789abcdef", // approver
	"admin": "tok-admin-0123456789abcdef",
}

type harness struct {
	t      *testing.T
	ts     *temporaltest.TestServer
	kit    *testkit.Kit
	client client.Client
	url    string
	worker sdkworker.Worker
}

func newHarness(t *testing.T, withWorker bool) *harness {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	kit := testkit.New(t, ":memory:")
	c := ts.GetDefaultClient()
	kit.Activities.Temporal = c
	kit.Activities.Policy = governance(t)
	id, err := api.NewTokens([]api.Token{
		{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: []string{"growth"}},
		{Name: "dave", Role: api.RoleRequester, Secret: tokens["dave"], Teams: []string{"growth"}},
		{Name: "bob", Role: api.RoleApprover, Secret: tokens["bob"], Teams: []string{"growth"}},
		{Name: "carol", Role: api.RoleApprover, Secret: tokens["carol"], Teams: []string{"growth"}},
		{Name: "admin", Role: api.RoleAdmin, Secret: tokens["admin"], Teams: []string{"growth"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	kit.Activities.Directory = id.Lookup
	srv := httptest.NewServer((&api.Server{Store: kit.Store, Temporal: c, Auth: id, Policy: governance(t), Providers: kit.Activities.Providers, Sim: kit.Sim}).Handler())
	t.Cleanup(srv.Close)
	h := &harness{t: t, ts: ts, kit: kit, client: c, url: srv.URL}
	if withWorker {
		h.startWorker()
	}
	return h
}

func (h *harness) startWorker() {
	// The worker's own interceptors: votes are attributed to stamped principals.
	h.worker = h.ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, h.kit.Activities) },
		sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.Interceptor()}})
}

type resp struct {
	status int
	body   map[string]any
	raw    string
}

func (r resp) errField() string {
	e, _ := r.body["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

func (r resp) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (h *harness) call(method, path, user string, body any, headers ...string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	if tok, ok := tokens[user]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if user != "" {
		req.Header.Set("Authorization", user)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (h *harness) must(r resp, status int) resp {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// seed creates model churn (tier), versions v1 and v2 via the API, and serves v1.
func (h *harness) seed(tier string) {
	h.kit.Seed(h.t, modelplane.RiskTier(tier)) // target prod with the retrain sink
	h.must(h.call("POST", "/v1/models", "alice", map[string]any{}), 400)
	h.must(h.call("DELETE", "/v1/models/churn", "alice", nil), 405)
	for _, v := range []string{"v1", "v2"} {
		h.must(h.call("POST", "/v1/models/churn/versions", "alice", map[string]any{"version": v, "artifact_uri": "s3://m/" + v, "metrics": map[string]float64{"auc": 0.9}, "lineage": map[string]string{"run_id": "run-" + v}}), 201)
	}
	h.kit.Serve(h.t, "v1", "")
}

func (h *harness) promote(user string, body map[string]any, headers ...string) string {
	h.t.Helper()
	r := h.must(h.call("POST", "/v1/promotions", user, body, headers...), 202)
	return r.body["id"].(string)
}

func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitGuardian waits until the first successful promotion has started the deployment guardian.
func (h *harness) waitGuardian() {
	h.t.Helper()
	h.waitFor("guardian running", 60*time.Second, func() bool {
		_, err := h.client.DescribeWorkflowExecution(context.Background(), workflows.GuardianWorkflowID("churn", "prod"), "")
		return err == nil
	})
}

func (h *harness) promotion(id string) modelplane.Promotion {
	p, err := h.kit.Store.GetPromotion(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) waitStatus(id, status string, timeout time.Duration) modelplane.Promotion {
	h.t.Helper()
	// A deadline only bounds a failure; on a loaded 2-core runner with the
	// race detector a passing run can take far longer than the timers in it.
	timeout = max(timeout, 2*time.Minute)
	var p modelplane.Promotion
	h.waitFor("promotion "+id+" "+status, timeout, func() bool {
		p = h.promotion(id)
		if modelplane.Terminal(p.Status) && p.Status != status {
			h.t.Fatalf("promotion ended %s (%s), want %s", p.Status, p.Reason, status)
		}
		return p.Status == status
	})
	return p
}

func canaryBody(version string, steps []int, bake string) map[string]any {
	return map[string]any{"model": "churn", "version": version, "target": "prod",
		"strategy": map[string]any{"type": "canary", "steps": steps, "bake": bake, "monitor_window": bake}}
}

func TestApprovalByUpdateAndSignalThenCanaryThenGuardianRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("high")
	id := h.promote("admin", canaryBody("v2", []int{50, 100}, "300ms"))
	h.waitFor("awaiting approval", 60*time.Second, func() bool { return h.promotion(id).Stage == modelplane.StageAwaitingApproval })

	// Four-eyes: the requester cannot approve, even with a role that may approve.
	r := h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "admin", map[string]any{"decision": "approve"}), 403)
	if !strings.Contains(r.errMessage(), "four-eyes") {
		t.Fatalf("self-approval message = %q", r.errMessage())
	}
	// An approver votes through the API (a workflow update)…
	r = h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "bob", map[string]any{"decision": "approve", "comment": "metrics fine"}), 200)
	if n := len(r.body["approvals"].([]any)); n != 1 {
		t.Fatalf("approvals after bob = %d", n)
	}
	// …a second vote by the same approver is refused by the policy (four-eyes counts people, not votes).
	r = h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "bob", map[string]any{"decision": "approve"}), 403)
	if !strings.Contains(r.errMessage(), "already voted") {
		t.Fatalf("duplicate vote message = %q", r.errMessage())
	}
	// …and another signs off the way the Temporal Web UI does: a signal.
	if err := h.client.SignalWorkflow(context.Background(), workflows.PromotionWorkflowID(id), "", workflows.Approve, workflows.Vote{Approver: "carol", Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	p := h.waitStatus(id, modelplane.StatusSucceeded, 30*time.Second)
	if len(p.Approvals) != 2 || p.Approvals[0].Via != "api" || p.Approvals[1].Via != "signal" {
		t.Fatalf("approvals = %+v", p.Approvals)
	}
	got := h.must(h.call("GET", "/v1/promotions/"+id, "dave", nil), 200)
	if got.body["status"] != "succeeded" || len(got.body["history"].([]any)) < 5 || len(got.body["analysis_results"].([]any)) < 3 {
		t.Fatalf("GET promotion = %s", got.raw)
	}
	dep := h.must(h.call("GET", "/v1/deployments/prod/churn", "dave", nil), 200)
	if dep.body["stable_version"] != "v2" || dep.body["previous_stable_version"] != "v1" {
		t.Fatalf("deployment = %s", dep.raw)
	}

	// After full promotion the guardian owns the pair: drift rolls back to v1 and asks for retraining.
	h.waitGuardian()
	r = h.must(h.call("POST", "/v1/signals/drift", "dave", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.41, "source": "evidently"}), 202)
	aff := r.body["affected"].([]any)
	if len(aff) != 1 || aff[0].(map[string]any)["kind"] != "deployment" {
		t.Fatalf("affected = %s", r.raw)
	}
	h.waitFor("rollback to v1", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=100" })
	h.waitFor("retrain webhook", 60*time.Second, func() bool { return len(h.kit.Sink.Events()) == 1 })
	ev := h.kit.Sink.Events()[0]
	if ev.Data["version"] != "v2" || !strings.HasPrefix(ev.ID, "deployment/churn/prod/retrain/") {
		t.Fatalf("retrain event = %+v", ev)
	}
	// Both histories replay against the current workflow code: a
	// non-deterministic change to either fails here.
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.Promotion, workflow.RegisterOptions{Name: workflows.PromotionWorkflow})
	replayer.RegisterWorkflowWithOptions(workflows.DeploymentGuardian, workflow.RegisterOptions{Name: workflows.GuardianWorkflow})
	for _, wid := range []string{workflows.PromotionWorkflowID(id), workflows.GuardianWorkflowID("churn", "prod")} {
		hist := h.client.GetWorkflowHistory(context.Background(), wid, "", false, 0)
		var events []*historypb.HistoryEvent
		for hist.HasNext() {
			ev, err := hist.Next()
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
		}
		if err := replayer.ReplayWorkflowHistory(nil, &historypb.History{Events: events}); err != nil {
			t.Fatalf("replay of %s: %v", wid, err)
		}
	}

	// The guardian records the retrain after the webhook answered: wait for it.
	wants := []string{`"action":"vote"`, `"action":"denied"`, `"action":"rollback"`, `"action":"retrain"`, `"actor":"carol"`}
	var audit resp
	h.waitFor("audit trail", 60*time.Second, func() bool {
		audit = h.must(h.call("GET", "/v1/audit?model=churn", "dave", nil), 200)
		for _, want := range wants {
			if !strings.Contains(audit.raw, want) {
				return false
			}
		}
		return true
	})
}

func TestDriftDuringRolloutRollsBackAndSignsRetrain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	id := h.promote("alice", canaryBody("v2", []int{10, 50, 100}, "30s"))
	h.waitFor("first canary step", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=90,v2=10" })
	start := time.Now()
	r := h.must(h.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "version": "v2", "metric": "psi", "score": 0.5}), 202)
	if !strings.Contains(r.raw, `"kind":"promotion"`) {
		t.Fatalf("affected = %s", r.raw)
	}
	h.waitFor("stable back at 100%", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=100" })
	t.Logf("drift → stable at 100%%: %s", time.Since(start).Round(time.Millisecond))
	p := h.waitStatus(id, modelplane.StatusRolledBack, 10*time.Second)
	if !strings.Contains(p.Reason, "psi=0.5") {
		t.Fatalf("reason = %s", p.Reason)
	}
	h.waitFor("retrain", 60*time.Second, func() bool { return len(h.kit.Sink.Events()) == 1 })
	if rej := h.kit.Sink.Rejected(); len(rej) != 0 {
		t.Fatalf("sink rejected signatures: %v", rej)
	}
	// The pair is free again: a new promotion may start.
	h.promote("alice", canaryBody("v2", []int{100}, "1s"))
}

func TestWorkerStoppedMidBakeResumesWithoutDuplicateTrafficChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	id := h.promote("alice", canaryBody("v2", []int{30, 60, 100}, "1500ms"))
	h.waitFor("first canary step", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=70,v2=30" })
	h.worker.Stop()
	time.Sleep(2 * time.Second) // the bake timer fires while no worker runs
	h.startWorker()
	h.waitStatus(id, modelplane.StatusSucceeded, 60*time.Second)
	var got []string
	for _, m := range h.kit.TrafficMutations(t) {
		got = append(got, m.Detail)
	}
	if strings.Join(got, " ") != "v1=70,v2=30 v1=40,v2=60 v2=100" {
		t.Fatalf("traffic changes = %v", got)
	}
}

func TestIdempotencyKeyAndOnePromotionPerPair(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("medium") // waits for approval: stays active
	body := canaryBody("v2", []int{100}, "1s")
	a := h.promote("alice", body, "Idempotency-Key", "release-42")
	b := h.promote("alice", body, "Idempotency-Key", "release-42")
	if a != b {
		t.Fatalf("same Idempotency-Key gave %s and %s", a, b)
	}
	r := h.must(h.call("POST", "/v1/promotions", "dave", body, "Idempotency-Key", "release-42"), 409)
	if !strings.Contains(r.errMessage(), a) {
		t.Fatalf("409 does not name the running promotion %s: %s", a, r.raw)
	}
	r = h.must(h.call("POST", "/v1/promotions", "alice", body), 409)
	if !strings.Contains(r.errMessage(), a) || r.errField() != "target" {
		t.Fatalf("409 = %s", r.raw)
	}
	list := h.must(h.call("GET", "/v1/promotions?model=churn&status=running", "alice", nil), 200)
	if n := len(list.body["promotions"].([]any)); n != 1 {
		t.Fatalf("running promotions = %d", n)
	}
	// A manual rollback before any traffic moved ends it and frees the pair.
	h.must(h.call("POST", "/v1/promotions/"+a+"/rollback", "dave", map[string]any{"reason": "wrong version"}), 202)
	h.waitStatus(a, modelplane.StatusRolledBack, 10*time.Second)
	h.must(h.call("POST", "/v1/promotions/"+a+"/rollback", "dave", map[string]any{"reason": "again"}), 409)
	h.promote("alice", body)
}

func TestErrorPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("medium")
	running := h.promote("alice", canaryBody("v2", []int{100}, "1s"))
	h.waitFor("awaiting approval", 60*time.Second, func() bool { return h.promotion(running).Stage == modelplane.StageAwaitingApproval })
	ok := map[string]any{"model": "churn", "version": "v2", "target": "prod", "strategy": map[string]any{"type": "canary"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name, method, path, user string
		body                     any
		status                   int
		field                    string
	}{
		{"no token", "GET", "/v1/models", "", nil, 401, ""},
		{"bad token", "GET", "/v1/models", "Bearer nope-nope-nope-nope", nil, 401, ""},
		{"not bearer", "GET", "/v1/models", "Basic YWxpY2U6eA==", nil, 401, ""},
		{"requester creates target", "POST", "/v1/targets", "alice", map[string]any{"name": "x", "provider": "sim", "environment": "dev"}, 403, ""},
		{"requester decides", "POST", "/v1/promotions/" + running + "/decision", "alice", map[string]any{"decision": "promote"}, 403, ""},
		{"approver registers model", "POST", "/v1/models", "bob", map[string]any{"name": "m", "owner": "o", "team": "growth", "risk_tier": "low"}, 403, ""},
		{"self-approval", "POST", "/v1/promotions/" + running + "/approvals", "alice", map[string]any{"decision": "approve"}, 403, ""},
		{"malformed JSON", "POST", "/v1/models", "alice", `{"name": "m",`, 400, ""},
		{"not an object", "POST", "/v1/models", "alice", `[1,2]`, 400, ""},
		{"empty body", "POST", "/v1/models", "alice", "", 400, ""},
		{"unknown field", "POST", "/v1/models", "alice", map[string]any{"name": "m", "owner": "o", "team": "t", "risk_tier": "low", "colour": "red"}, 400, "colour"},
		{"wrong type", "POST", "/v1/models", "alice", map[string]any{"name": 7}, 400, "name"},
		{"missing name", "POST", "/v1/models", "alice", map[string]any{"owner": "o", "team": "t", "risk_tier": "low"}, 400, "name"},
		{"bad name", "POST", "/v1/models", "alice", map[string]any{"name": "Bad Name", "owner": "o", "team": "t", "risk_tier": "low"}, 400, "name"},
		{"missing owner", "POST", "/v1/models", "alice", map[string]any{"name": "m", "team": "t", "risk_tier": "low"}, 400, "owner"},
		{"missing team", "POST", "/v1/models", "alice", map[string]any{"name": "m", "owner": "o", "risk_tier": "low"}, 400, "team"},
		{"missing risk tier", "POST", "/v1/models", "alice", map[string]any{"name": "m", "owner": "o", "team": "t"}, 400, "risk_tier"},
		{"bad risk tier", "POST", "/v1/models", "alice", map[string]any{"name": "m", "owner": "o", "team": "t", "risk_tier": "huge"}, 400, "risk_tier"},
		{"duplicate model", "POST", "/v1/models", "alice", map[string]any{"name": "churn", "owner": "o", "team": "growth", "risk_tier": "low"}, 409, "name"},
		{"unknown model", "GET", "/v1/models/nope", "alice", nil, 404, ""},
		{"version of unknown model", "POST", "/v1/models/nope/versions", "alice", map[string]any{"version": "1", "artifact_uri": "s3://x"}, 404, ""},
		{"version without artifact", "POST", "/v1/models/churn/versions", "alice", map[string]any{"version": "v9"}, 400, "artifact_uri"},
		{"version bad metric type", "POST", "/v1/models/churn/versions", "alice", map[string]any{"version": "v9", "artifact_uri": "s3://x", "metrics": map[string]any{"auc": "high"}}, 400, "metrics"},
		{"duplicate version", "POST", "/v1/models/churn/versions", "alice", map[string]any{"version": "v1", "artifact_uri": "s3://x"}, 409, "version"},
		{"unknown version", "GET", "/v1/models/churn/versions/v9", "alice", nil, 404, ""},
		{"target bad environment", "POST", "/v1/targets", "admin", map[string]any{"name": "x", "provider": "sim", "environment": "moon"}, 400, "environment"},
		{"target unknown provider", "POST", "/v1/targets", "admin", map[string]any{"name": "x", "provider": "azureml", "environment": "dev"}, 400, "provider"},
		{"target bad threshold", "POST", "/v1/targets", "admin", map[string]any{"name": "x", "provider": "sim", "environment": "dev", "analysis": map[string]any{"max_error_rate": 3}}, 400, "analysis.max_error_rate"},
		{"target bad duration", "POST", "/v1/targets", "admin", map[string]any{"name": "x", "provider": "sim", "environment": "dev", "guard_interval": "soon"}, 400, "guard_interval"},
		{"duplicate target", "POST", "/v1/targets", "admin", map[string]any{"name": "prod", "provider": "sim", "environment": "dev"}, 409, "name"},
		{"promotion missing model", "POST", "/v1/promotions", "alice", with("model", ""), 400, "model"},
		{"promotion unknown model", "POST", "/v1/promotions", "alice", with("model", "nope"), 404, "model"},
		{"promotion unknown version", "POST", "/v1/promotions", "alice", with("version", "v9"), 404, "version"},
		{"promotion unknown target", "POST", "/v1/promotions", "alice", with("target", "mars"), 404, "target"},
		{"promotion bad strategy", "POST", "/v1/promotions", "alice", with("strategy", map[string]any{"type": "yolo"}), 400, "strategy.type"},
		{"promotion steps not increasing", "POST", "/v1/promotions", "alice", with("strategy", map[string]any{"type": "canary", "steps": []int{50, 20, 100}}), 400, "strategy.steps[1]"},
		{"promotion steps not ending at 100", "POST", "/v1/promotions", "alice", with("strategy", map[string]any{"type": "canary", "steps": []int{10, 50}}), 400, "strategy.steps"},
		{"promotion shadow percent", "POST", "/v1/promotions", "alice", with("strategy", map[string]any{"type": "shadow", "shadow_percent": 150}), 400, "strategy.shadow_percent"},
		{"promotion failure limit", "POST", "/v1/promotions", "alice", with("analysis", map[string]any{"failure_limit": -5}), 400, "analysis.failure_limit"},
		{"promotion busy pair", "POST", "/v1/promotions", "alice", ok, 409, "target"},
		{"unknown promotion", "GET", "/v1/promotions/p-nope", "alice", nil, 404, ""},
		{"approve unknown promotion", "POST", "/v1/promotions/p-nope/approvals", "bob", map[string]any{"decision": "approve"}, 404, ""},
		{"approve bad decision", "POST", "/v1/promotions/" + running + "/approvals", "bob", map[string]any{"decision": "maybe"}, 400, "decision"},
		{"rollback without reason", "POST", "/v1/promotions/" + running + "/rollback", "alice", map[string]any{}, 400, "reason"},
		{"decide bad decision", "POST", "/v1/promotions/" + running + "/decision", "bob", map[string]any{"decision": "shrug"}, 400, "decision"},
		{"decide when not waiting", "POST", "/v1/promotions/" + running + "/decision", "bob", map[string]any{"decision": "rollback"}, 409, ""},
		{"drift missing metric", "POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod"}, 400, "metric"},
		{"drift unknown model", "POST", "/v1/signals/drift", "alice", map[string]any{"model": "nope", "target": "prod", "metric": "psi"}, 404, "model"},
		{"drift unknown target", "POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "mars", "metric": "psi"}, 404, "target"},
		{"deployment not found", "GET", "/v1/deployments/staging/churn", "alice", nil, 404, ""},
		{"audit bad since", "GET", "/v1/audit?since=yesterday", "alice", nil, 400, "since"},
		{"sim health negative", "POST", "/v1/sim/targets/prod/versions/v2/health", "alice", map[string]any{"drift": -1}, 400, "drift"},
		{"sim health unknown version", "POST", "/v1/sim/targets/prod/versions/v9/health", "alice", map[string]any{"drift": 0.5}, 404, ""},
		{"unknown route", "GET", "/v1/nothing", "alice", nil, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.call(c.method, c.path, c.user, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			e, ok := r.body["error"].(map[string]any)
			if !ok || e["code"] == "" || e["message"] == "" {
				t.Fatalf("error body = %s", r.raw)
			}
			if r.errField() != c.field {
				t.Fatalf("field = %q, want %q (%s)", r.errField(), c.field, r.raw)
			}
		})
	}
	// Nothing was lost by the failed requests: the running promotion is untouched.
	if p := h.promotion(running); p.Status != modelplane.StatusRunning || len(p.Approvals) != 0 {
		t.Fatalf("running promotion changed: %+v", p)
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false)
	doc := h.must(h.call("GET", "/openapi.json", "", nil), 200)
	paths := doc.body["paths"].(map[string]any)
	seen := 0
	for _, r := range api.Routes() {
		item, ok := paths[api.OpenAPIPath(r.Path)].(map[string]any)
		if !ok || item[strings.ToLower(r.Method)] == nil {
			t.Errorf("%s %s missing from /openapi.json", r.Method, r.Path)
		}
		seen++
	}
	n := 0
	for _, item := range paths {
		n += len(item.(map[string]any))
	}
	if n != seen || n < 20 {
		t.Fatalf("document has %d operations, router %d", n, seen)
	}
	// Every path the document names is served (not 404/405 from the router).
	for p, item := range paths {
		for m := range item.(map[string]any) {
			path := strings.NewReplacer("{name}", "churn", "{version}", "v1", "{id}", "p-x", "{target}", "prod", "{model}", "churn").Replace(p)
			r := h.call(strings.ToUpper(m), path, "admin", "{}")
			if r.status == 405 || (r.status == 404 && strings.Contains(r.raw, `"code":"not_found","message":"Not Found"`)) {
				t.Errorf("%s %s is documented but not routed: %d %s", m, p, r.status, r.raw)
			}
		}
	}
}

func TestNoSecretInWorkflowHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("low")
	id := h.promote("alice", canaryBody("v2", []int{100}, "200ms"))
	h.waitStatus(id, modelplane.StatusSucceeded, 30*time.Second)
	h.must(h.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.9}), 202)
	h.waitFor("retrain", 60*time.Second, func() bool { return len(h.kit.Sink.Events()) == 1 })
	var all strings.Builder
	for _, wid := range []string{workflows.PromotionWorkflowID(id), workflows.GuardianWorkflowID("churn", "prod")} {
		it := h.client.GetWorkflowHistory(context.Background(), wid, "", false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			// The binary form holds payloads verbatim (JSON), unlike protojson's base64.
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			all.Write(b)
		}
	}
	hist := all.String()
	// Positive control: values we do put in history are found this way.
	for _, known := range []string{`"Model":"churn"`, `"metric":"psi"`} {
		if !strings.Contains(hist, known) {
			t.Fatalf("positive control failed: %q not found in history", known)
		}
	}
	for name, secret := range map[string]string{"retrain secret": testkit.RetrainSecret, "alice token": tokens["alice"]} {
		if strings.Contains(hist, secret) {
			t.Fatalf("%s found in workflow history", name)
		}
	}
}
