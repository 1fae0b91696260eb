package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/audit"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

// govUsers are the callers of the governance tests: requesters and
// approvers of team growth, an admin and an auditor who belong to no team,
// and a requester of team fraud.
var govUsers = []api.Token{
	{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: []string{"growth"}},
	{Name: "dave", Role: api.RoleRequester, Secret: tokens["dave"], Teams: []string{"growth"}},
	{Name: "bob", Role: api.RoleApprover, Secret: tokens["bob"], Teams: []string{"growth"}},
	{Name: "carol", Role: api.RoleApprover, Secret: tokens["carol"], Teams: []string{"growth"}},
	{Name: "root", Role: api.RoleAdmin, Secret: "tok-root-0123456789abcdef"},
	{Name: "audrey", Role: api.RoleAuditor, Secret: "tok-audrey-0123456789abcdef"},
	{Name: "frank", Role: api.RoleRequester, Secret: "tok-frank-0123456789abcdef", Teams: []string{"fraud"}},
}

// as is the Authorization header of a governance test caller; "" sends none.
func as(name string) string {
	for _, u := range govUsers {
		if u.Name == name {
			return "Bearer " + u.Secret
		}
	}
	return ""
}

var (
	shippedOnce   sync.Once
	shippedEngine *policy.Engine
	shippedErr    error
)

// shipped is the default policy bundle exactly as shipped (the flow tests
// run on a relaxed copy of it), compiled once for the package.
func shipped(t testing.TB) *policy.Engine {
	t.Helper()
	shippedOnce.Do(func() { shippedEngine, shippedErr = policy.New("") })
	if shippedErr != nil {
		t.Fatal(shippedErr)
	}
	return shippedEngine
}

// newGovHarness is a real Temporal server, a store and the API serving
// govUsers, with the shipped policy deciding in the API and the workflows.
func newGovHarness(t *testing.T, withWorker bool, opts ...temporaltest.TestServerOption) *harness {
	t.Helper()
	ts := temporaltest.NewServer(append([]temporaltest.TestServerOption{temporaltest.WithT(t)}, opts...)...)
	kit := testkit.New(t, ":memory:")
	c := ts.GetDefaultClient()
	kit.Activities.Temporal = c
	kit.Activities.Policy = shipped(t)
	auth, err := api.NewTokens(govUsers)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&api.Server{Store: kit.Store, Temporal: c, Auth: auth, Policy: shipped(t),
		Providers: kit.Activities.Providers, Sim: kit.Sim}).Handler())
	t.Cleanup(srv.Close)
	h := &harness{t: t, ts: ts, kit: kit, client: c, url: srv.URL}
	if withWorker {
		h.startWorker()
	}
	return h
}

// newStoreHarness is the API without Temporal, for routes that never reach
// a workflow (audit, models).
func newStoreHarness(t *testing.T) *harness {
	t.Helper()
	kit := testkit.New(t, ":memory:")
	auth, err := api.NewTokens(govUsers)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&api.Server{Store: kit.Store, Auth: auth, Policy: shipped(t), Providers: kit.Activities.Providers}).Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, kit: kit, url: srv.URL}
}

// in returns the harness reporting to t (a subtest).
func (h *harness) in(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// addTarget stores a simulated target of the environment.
func (h *harness) addTarget(name, env string, minApprovals int) {
	h.t.Helper()
	f := func(v float64) *float64 { return &v }
	tg := modelplane.Target{Name: name, Provider: sim.Name, Environment: env, MinApprovals: minApprovals,
		Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500), MaxDrift: f(0.3)}},
		Metrics:  modelplane.MetricBounds{Min: map[string]float64{"auc": 0.8}}}
	if _, err := h.kit.Store.CreateTarget(context.Background(), tg); err != nil {
		h.t.Fatal(err)
	}
}

// audit lists audit records matching f.
func (h *harness) audit(f store.AuditFilter) []modelplane.AuditRecord {
	h.t.Helper()
	f.Limit = 5000
	recs, err := h.kit.Store.ListAudit(context.Background(), f)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

// govWait bounds the waits on workflows: generous, since the suite shares a
// loaded machine; a wait ends as soon as its condition holds.
const govWait = 3 * time.Minute

// waitPromotion polls the stored promotion until done says so; on timeout
// it reports where the promotion stands.
func (h *harness) waitPromotion(id, what string, done func(p modelplane.Promotion) bool) modelplane.Promotion {
	h.t.Helper()
	deadline := time.Now().Add(govWait)
	for {
		p := h.promotion(id)
		if done(p) {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s %s: status %s, stage %s, reason %q, history %+v", id, what, p.Status, p.Stage, p.Reason, p.History)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitStage waits until the promotion's stored stage is stage.
func (h *harness) waitStage(id, stage string) modelplane.Promotion {
	h.t.Helper()
	return h.waitPromotion(id, "at stage "+stage, func(p modelplane.Promotion) bool {
		if modelplane.Terminal(p.Status) {
			h.t.Fatalf("promotion %s ended %s (%s) before reaching %s", id, p.Status, p.Reason, stage)
		}
		return p.Stage == stage
	})
}

// waitEnded waits until the promotion ended, and requires status.
func (h *harness) waitEnded(id, status string) modelplane.Promotion {
	h.t.Helper()
	p := h.waitPromotion(id, "to end", func(p modelplane.Promotion) bool { return p.Stage == modelplane.StageDone })
	if p.Status != status {
		h.t.Fatalf("promotion %s ended %s (%s), want %s", id, p.Status, p.Reason, status)
	}
	return p
}

// vote sends a vote straight to the promotion's workflow, past the API,
// and returns the update's outcome.
func (h *harness) vote(id string, v workflows.Vote) error {
	ctx := context.Background()
	handle, err := h.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.PromotionWorkflowID(id), UpdateName: workflows.Approve,
		Args: []any{v}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = handle.Get(ctx, nil)
	}
	return err
}

// checkDenied asserts that rec is the audit of a policy denial of action,
// and that message (the 403's) carries the policy's reasons.
func checkDenied(t *testing.T, rec modelplane.AuditRecord, action, message string) {
	t.Helper()
	if rec.Action != "denied" || rec.Details["attempted"] != action {
		t.Fatalf("denial audited as %s of %v, want denied of %s", rec.Action, rec.Details["attempted"], action)
	}
	if rec.Policy == nil || rec.Policy.ID == "" || rec.Policy.Allow || rec.Policy.PolicyVersion == "" || len(rec.Policy.Reasons) == 0 {
		t.Fatalf("denial record carries no usable policy decision: %+v", rec.Policy)
	}
	if !strings.HasSuffix(message, ": "+rec.Policy.Reason()) {
		t.Fatalf("403 message %q does not carry the policy's reason %q", message, rec.Policy.Reason())
	}
}

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[k]
	}
	return v
}

func list(r resp, key string) []map[string]any { return objects(r.body[key]) }

// objects is a JSON array of objects.
func objects(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func names(items []map[string]any, key string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, _ := it[key].(string)
		out = append(out, s)
	}
	return out
}

// --- the role × endpoint matrix ---

// cell is what one caller gets from one row.
type cell struct {
	status int
	why    string // a 403's message (or a denied alert's) contains this policy reason
	denied bool   // a 2xx that carries a policy denial inside (an alert batch)
}

func allow(status int) cell { return cell{status: status} }
func deny(why string) cell  { return cell{status: 403, why: why} }

// row is one request to a route as each caller. The anonymous caller
// always gets 401 on a governed route.
type row struct {
	route   string // "METHOD /path" as api.Routes() lists it
	variant string
	action  string // the policy question the request asks; "" on public routes
	public  int    // a public route's status, the same with or without a token
	url     func(who string) string
	body    func(who string) any
	alice   cell // requester of team growth
	bob     cell // approver of team growth
	root    cell // admin, no team
	audrey  cell // auditor, no team
	frank   cell // requester of team fraud
	check   func(t *testing.T, who string, r resp)
}

func (r row) want(who string) cell {
	return map[string]cell{"alice": r.alice, "bob": r.bob, "root": r.root, "audrey": r.audrey, "frank": r.frank}[who]
}

var matrixCallers = []string{"", "alice", "bob", "root", "audrey", "frank"}

// reads are the actions a denial of which is not audited (nothing changed).
var reads = []string{"model.read", "target.read", "promotion.read", "mcp.read", "deployment.read", "provenance.read", "scorecard.read", "audit.read", "audit.export", "pipeline.read", "freeze.read"}

const (
	notGrowth     = "frank is not a member of team growth"
	auditorReads  = "auditors may read but not change anything"
	needsReq      = "it needs role admin or role requester"
	needsApprover = "it needs role admin or role approver"
	adminOnly     = "has no owning team; only admins may change it"
	needsAuditor  = "or role admin or role auditor" // a team-less read: admins and auditors only
)

// matrixFixtures are promotions the matrix acts on: each caller allowed to
// end one gets its own.
type matrixFixtures struct {
	approve  string            // churn v2 → appr: awaiting approval, quorum 3 (two votes leave it waiting)
	rollback map[string]string // caller → churn v2 awaiting approval on rb-<caller>
	decide   map[string]string // caller → ranker r1 awaiting a decision on dec-<caller>
	override string            // ranker r1 awaiting a decision, for an admin's override
	mcp      string            // an MCP server (version 1.0.0) of team growth
	pipeline string            // a pipeline of team growth with a run of churn v1
}

func matrixPipeline(name string) modelplane.Pipeline {
	return modelplane.Pipeline{Name: name, Team: "growth", Stages: []modelplane.PipelineStage{{Name: "dev",
		Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}}}}
}

func setUpMatrix(h *harness) matrixFixtures {
	t := h.t
	ctx := context.Background()
	h.kit.Seed(t, modelplane.RiskHigh, "v1", "v2") // churn (growth, high) and target prod
	h.kit.Serve(t, "v1", "")
	h.addTarget("appr", "production", 3)
	for _, name := range []string{"rb-alice", "rb-bob", "rb-root", "st-alice", "st-root"} {
		h.addTarget(name, "production", 0)
	}
	for _, name := range []string{"dev", "dec-bob", "dec-root", "dec-ovr"} {
		h.addTarget(name, "dev", 0)
	}
	// ranker is low risk: no approvals in dev. With no data from its
	// version the first analysis is inconclusive and waits for a human.
	if _, err := h.kit.Store.CreateModel(ctx, modelplane.Model{Name: "ranker", Owner: "ranking@example.com", Team: "growth", RiskTier: modelplane.RiskLow}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.kit.Store.CreateVersion(ctx, modelplane.Version{Model: "ranker", Version: "r1", ArtifactURI: "s3://models/ranker/r1", Metrics: map[string]float64{"auc": 0.9}}); err != nil {
		t.Fatal(err)
	}
	fx := matrixFixtures{rollback: map[string]string{}, decide: map[string]string{}, mcp: "com.example.growth/fx"}
	if _, err := h.kit.Store.CreateMCPServer(ctx, modelplane.MCPServer{Name: fx.mcp, Version: "1.0.0", Description: "fixture", RemoteURL: "https://fx.example.com/mcp",
		ValidateURL: "http://127.0.0.1:1/mcp", Owner: "agents@example.com", Team: "growth", RiskTier: modelplane.RiskLow, CreatedBy: "dave"}); err != nil {
		t.Fatal(err)
	}
	churn := func(target string) map[string]any {
		return map[string]any{"model": "churn", "version": "v2", "target": target, "strategy": map[string]any{"type": "canary", "steps": []int{100}, "bake": "1s"}}
	}
	ranker := func(target string) map[string]any {
		if err := h.kit.Sim.SetHealth(ctx, target, "ranker", "r1", modelplane.Health{NoData: true}); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"model": "ranker", "version": "r1", "target": target, "strategy": map[string]any{"type": "canary", "steps": []int{100}, "bake": "100ms", "monitor_window": "100ms"}}
	}
	// dave requests them all, so no caller of the matrix is their requester.
	fx.approve = h.promote("dave", churn("appr"))
	for _, who := range []string{"alice", "bob", "root"} {
		fx.rollback[who] = h.promote("dave", churn("rb-"+who))
	}
	for _, who := range []string{"bob", "root"} {
		fx.decide[who] = h.promote("dave", ranker("dec-"+who))
	}
	fx.override = h.promote("dave", ranker("dec-ovr"))
	// A pipeline of growth's with one stage on dev that waits for a person,
	// a run of churn v1 through it, and versions for each caller's own run.
	fx.pipeline = "fx-pipe"
	if _, err := h.kit.Store.PutPipeline(ctx, matrixPipeline(fx.pipeline)); err != nil {
		t.Fatal(err)
	}
	for _, who := range matrixCallers[1:] {
		if _, err := h.kit.Store.CreateVersion(ctx, modelplane.Version{Model: "churn", Version: "pv-" + who, ArtifactURI: "s3://models/churn/pv", Metrics: map[string]float64{"auc": 0.9}}); err != nil {
			t.Fatal(err)
		}
	}
	h.must(h.call("POST", "/v1/pipelines/"+fx.pipeline+"/runs", "alice", map[string]any{"model": "churn", "version": "v1"}), 202)
	h.waitStage(fx.approve, modelplane.StageAwaitingApproval)
	for _, id := range fx.rollback {
		h.waitStage(id, modelplane.StageAwaitingApproval)
	}
	for _, id := range append([]string{fx.override}, fx.decide["bob"], fx.decide["root"]) {
		h.waitStage(id, modelplane.StageAwaitingDecision)
	}
	return fx
}

func matrixRows(fx matrixFixtures) []row {
	at := func(path string) func(string) string { return func(string) string { return path } }
	of := func(m map[string]string, path, fallback string) func(string) string {
		return func(who string) string {
			id, ok := m[who]
			if !ok {
				id = m[fallback]
			}
			return strings.ReplaceAll(path, "{id}", id)
		}
	}
	body := func(v any) func(string) any { return func(string) any { return v } }
	contains := func(key, field, want string, visible func(who string) bool) func(*testing.T, string, resp) {
		return func(t *testing.T, who string, r resp) {
			if got := slices.Contains(names(list(r, key), field), want); got != visible(who) {
				t.Fatalf("%s sees %s %q: %v, want %v (%s)", who, key, want, got, visible(who), r.raw)
			}
		}
	}
	growthMember := func(who string) bool { return who != "frank" }
	everyone := func(string) bool { return true }
	read := func(r row) row { // a read of growth's assets: members, admins and auditors
		r.alice, r.bob, r.root, r.audrey, r.frank = allow(200), allow(200), allow(200), allow(200), deny(notGrowth)
		return r
	}
	open := func(r row) row { // a read every authenticated caller may make (filtered lists)
		r.alice, r.bob, r.root, r.audrey, r.frank = allow(200), allow(200), allow(200), allow(200), allow(200)
		return r
	}
	wholeTrail := func(r row, why string) row { // team-less reads: admins and auditors
		r.alice, r.bob, r.root, r.audrey, r.frank = deny(why), deny(why), allow(200), allow(200), deny(why)
		return r
	}
	requesterChange := func(r row, status int) row { // a change requesters of the owning team (and admins) make
		r.alice, r.bob, r.root, r.audrey, r.frank = allow(status), deny(needsReq), allow(status), deny(auditorReads), deny(notGrowth)
		return r
	}
	alert := func(who string) any {
		return map[string]any{"version": "4", "status": "firing", "receiver": "modelplane", "alerts": []any{map[string]any{
			"status": "firing", "labels": map[string]string{"alertname": "ModelDrift", "model": "churn", "target": "dev"},
			"annotations": map[string]string{"value": "0.4"}, "startsAt": "2026-01-02T15:04:05Z", "fingerprint": "fp-" + who}}}
	}

	return []row{
		{route: "GET /healthz", public: 200, url: at("/healthz")},
		{route: "GET /readyz", public: 200, url: at("/readyz")},
		{route: "GET /openapi.json", public: 200, url: at("/openapi.json")},
		// Public, and answered 404 here: this server has no MLflow webhook secret.
		{route: "POST /v1/webhooks/mlflow", public: 404, url: at("/v1/webhooks/mlflow"), body: body(map[string]any{})},

		requesterChange(row{route: "POST /v1/models", action: "model.create", url: at("/v1/models"),
			body: func(who string) any {
				return map[string]any{"name": "m-" + who, "owner": "ml@example.com", "team": "growth", "risk_tier": "low"}
			}}, 201),
		open(row{route: "GET /v1/models", action: "model.read", url: at("/v1/models"), check: contains("models", "name", "churn", growthMember)}),
		read(row{route: "GET /v1/models/:name", action: "model.read", url: at("/v1/models/churn")}),
		requesterChange(row{route: "POST /v1/models/:name/versions", action: "version.create", url: at("/v1/models/churn/versions"),
			body: func(who string) any {
				return map[string]any{"version": "x-" + who, "artifact_uri": "s3://models/churn/x", "metrics": map[string]float64{"auc": 0.9}}
			}}, 201),
		read(row{route: "GET /v1/models/:name/versions", action: "model.read", url: at("/v1/models/churn/versions")}),
		// v1 is in no running promotion: nothing re-validates.
		requesterChange(row{route: "PUT /v1/models/:name/versions/:version/metrics", action: "version.create", url: at("/v1/models/churn/versions/v1/metrics"),
			body: body(map[string]any{"metrics": map[string]float64{"auc": 0.91}})}, 200),
		read(row{route: "GET /v1/models/:name/versions/:version/provenance", action: "provenance.read", url: at("/v1/models/churn/versions/v2/provenance")}),
		wholeTrail(row{route: "GET /v1/scorecard", action: "scorecard.read", url: at("/v1/scorecard")}, needsAuditor),
		wholeTrail(row{route: "GET /v1/audit/export", action: "audit.export", url: at("/v1/audit/export")}, "it needs role admin or role auditor"),
		wholeTrail(row{route: "GET /v1/audit/verify", action: "audit.read", url: at("/v1/audit/verify")}, needsAuditor),
		wholeTrail(row{route: "GET /v1/policy", action: "audit.read", url: at("/v1/policy")}, needsAuditor),
		read(row{route: "GET /v1/models/:name/versions/:version", action: "model.read", url: at("/v1/models/churn/versions/v1")}),

		{route: "POST /v1/targets", action: "target.create", url: at("/v1/targets"),
			body: func(who string) any {
				return map[string]any{"name": "t-" + who, "provider": "sim", "environment": "dev"}
			},
			alice: deny(adminOnly), bob: deny(adminOnly), root: allow(201), audrey: deny(auditorReads), frank: deny(adminOnly)},
		open(row{route: "GET /v1/targets", action: "target.read", url: at("/v1/targets"), check: contains("targets", "name", "prod", everyone)}),

		requesterChange(row{route: "POST /v1/promotions", action: "promotion.start", url: at("/v1/promotions"),
			body: func(who string) any {
				if who != "alice" && who != "root" {
					who = "alice" // refused before the target is looked at
				}
				return map[string]any{"model": "churn", "version": "v2", "target": "st-" + who, "strategy": map[string]any{"type": "canary", "steps": []int{100}}}
			}}, 202),
		open(row{route: "GET /v1/promotions", action: "promotion.read", url: at("/v1/promotions"), check: contains("promotions", "id", fx.approve, growthMember)}),
		read(row{route: "GET /v1/promotions/:id", action: "promotion.read", url: at("/v1/promotions/" + fx.approve)}),
		// Filtered by the approve question: fx.approve waits for a vote (dave requested it).
		open(row{route: "GET /v1/inbox", action: "promotion.read", url: at("/v1/inbox"), check: func(t *testing.T, who string, r resp) {
			var ids []string
			for _, it := range list(r, "items") {
				p, _ := it["promotion"].(map[string]any)
				id, _ := p["id"].(string)
				ids = append(ids, id)
			}
			if got, want := slices.Contains(ids, fx.approve), who == "bob" || who == "root"; got != want {
				t.Fatalf("%s's inbox holds %s: %v, want %v (%s)", who, fx.approve, got, want, r.raw)
			}
		}}),
		// Quorum 3: bob's and root's votes both count and leave it waiting.
		{route: "POST /v1/promotions/:id/approvals", action: "promotion.approve", url: at("/v1/promotions/" + fx.approve + "/approvals"),
			body:  body(map[string]any{"decision": "approve", "comment": "matrix"}),
			alice: deny(needsApprover), bob: allow(200), root: allow(200), audrey: deny(auditorReads), frank: deny(notGrowth)},
		// Any member of the team may roll back (a safety action), not the auditor nor another team.
		{route: "POST /v1/promotions/:id/rollback", action: "promotion.rollback", url: of(fx.rollback, "/v1/promotions/{id}/rollback", "alice"),
			body:  body(map[string]any{"reason": "matrix"}),
			alice: allow(202), bob: allow(202), root: allow(202), audrey: deny(auditorReads), frank: deny(notGrowth)},
		{route: "POST /v1/promotions/:id/decision", variant: " rollback", action: "promotion.decide", url: of(fx.decide, "/v1/promotions/{id}/decision", "bob"),
			body:  body(map[string]any{"decision": "rollback"}),
			alice: deny(needsApprover), bob: allow(200), root: allow(200), audrey: deny(auditorReads), frank: deny(notGrowth)},
		// Promoting despite an inconclusive analysis is an override: admins only.
		{route: "POST /v1/promotions/:id/decision", variant: " promote", action: "promotion.override", url: at("/v1/promotions/" + fx.override + "/decision"),
			body:  body(map[string]any{"decision": "promote"}),
			alice: deny("it needs role admin"), bob: deny("it needs role admin"), root: allow(200), audrey: deny(auditorReads), frank: deny(notGrowth)},

		requesterChange(row{route: "POST /v1/mcp/servers", action: "mcp.create", url: at("/v1/mcp/servers"),
			body: func(who string) any {
				return map[string]any{"name": "com.example.growth/search", "version": "1.0." + fmt.Sprint(slices.Index(matrixCallers, who)), "description": "Search",
					"remote_url": "https://search.example.com/mcp", "owner": "agents@example.com", "team": "growth", "risk_tier": "low"}
			}}, 201),
		open(row{route: "GET /v1/mcp/servers", action: "mcp.read", url: at("/v1/mcp/servers"), check: contains("servers", "name", fx.mcp, growthMember)}),
		open(row{route: "GET /v1/mcp/channels", action: "mcp.read", url: at("/v1/mcp/channels")}),
		requesterChange(row{route: "POST /v1/mcp/promotions", action: "mcp.promote", url: at("/v1/mcp/promotions"),
			body: func(who string) any {
				return map[string]any{"name": fx.mcp, "version": "1.0.0", "channel": "ch-" + who}
			}}, 202),

		// Nothing of churn runs on dev: the signal is accepted and affects nothing.
		{route: "POST /v1/signals/drift", action: "drift.report", url: at("/v1/signals/drift"),
			body:  body(map[string]any{"model": "churn", "target": "dev", "metric": "psi", "score": 0.1}),
			alice: allow(202), bob: allow(202), root: allow(202), audrey: deny(auditorReads), frank: deny(notGrowth)},
		open(row{route: "GET /v1/deployments", action: "deployment.read", url: at("/v1/deployments"), check: contains("deployments", "model", "churn", growthMember)}),
		read(row{route: "GET /v1/deployments/:target/:model", action: "deployment.read", url: at("/v1/deployments/prod/churn")}),
		read(row{route: "GET /v1/deployments/:target/:model/guardian", action: "deployment.read", url: at("/v1/deployments/prod/churn/guardian")}),
		// Allowed callers reach the guardian, which is not running here: 404 after the policy said yes.
		{route: "POST /v1/deployments/:target/:model/rollback", action: "promotion.rollback", url: at("/v1/deployments/prod/churn/rollback"),
			body:  body(map[string]any{"reason": "matrix"}),
			alice: allow(404), bob: allow(404), root: allow(404), audrey: deny(auditorReads), frank: deny(notGrowth)},
		read(row{route: "GET /v1/audit", action: "audit.read", url: at("/v1/audit?model=churn")}),
		// The batch is accepted from any caller; each alert is decided on its model.
		{route: "POST /v1/alerts/alertmanager", action: "drift.report", url: at("/v1/alerts/alertmanager"), body: alert,
			alice: allow(200), bob: allow(200), root: allow(200),
			audrey: cell{status: 200, why: auditorReads, denied: true}, frank: cell{status: 200, why: notGrowth, denied: true},
			check: func(t *testing.T, who string, r resp) {
				outs := list(r, "alerts")
				want := map[bool]string{true: "denied", false: "signalled"}[who == "audrey" || who == "frank"]
				if len(outs) != 1 || outs[0]["outcome"] != want {
					t.Fatalf("alert outcome for %s = %s, want %s", who, r.raw, want)
				}
			}},
		// sim.health is granted to requesters and approvers of the team.
		{route: "POST /v1/sim/targets/:target/versions/:version/health", action: "sim.health", url: at("/v1/sim/targets/dev/versions/v1/health"),
			body:  body(map[string]any{"model": "churn", "error_rate": 0.001}),
			alice: allow(200), bob: allow(200), root: allow(200), audrey: deny(auditorReads), frank: deny(notGrowth)},
		// Pipelines: team growth's; running one and promoting its stage are requesters' changes.
		requesterChange(row{route: "PUT /v1/pipelines/:name", action: "pipeline.write", url: func(who string) string { return "/v1/pipelines/p-" + who },
			body: func(who string) any { return matrixPipeline("p-" + who) }}, 201),
		requesterChange(row{route: "POST /v1/apply", action: "pipeline.write", url: at("/v1/apply"),
			body: func(who string) any {
				spec, _ := json.Marshal(matrixPipeline("ap-" + who))
				return map[string]any{"resources": []any{map[string]any{"kind": "Pipeline", "spec": json.RawMessage(spec)}}}
			}}, 200),
		open(row{route: "GET /v1/pipelines", action: "pipeline.read", url: at("/v1/pipelines"), check: contains("pipelines", "name", fx.pipeline, growthMember)}),
		read(row{route: "GET /v1/pipelines/:name", action: "pipeline.read", url: at("/v1/pipelines/" + fx.pipeline)}),
		read(row{route: "GET /v1/pipelines/:name/versions", action: "pipeline.read", url: at("/v1/pipelines/" + fx.pipeline + "/versions")}),
		requesterChange(row{route: "POST /v1/pipelines/:name/runs", action: "pipeline.run", url: at("/v1/pipelines/" + fx.pipeline + "/runs"),
			body: func(who string) any { return map[string]any{"model": "churn", "version": "pv-" + who} }}, 202),
		read(row{route: "GET /v1/pipelines/:name/runs/:model/:version", action: "pipeline.read", url: at("/v1/pipelines/" + fx.pipeline + "/runs/churn/v1")}),
		requesterChange(row{route: "POST /v1/pipelines/:name/runs/:model/:version/stages/:stage/promote", action: "promotion.start",
			url: at("/v1/pipelines/" + fx.pipeline + "/runs/churn/v1/stages/dev/promote")}, 202),
		open(row{route: "GET /v1/freeze", action: "freeze.read", url: at("/v1/freeze")}),
		{route: "PUT /v1/freeze", action: "freeze.set", url: at("/v1/freeze"), body: body(map[string]any{"on": false}),
			alice: deny(adminOnly), bob: deny(adminOnly), root: allow(200), audrey: deny(auditorReads), frank: deny(adminOnly)},
		// sim.traffic (a hand change, as in a cloud console) likewise.
		{route: "PUT /v1/sim/targets/:target/models/:model/traffic", action: "sim.traffic", url: at("/v1/sim/targets/dev/models/churn/traffic"),
			body:  body(map[string]any{"traffic": map[string]int{}}),
			alice: allow(200), bob: allow(200), root: allow(200), audrey: deny(auditorReads), frank: deny(notGrowth)},
	}
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true)
	fx := setUpMatrix(h)
	rows := matrixRows(fx)

	// Every served route has a row, and every row a served route: a new
	// route fails here until someone says who may call it.
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.route] = true
	}
	served := map[string]bool{}
	for _, r := range api.Routes() {
		key := r.Method + " " + r.Path
		served[key] = true
		if !covered[key] {
			t.Errorf("route %s has no row in the role matrix", key)
		}
	}
	for key := range covered {
		if !served[key] {
			t.Errorf("matrix row %s is not a served route", key)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range rows {
		for _, who := range matrixCallers {
			label := who
			if label == "" {
				label = "anonymous"
			}
			t.Run(r.route+r.variant+"/"+label, func(t *testing.T) {
				h := h.in(t)
				var body any
				if r.body != nil {
					body = r.body(who)
				}
				if r.public != 0 {
					if got := h.call(strings.Fields(r.route)[0], r.url(who), as(who), body); got.status != r.public {
						t.Fatalf("public route: status %d, want %d: %s", got.status, r.public, got.raw)
					}
					return
				}
				var before int
				if who != "" {
					before = len(h.audit(store.AuditFilter{Actor: who, Action: "denied"}))
				}
				got := h.call(strings.Fields(r.route)[0], r.url(who), as(who), body)
				if who == "" {
					if got.status != 401 || field(got.body, "error", "code") != modelplane.EUnauthorized {
						t.Fatalf("without a token: status %d, want 401: %s", got.status, got.raw)
					}
					return
				}
				want := r.want(who)
				if got.status != want.status {
					t.Fatalf("status %d, want %d: %s", got.status, want.status, got.raw)
				}
				denials := h.audit(store.AuditFilter{Actor: who, Action: "denied"})
				audited := (want.status == 403 || want.denied) && !slices.Contains(reads, r.action)
				switch {
				case want.status == 403:
					msg := got.errMessage()
					if field(got.body, "error", "code") != modelplane.EForbidden || !strings.HasPrefix(msg, who+" may not "+r.action+": ") || !strings.Contains(msg, want.why) {
						t.Fatalf("403 = %s, want %q from the policy (%s)", got.raw, want.why, r.action)
					}
					if audited {
						if len(denials) != before+1 {
							t.Fatalf("%d denial records written, want 1", len(denials)-before)
						}
						checkDenied(t, denials[len(denials)-1], r.action, msg)
					}
				case want.denied:
					outs := list(got, "alerts")
					if len(outs) == 0 || !strings.Contains(fmt.Sprint(outs[0]["why"]), want.why) {
						t.Fatalf("denied alert = %s, want %q", got.raw, want.why)
					}
					if len(denials) != before+1 {
						t.Fatalf("%d denial records written, want 1", len(denials)-before)
					}
					checkDenied(t, denials[len(denials)-1], r.action, fmt.Sprint(outs[0]["why"]))
				}
				if !audited && len(denials) != before {
					t.Fatalf("%d denial records written, want none", len(denials)-before)
				}
				if r.check != nil && got.status < 300 {
					r.check(t, who, got)
				}
			})
		}
	}
	// The refused calls changed nothing: the approvals fixture holds exactly bob's and root's votes.
	p := h.promotion(fx.approve)
	var voters []string
	for _, a := range p.Approvals {
		voters = append(voters, a.Approver)
	}
	slices.Sort(voters)
	if strings.Join(voters, ",") != "bob,root" || p.Status != modelplane.StatusRunning {
		t.Fatalf("approvals fixture: %s with votes %v", p.Status, voters)
	}
}

// --- team isolation ---

func TestTeamIsolation(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true)
	h.seed("medium") // churn (growth), prod; v1 serves
	h.addTarget("fraud-prod", "production", 0)
	id := h.promote("alice", canaryBody("v2", []int{100}, "1s"))
	h.waitStage(id, modelplane.StageAwaitingApproval)

	// frank's team has its own model.
	h.must(h.call("POST", "/v1/models", as("frank"), map[string]any{"name": "fraud-detector", "owner": "risk@example.com", "team": "fraud", "risk_tier": "high"}), 201)
	h.must(h.call("POST", "/v1/models/fraud-detector/versions", as("frank"), map[string]any{"version": "f1", "artifact_uri": "s3://models/fd/f1", "metrics": map[string]float64{"auc": 0.95}}), 201)

	modelsSeenBy := func(who string) []string {
		n := names(list(h.must(h.call("GET", "/v1/models", as(who), nil), 200), "models"), "name")
		slices.Sort(n)
		return n
	}
	for who, want := range map[string]string{"frank": "fraud-detector", "alice": "churn", "bob": "churn", "root": "churn,fraud-detector", "audrey": "churn,fraud-detector"} {
		if got := strings.Join(modelsSeenBy(who), ","); got != want {
			t.Errorf("%s lists models %q, want %q", who, got, want)
		}
	}

	// A direct request for another team's asset is a 403 naming the team.
	forbidden := func(who, method, path string, body any, team string) resp {
		t.Helper()
		r := h.must(h.call(method, path, as(who), body), 403)
		if want := who + " is not a member of team " + team; !strings.Contains(r.errMessage(), want) {
			t.Fatalf("%s %s as %s: %q does not say %q", method, path, who, r.errMessage(), want)
		}
		return r
	}
	forbidden("frank", "GET", "/v1/models/churn", nil, "growth")
	forbidden("frank", "GET", "/v1/models/churn/versions", nil, "growth")
	forbidden("frank", "GET", "/v1/promotions/"+id, nil, "growth")
	forbidden("frank", "GET", "/v1/deployments/prod/churn", nil, "growth")
	forbidden("frank", "GET", "/v1/audit?model=churn", nil, "growth")
	forbidden("frank", "GET", "/v1/models/churn/versions/v2/provenance", nil, "growth")
	forbidden("alice", "GET", "/v1/models/fraud-detector", nil, "fraud")
	before := len(h.audit(store.AuditFilter{Actor: "frank", Action: "denied"}))
	r := forbidden("frank", "POST", "/v1/promotions", map[string]any{"model": "churn", "version": "v2", "target": "fraud-prod", "strategy": map[string]any{"type": "canary"}}, "growth")
	denials := h.audit(store.AuditFilter{Actor: "frank", Action: "denied"})
	if len(denials) != before+1 {
		t.Fatalf("refused start: %d denial records, want 1", len(denials)-before)
	}
	checkDenied(t, denials[len(denials)-1], "promotion.start", r.errMessage())
	forbidden("frank", "POST", "/v1/promotions/"+id+"/rollback", map[string]any{"reason": "not mine"}, "growth")
	forbidden("frank", "POST", "/v1/signals/drift", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.9}, "growth")
	if n := len(h.audit(store.AuditFilter{PromotionID: id, Action: "denied"})); n != 1 {
		t.Fatalf("denials recorded on %s: %d, want 1 (the rollback)", id, n)
	}

	// Lists are filtered the same way.
	if ps := list(h.must(h.call("GET", "/v1/promotions", as("frank"), nil), 200), "promotions"); len(ps) != 0 {
		t.Fatalf("frank lists promotions %v", names(ps, "id"))
	}
	if ds := list(h.must(h.call("GET", "/v1/deployments", as("frank"), nil), 200), "deployments"); len(ds) != 0 {
		t.Fatalf("frank lists deployments %v", names(ds, "model"))
	}
	for _, who := range []string{"root", "audrey", "alice"} {
		if ps := names(list(h.must(h.call("GET", "/v1/promotions", as(who), nil), 200), "promotions"), "id"); !slices.Contains(ps, id) {
			t.Fatalf("%s does not see promotion %s: %v", who, id, ps)
		}
	}

	// The auditor reads everything…
	for _, path := range []string{"/v1/models/churn", "/v1/models/fraud-detector", "/v1/models/fraud-detector/versions/f1", "/v1/promotions/" + id,
		"/v1/deployments/prod/churn", "/v1/audit", "/v1/audit?model=fraud-detector", "/v1/models/churn/versions/v2/provenance", "/v1/scorecard", "/v1/audit/verify", "/v1/policy"} {
		h.must(h.call("GET", path, as("audrey"), nil), 200)
	}
	if r := h.must(h.call("GET", "/v1/audit/export", as("audrey"), nil), 200); !strings.Contains(r.raw, `"action":"model_created"`) {
		t.Fatalf("export = %.300s", r.raw)
	}
	// …and changes nothing: every mutation is refused, saying why, and audited.
	mutations := []struct {
		method, path, action string
		body                 any
	}{
		{"POST", "/v1/models", "model.create", map[string]any{"name": "m2", "owner": "o@example.com", "team": "growth", "risk_tier": "low"}},
		{"POST", "/v1/models/churn/versions", "version.create", map[string]any{"version": "v9", "artifact_uri": "s3://x"}},
		{"PUT", "/v1/models/churn/versions/v2/metrics", "version.create", map[string]any{"metrics": map[string]float64{"auc": 0.5}}},
		{"POST", "/v1/targets", "target.create", map[string]any{"name": "t2", "provider": "sim", "environment": "dev"}},
		{"POST", "/v1/promotions", "promotion.start", map[string]any{"model": "fraud-detector", "version": "f1", "target": "fraud-prod", "strategy": map[string]any{"type": "canary"}}},
		{"POST", "/v1/promotions/" + id + "/approvals", "promotion.approve", map[string]any{"decision": "approve"}},
		{"POST", "/v1/promotions/" + id + "/approvals", "promotion.reject", map[string]any{"decision": "reject"}},
		{"POST", "/v1/promotions/" + id + "/rollback", "promotion.rollback", map[string]any{"reason": "audit"}},
		{"POST", "/v1/promotions/" + id + "/decision", "promotion.decide", map[string]any{"decision": "rollback"}},
		{"POST", "/v1/promotions/" + id + "/decision", "promotion.override", map[string]any{"decision": "promote"}},
		{"POST", "/v1/signals/drift", "drift.report", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.9}},
		{"POST", "/v1/mcp/servers", "mcp.create", map[string]any{"name": "com.example.growth/a", "version": "1.0.0", "description": "d", "remote_url": "https://a.example.com/mcp", "owner": "o", "team": "growth", "risk_tier": "low"}},
		{"POST", "/v1/sim/targets/prod/versions/v2/health", "sim.health", map[string]any{"model": "churn", "error_rate": 0.5}},
		{"PUT", "/v1/sim/targets/prod/models/churn/traffic", "sim.traffic", map[string]any{"traffic": map[string]int{}}},
	}
	for _, m := range mutations {
		before := len(h.audit(store.AuditFilter{Actor: "audrey", Action: "denied"}))
		r := h.must(h.call(m.method, m.path, as("audrey"), m.body), 403)
		if !strings.Contains(r.errMessage(), auditorReads) {
			t.Fatalf("%s %s: %q does not say %q", m.method, m.path, r.errMessage(), auditorReads)
		}
		denials := h.audit(store.AuditFilter{Actor: "audrey", Action: "denied"})
		if len(denials) != before+1 {
			t.Fatalf("%s %s: %d denial records, want 1", m.method, m.path, len(denials)-before)
		}
		checkDenied(t, denials[len(denials)-1], m.action, r.errMessage())
	}
	if p := h.promotion(id); p.Status != modelplane.StatusRunning || len(p.Approvals) != 0 {
		t.Fatalf("the refused calls changed promotion %s: %s, %d approvals", id, p.Status, len(p.Approvals))
	}
	if _, err := h.kit.Store.GetModel(context.Background(), "m2"); err == nil {
		t.Fatal("the auditor's model was created")
	}
}

// --- four-eyes ---

func TestSelfApproval(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true)
	h.seed("high") // production, high risk: two approvals
	h.addTarget("prod-b", "production", 0)
	// root may approve anything (admin) except what root requested.
	id := h.promote(as("root"), canaryBody("v2", []int{100}, "1s"))
	p := h.waitStage(id, modelplane.StageAwaitingApproval)
	if p.RequiredApprovals != 2 {
		t.Fatalf("required approvals = %d, want 2", p.RequiredApprovals)
	}
	other := h.promote("alice", map[string]any{"model": "churn", "version": "v2", "target": "prod-b", "strategy": map[string]any{"type": "canary", "steps": []int{100}}})
	h.waitStage(other, modelplane.StageAwaitingApproval)

	for _, c := range []struct{ who, promotion string }{{"root", id}, {"alice", other}} {
		before := len(h.audit(store.AuditFilter{Actor: c.who, Action: "denied"}))
		r := h.must(h.call("POST", "/v1/promotions/"+c.promotion+"/approvals", as(c.who), map[string]any{"decision": "approve", "comment": "lgtm"}), 403)
		if want := "four-eyes: " + c.who + " requested promotion " + c.promotion; !strings.Contains(r.errMessage(), want) {
			t.Fatalf("self-approval by %s: %q does not say %q", c.who, r.errMessage(), want)
		}
		denials := h.audit(store.AuditFilter{Actor: c.who, Action: "denied"})
		if len(denials) != before+1 {
			t.Fatalf("self-approval by %s: %d denial records, want 1", c.who, len(denials)-before)
		}
		rec := denials[len(denials)-1]
		checkDenied(t, rec, "promotion.approve", r.errMessage())
		if rec.PromotionID != c.promotion || rec.Model != "churn" || rec.Version != "v2" {
			t.Fatalf("denial record names %s %s@%s, want %s churn@v2", rec.PromotionID, rec.Model, rec.Version, c.promotion)
		}
	}
	// The workflow holds the line too: a self-vote signalled past the API is
	// refused there and recorded.
	if err := h.client.SignalWorkflow(context.Background(), workflows.PromotionWorkflowID(id), "", workflows.Approve,
		workflows.Vote{Approver: "root", Decision: "approve", Roles: []string{modelplane.RoleAdmin}, Method: modelplane.AuthToken}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("approval_denied recorded", govWait, func() bool {
		for _, rec := range h.audit(store.AuditFilter{PromotionID: id, Action: "approval_denied"}) {
			if rec.Actor == "root" && strings.Contains(fmt.Sprint(rec.Details["error"]), "four-eyes") {
				return true
			}
		}
		return false
	})

	// One vote per approver.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("bob"), map[string]any{"decision": "approve"}), 200)
	h.waitFor("bob's vote stored", govWait, func() bool { return len(h.promotion(id).Approvals) == 1 })
	before := len(h.audit(store.AuditFilter{Actor: "bob", Action: "denied"}))
	r := h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("bob"), map[string]any{"decision": "approve"}), 403)
	if !strings.Contains(r.errMessage(), "bob has already voted (approve) on promotion "+id) {
		t.Fatalf("second vote: %q", r.errMessage())
	}
	denials := h.audit(store.AuditFilter{Actor: "bob", Action: "denied"})
	if len(denials) != before+1 {
		t.Fatalf("second vote: %d denial records, want 1", len(denials)-before)
	}
	checkDenied(t, denials[len(denials)-1], "promotion.approve", r.errMessage())
	// Past the API, the workflow's validator refuses it as well.
	err := h.vote(id, workflows.Vote{Approver: "bob", Decision: "approve", Roles: []string{modelplane.RoleApprover}, Teams: []string{"growth"}, Method: modelplane.AuthToken})
	if err == nil || !strings.Contains(err.Error(), "already voted") {
		t.Fatalf("second vote past the API: %v", err)
	}
	if p := h.promotion(id); len(p.Approvals) != 1 || p.Stage != modelplane.StageAwaitingApproval || p.Status != modelplane.StatusRunning {
		t.Fatalf("promotion after refused votes: %s/%s with %d approvals", p.Status, p.Stage, len(p.Approvals))
	}
}

// --- evidence binding ---

func TestEvidenceChangeVoidsApprovals(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true)
	h.seed("high") // production, high risk: two approvals
	id := h.promote("alice", canaryBody("v2", []int{100}, "200ms"))
	p := h.waitStage(id, modelplane.StageAwaitingApproval)
	if p.RequiredApprovals != 2 || p.Validation == nil || p.Validation.EvidenceHash == "" {
		t.Fatalf("promotion awaiting approval: required %d, validation %+v", p.RequiredApprovals, p.Validation)
	}
	evidence := func() string {
		s, _ := field(h.must(h.call("GET", "/v1/promotions/"+id, as("alice"), nil), 200).body, "validation", "evidence_hash").(string)
		return s
	}
	h1 := evidence()
	if h1 != p.Validation.EvidenceHash {
		t.Fatalf("GET promotion evidence %q, stored %q", h1, p.Validation.EvidenceHash)
	}

	// bob approves what he reviewed.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("bob"), map[string]any{"decision": "approve", "evidence_hash": h1}), 200)
	h.waitFor("bob's vote stored", govWait, func() bool { return len(h.promotion(id).Approvals) == 1 })

	// A new evaluation: the promotion re-validates.
	r := h.must(h.call("PUT", "/v1/models/churn/versions/v2/metrics", as("alice"), map[string]any{"metrics": map[string]float64{"auc": 0.93, "f1": 0.81}}), 200)
	if got := fmt.Sprint(r.body["promotions_revalidating"]); got != "["+id+"]" {
		t.Fatalf("promotions re-validating: %s", got)
	}
	var h2 string
	h.waitFor("new evidence hash", govWait, func() bool { h2 = evidence(); return h2 != h1 && h2 != "" })
	changed := h.must(h.call("GET", "/v1/audit?promotion="+id+"&action=evidence_changed", as("alice"), nil), 200)
	recs := list(changed, "records")
	if len(recs) != 1 || recs[0]["evidence_hash"] != h2 || field(recs[0], "details", "previous") != h1 || field(recs[0], "details", "approvals_voided") != 1.0 {
		t.Fatalf("evidence_changed records = %s", changed.raw)
	}

	// A vote on the old evidence is refused, by the API…
	before := len(h.audit(store.AuditFilter{Actor: "carol", Action: "denied"}))
	r = h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("carol"), map[string]any{"decision": "approve", "evidence_hash": h1}), 403)
	if !strings.Contains(r.errMessage(), "evidence changed since carol reviewed it") || !strings.Contains(r.errMessage(), h2) {
		t.Fatalf("stale vote: %q", r.errMessage())
	}
	denials := h.audit(store.AuditFilter{Actor: "carol", Action: "denied"})
	if len(denials) != before+1 {
		t.Fatalf("stale vote: %d denial records, want 1", len(denials)-before)
	}
	checkDenied(t, denials[len(denials)-1], "promotion.approve", r.errMessage())
	// …and by the workflow, which asks the policy itself.
	err := h.vote(id, workflows.Vote{Approver: "carol", Decision: "approve", EvidenceHash: h1, Roles: []string{modelplane.RoleApprover}, Teams: []string{"growth"}, Method: modelplane.AuthToken})
	if err == nil || !strings.Contains(err.Error(), "evidence changed") {
		t.Fatalf("stale vote past the API: %v", err)
	}

	// carol approves the new evidence: one of two, since bob's vote was on h1.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("carol"), map[string]any{"decision": "approve", "evidence_hash": h2}), 200)
	h.waitFor("carol's vote stored", govWait, func() bool { p = h.promotion(id); return len(p.Approvals) == 2 })
	// The projection that first holds carol's vote was written after the
	// workflow tallied it: had bob's old vote counted, it would not still wait.
	if p.Stage != modelplane.StageAwaitingApproval || p.Status != modelplane.StatusRunning {
		t.Fatalf("after carol's vote: %s/%s, want still awaiting approval (1 of 2)", p.Status, p.Stage)
	}
	prov := h.must(h.call("GET", "/v1/models/churn/versions/v2/provenance", as("audrey"), nil), 200)
	votes := objects(list(prov, "promotions")[0]["approvals"])
	counted := func(vs []map[string]any) string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%v:%v", v["approver"], v["counted"]))
		}
		return strings.Join(out, " ")
	}
	if got := counted(votes); got != "bob:false carol:true" {
		t.Fatalf("counted votes = %s", got)
	}

	// bob reviews the new evidence and votes again: now it proceeds.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("bob"), map[string]any{"decision": "approve"}), 200)
	p = h.waitEnded(id, modelplane.StatusSucceeded)
	if p.Validation.EvidenceHash != h2 {
		t.Fatalf("final evidence %q, want %q", p.Validation.EvidenceHash, h2)
	}
	prov = h.must(h.call("GET", "/v1/models/churn/versions/v2/provenance", as("audrey"), nil), 200)
	pp := list(prov, "promotions")[0]
	votes = objects(pp["approvals"])
	if got := counted(votes); got != "bob:false carol:true bob:true" {
		t.Fatalf("counted votes = %s", got)
	}
	if votes[0]["evidence_hash"] != h1 || votes[1]["evidence_hash"] != h2 || votes[2]["evidence_hash"] != h2 || pp["evidence_hash"] != h2 {
		t.Fatalf("vote evidence = %v %v %v, promotion %v", votes[0]["evidence_hash"], votes[1]["evidence_hash"], votes[2]["evidence_hash"], pp["evidence_hash"])
	}
	for _, v := range votes {
		if s, _ := v["policy_decision"].(string); s == "" {
			t.Fatalf("vote without a policy decision: %v", v)
		}
	}
}

// --- provenance and scorecard ---

func TestProvenanceAndScorecard(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true)
	h.seed("low") // production, low risk: one approval
	id := h.promote("alice", canaryBody("v2", []int{50, 100}, "200ms"))
	h.waitStage(id, modelplane.StageAwaitingApproval)
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", as("bob"), map[string]any{"decision": "approve", "comment": "offline metrics fine"}), 200)
	p := h.waitEnded(id, modelplane.StatusSucceeded)
	h.waitFor("guardian running", govWait, func() bool {
		_, err := h.client.DescribeWorkflowExecution(context.Background(), workflows.GuardianWorkflowID("churn", "prod"), "")
		return err == nil
	})
	// Drift on the promoted version: the guardian rolls back to v1.
	r := h.must(h.call("POST", "/v1/signals/drift", as("alice"), map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.9}), 202)
	if !strings.Contains(r.raw, `"kind":"deployment"`) {
		t.Fatalf("drift affected %s", r.raw)
	}
	var prov resp
	h.waitFor("rollback in provenance", govWait, func() bool {
		prov = h.must(h.call("GET", "/v1/models/churn/versions/v2/provenance", as("audrey"), nil), 200)
		return len(list(prov, "rollbacks")) > 0
	})

	ps := list(prov, "promotions")
	if len(ps) != 1 || ps[0]["id"] != id || ps[0]["requested_by"] != "alice" || ps[0]["status"] != modelplane.StatusSucceeded || ps[0]["required_approvals"] != 1.0 {
		t.Fatalf("provenance promotions = %v", ps)
	}
	votes := objects(ps[0]["approvals"])
	if len(votes) != 1 || votes[0]["approver"] != "bob" || votes[0]["counted"] != true || votes[0]["evidence_hash"] != p.Validation.EvidenceHash || votes[0]["policy_decision"] == "" || votes[0]["policy_decision"] == nil {
		t.Fatalf("provenance approvals = %v (evidence %s)", votes, p.Validation.EvidenceHash)
	}
	decisions := list(prov, "policy_decisions")
	if len(decisions) == 0 {
		t.Fatal("no policy decisions in provenance")
	}
	ids := map[string]bool{}
	for _, d := range decisions {
		id, _ := field(d, "policy", "id").(string)
		if id == "" {
			t.Fatalf("policy decision record without a decision id: %v", d)
		}
		ids[id] = true
	}
	if !ids[p.Approvals[0].PolicyDecision] {
		t.Fatalf("bob's vote decision %s is not among the provenance's policy decisions", p.Approvals[0].PolicyDecision)
	}
	var splits []string
	var last time.Time
	for _, step := range list(prov, "traffic_timeline") {
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(step["at"]))
		if err != nil || at.Before(last) {
			t.Fatalf("traffic timeline out of order at %v (after %s)", step, last)
		}
		last = at
		splits = append(splits, fmt.Sprint(step["split"]))
	}
	if got := strings.Join(splits, " "); got != "v1=50,v2=50 v2=100" {
		t.Fatalf("traffic timeline = %s", got)
	}
	rb := list(prov, "rollbacks")[0]
	if rb["decision"] != "rolled_back" || field(rb, "details", "cause") != "drift" || field(rb, "details", "to") != "v1" || !strings.Contains(fmt.Sprint(field(rb, "details", "reason")), "psi=0.9") {
		t.Fatalf("rollback = %v", rb)
	}
	if prov.body["chain_head"] == "" || prov.body["records"].(float64) < 5 {
		t.Fatalf("provenance chain head %v from %v records", prov.body["chain_head"], prov.body["records"])
	}

	// Team members read their own provenance; another team may not.
	h.must(h.call("GET", "/v1/models/churn/versions/v2/provenance", as("alice"), nil), 200)
	if r := h.must(h.call("GET", "/v1/models/churn/versions/v2/provenance", as("frank"), nil), 403); !strings.Contains(r.errMessage(), notGrowth) {
		t.Fatalf("frank's provenance: %q", r.errMessage())
	}

	sc := h.must(h.call("GET", "/v1/scorecard", as("audrey"), nil), 200)
	ratio := func(key string) (part, whole, share float64) {
		m, _ := sc.body[key].(map[string]any)
		part, _ = m["part"].(float64)
		whole, _ = m["whole"].(float64)
		share, _ = m["share"].(float64)
		return
	}
	if part, whole, share := ratio("assets_with_owner_and_risk_tier"); whole != 1 || part != 1 || share != 1 {
		t.Fatalf("owned and tiered = %v/%v (%v): %s", part, whole, share, sc.raw)
	}
	if part, whole, share := ratio("transitions_decided_by_explicit_policy"); whole < 5 || share <= 0.9 || share > 1 || part > whole {
		t.Fatalf("explicit policy = %v/%v (%v): %s", part, whole, share, sc.raw)
	}
	if part, whole, share := ratio("exception_rate"); part != 0 || whole != 1 || share != 0 {
		t.Fatalf("exception rate = %v/%v (%v): %s", part, whole, share, sc.raw)
	}
	lat, _ := sc.body["time_to_answer_provenance"].(map[string]any)
	if q, _ := lat["queries"].(float64); q < 1 || lat["p50_ms"].(float64) < 0 || lat["max_ms"].(float64) < lat["p50_ms"].(float64) {
		t.Fatalf("provenance latency = %v", lat)
	}
	t.Logf("scorecard: %s", sc.raw)
	h.must(h.call("GET", "/v1/scorecard", as("root"), nil), 200)
	h.must(h.call("GET", "/v1/scorecard", as("frank"), nil), 403)
}

// --- audit chain ---

func TestAuditVerifyEndpoint(t *testing.T) {
	t.Parallel()
	h := newStoreHarness(t)
	h.must(h.call("POST", "/v1/models", as("root"), map[string]any{"name": "m1", "owner": "ml@example.com", "team": "growth", "risk_tier": "low"}), 201)
	for _, v := range []string{"a", "b"} {
		h.must(h.call("POST", "/v1/models/m1/versions", as("alice"), map[string]any{"version": v, "artifact_uri": "s3://m1/" + v}), 201)
	}
	h.must(h.call("POST", "/v1/models", as("frank"), map[string]any{"name": "m2", "owner": "ml@example.com", "team": "growth", "risk_tier": "low"}), 403)

	r := h.must(h.call("GET", "/v1/audit/verify", as("audrey"), nil), 200)
	if r.body["ok"] != true || r.body["records"] != 4.0 {
		t.Fatalf("verify = %s", r.raw)
	}
	h.must(h.call("GET", "/v1/audit/verify", as("alice"), nil), 403)

	export := func() (*audit.Break, int) {
		t.Helper()
		r := h.must(h.call("GET", "/v1/audit/export", as("audrey"), nil), 200)
		brk, n, err := audit.VerifyJSONL(strings.NewReader(r.raw))
		if err != nil {
			t.Fatalf("export is not JSON Lines of records: %v\n%s", err, r.raw)
		}
		return brk, n
	}
	// The export records itself before it streams, so it holds 5 records.
	if brk, n := export(); brk != nil || n != 5 {
		t.Fatalf("export verifies as %v over %d records", brk, n)
	}

	if err := h.kit.Store.DB().Exec("UPDATE audit_records SET actor = 'mallory' WHERE seq = 2").Error; err != nil {
		t.Fatal(err)
	}
	r = h.must(h.call("GET", "/v1/audit/verify", as("audrey"), nil), 409)
	if r.body["ok"] != false || field(r.body, "break", "seq") != 2.0 || field(r.body, "break", "kind") != string(audit.Edited) || !strings.Contains(fmt.Sprint(r.body["message"]), "record 2 ") {
		t.Fatalf("verify after tampering = %s", r.raw)
	}
	if brk, _ := export(); brk == nil || brk.Seq != 2 || brk.Kind != audit.Edited {
		t.Fatalf("export after tampering verifies as %v", brk)
	}
}
