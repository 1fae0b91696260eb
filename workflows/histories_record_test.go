//go:build record_histories

// The recorder of the histories TestReplayRecordedHistories replays. It runs
// the real workflows, registered as the worker registers them, on a real
// in-process Temporal server, driven through the real HTTP API over the
// simulated provider, and writes each workflow's full history as JSON (the
// format `temporal workflow show --output json` writes) into
// testdata/histories. Regenerate only on purpose, from released code:
//
//	go test -tags record_histories -run TestRecordHistories -count=1 ./workflows/
//
// Existing files are overwritten only when a scenario of the same name runs;
// when workflow code changes, record under new names beside the old files.
package workflows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/mcp/mcptest"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/temporalserver"
	mpworker "github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
)

// recRoles are the API's users; each one's bearer token is recToken(name).
var recRoles = map[string]string{"alice": api.RoleRequester, "bob": api.RoleApprover, "carol": api.RoleApprover, "admin": api.RoleAdmin}

func recToken(name string) string { return "rec-" + name + "-0123456789abcdef" }

// recRig is one scenario's world: a Temporal server, a store with model
// churn on target prod (sim), a worker and the API.
type recRig struct {
	t   *testing.T
	ts  *temporaltest.TestServer
	c   client.Client
	kit *testkit.Kit
	url string
}

type recConfig struct {
	tier modelplane.RiskTier
	// suggestCANAfter makes the server suggest continue-as-new at this many
	// history events (0: the server's default).
	suggestCANAfter int
	mlflow          *mlflow.Client
	mcpRegistry     *mcpregistry.Client
	bare            bool // no versions, nothing served
	// stamped: the frontend verifies callers and stamps their principal
	// (modelplane's Temporal); the rig's client presents the service key.
	stamped bool
}

const recServiceKey = "rec-service-0123456789abcdef"

func newRecRig(t *testing.T, cfg recConfig) *recRig {
	t.Helper()
	kit := testkit.New(t, ":memory:") // before the server: its cleanup runs after the server stopped
	dc := dynamicconfig.StaticClient{dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}}}
	if cfg.suggestCANAfter > 0 {
		dc[dynamicconfig.HistoryCountSuggestContinueAsNew.Key()] = []dynamicconfig.ConstrainedValue{{Value: cfg.suggestCANAfter}}
	}
	var list []api.Token
	for name, role := range recRoles {
		list = append(list, api.Token{Name: name, Role: role, Secret: recToken(name), Teams: []string{"growth", "agents"}})
	}
	ids, err := api.NewTokens(list)
	if err != nil {
		t.Fatal(err)
	}
	serverOpts := []temporal.ServerOption{temporal.WithDynamicConfigClient(dc)}
	opts := []temporaltest.TestServerOption{temporaltest.WithT(t)}
	if cfg.stamped {
		auth, err := (&temporalserver.Auth{Users: ids, ServiceKeyDigests: []string{identity.Digest(recServiceKey)}}).ServerOptions()
		if err != nil {
			t.Fatal(err)
		}
		serverOpts = append(serverOpts, auth...)
		opts = append(opts, temporaltest.WithBaseClientOptions(client.Options{HeadersProvider: mpworker.Bearer(recServiceKey)}))
	}
	ts := temporaltest.NewServer(append(opts, temporaltest.WithBaseServerOptions(serverOpts...))...)
	c := ts.GetDefaultClient()
	// The policy adds no approvals of its own: the risk tier decides the quorum.
	zero := map[string]any{"dev": 0, "staging": 0, "production": 0}
	engine, err := policy.New("", policy.WithData(map[string]any{
		"allow_unverified_ui_approvals": true,
		"min_metrics":                   map[string]any{"production": 0},
		"approvals":                     map[string]any{"low": zero, "medium": zero, "high": zero, "critical": zero},
	}))
	if err != nil {
		t.Fatal(err)
	}
	a := kit.Activities
	a.Temporal, a.Policy, a.Directory, a.MLflow, a.MCPRegistry = c, engine, ids.Lookup, cfg.mlflow, cfg.mcpRegistry
	srv := httptest.NewServer((&api.Server{Store: kit.Store, Temporal: c, Auth: ids, Policy: engine, Providers: a.Providers, Sim: kit.Sim, MLflow: cfg.mlflow}).Handler())
	t.Cleanup(srv.Close)
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { mpworker.Register(r, a) },
		sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.Interceptor()}})
	tier := cfg.tier
	if tier == "" {
		tier = modelplane.RiskLow
	}
	if cfg.bare {
		kit.Seed(t, tier)
	} else {
		kit.Seed(t, tier, "v1", "v2")
		kit.Serve(t, "v1", "")
	}
	return &recRig{t: t, ts: ts, c: c, kit: kit, url: srv.URL}
}

// call sends an API request as user and fails unless the answer has status want.
func (r *recRig) call(method, path, user string, body any, want int) map[string]any {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+recToken(user))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		r.t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, user, res.StatusCode, want, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func recCanary(steps []int, bake string) map[string]any {
	return map[string]any{"type": "canary", "steps": steps, "bake": bake, "monitor_window": "1s"}
}

// promote starts a promotion of churn to prod through the API as alice.
func (r *recRig) promote(version string, strategy map[string]any, extra map[string]any) string {
	r.t.Helper()
	body := map[string]any{"model": "churn", "version": version, "target": "prod", "strategy": strategy}
	for k, v := range extra {
		body[k] = v
	}
	return r.call("POST", "/v1/promotions", "alice", body, 202)["id"].(string)
}

func (r *recRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *recRig) promotion(id string) modelplane.Promotion {
	p, _ := r.kit.Store.GetPromotion(context.Background(), id)
	return p
}

func (r *recRig) waitStage(id, stage string) modelplane.Promotion {
	r.t.Helper()
	var p modelplane.Promotion
	r.waitFor(id+" at "+stage, func() bool { p = r.promotion(id); return p.Stage == stage })
	return p
}

// finish waits for the promotion's workflow to end with status and saves
// its history as name (unless name is empty).
func (r *recRig) finish(id, status, name string) modelplane.Promotion {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var p modelplane.Promotion
	if err := r.c.GetWorkflow(ctx, workflows.PromotionWorkflowID(id), "").Get(ctx, &p); err != nil {
		r.t.Fatalf("promotion %s: %v", id, err)
	}
	if p.Status != status {
		r.t.Fatalf("promotion %s ended %s (%s), want %s", id, p.Status, p.Reason, status)
	}
	if name != "" {
		r.save(name, workflows.PromotionWorkflowID(id), "")
	}
	return p
}

func (r *recRig) history(wid, runID string) *historypb.History {
	r.t.Helper()
	it := r.c.GetWorkflowHistory(context.Background(), wid, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			r.t.Fatalf("history of %s: %v", wid, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

func lastEvent(h *historypb.History) enumspb.EventType {
	if len(h.Events) == 0 {
		return enumspb.EVENT_TYPE_UNSPECIFIED
	}
	return h.Events[len(h.Events)-1].GetEventType()
}

func hasSignal(h *historypb.History, name string) bool {
	for _, ev := range h.Events {
		if ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == name {
			return true
		}
	}
	return false
}

// recSuffix names the branch the scenarios being recorded take (e.g.
// "_local_steps"); "" for the scenarios of released code. A scenario
// recorded under a suffix writes only the histories of recType, the
// workflow the branch changed, and never overwrites a file.
var recSuffix, recType string

// onBranch runs a scenario recording promotions under suffix.
func onBranch(suffix string, run func(t *testing.T)) func(t *testing.T) {
	return onBranchOf(suffix, workflows.PromotionWorkflow, run)
}

// onBranchOf runs a scenario recording the workflows of type typ under suffix.
func onBranchOf(suffix, typ string, run func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		recSuffix, recType = suffix, typ
		defer func() { recSuffix, recType = "", "" }()
		run(t)
	}
}

// save writes the run's history and checks the file replays against the code that recorded it.
func (r *recRig) save(name, wid, runID string) {
	r.t.Helper()
	h := r.history(wid, runID)
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		r.t.Fatal(err)
	}
	path := filepath.Join(historyDir, name+recSuffix+".json")
	if recSuffix != "" {
		if typ := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(); typ != recType {
			r.t.Logf("%s: not written (a %s, not a %s)", path, typ, recType)
			return
		}
		if _, err := os.Stat(path); err == nil {
			r.t.Fatalf("%s exists: a branch's histories are only ever added", path)
		}
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		r.t.Fatal(err)
	}
	back, err := loadHistory(path)
	if err != nil {
		r.t.Fatalf("%s does not read back: %v", path, err)
	}
	if err := newReplayer(r.t).ReplayWorkflowHistory(quietLogger(), back); err != nil {
		r.t.Fatalf("%s does not replay against the code that recorded it: %v", path, err)
	}
	r.t.Logf("%s: %d events, %s, %d bytes", path, len(h.Events), lastEvent(h), len(data))
}

func (r *recRig) approve(id, user, decision string) {
	r.t.Helper()
	r.call("POST", "/v1/promotions/"+id+"/approvals", user, map[string]any{"decision": decision, "comment": "reviewed by " + user}, 200)
}

func (r *recRig) signal(id, name string, arg any) {
	r.t.Helper()
	if err := r.c.SignalWorkflow(context.Background(), workflows.PromotionWorkflowID(id), "", name, arg); err != nil {
		r.t.Fatal(err)
	}
}

// health sets what the simulator reports for v2.
func (r *recRig) health(h modelplane.Health) {
	r.t.Helper()
	if err := r.kit.Sim.SetHealth(context.Background(), "prod", "churn", "v2", h); err != nil {
		r.t.Fatal(err)
	}
}

func (r *recRig) audited(f store.AuditFilter, action modelplane.AuditAction) bool {
	recs, _ := r.kit.Store.ListAudit(context.Background(), f)
	for _, rec := range recs {
		if rec.Action == action {
			return true
		}
	}
	return false
}

func TestRecordHistories(t *testing.T) {
	if err := os.MkdirAll(historyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Released code's scenarios: the promotions every later branch records
	// again, except "canary approved by update", which released code
	// recorded together with the guardian it hands over to.
	scenarios := []recScenario{
		{"canary approved by update, guardian rolls back on drift", recordCanaryAndGuardianDrift},
		{"canary approved by a Web UI signal", func(t *testing.T) {
			recordVotes(t, modelplane.RiskMedium, "", true, modelplane.StatusSucceeded, "promotion_canary_approved_by_signal_succeeded")
		}},
	}
	scenarios = append(scenarios, promotionScenarios[1:]...)
	scenarios = append(scenarios, []recScenario{
		{"guardian continues as new", recordGuardianContinueAsNew},
		{"MCP server lifecycle", recordMCP},
		{"pipeline: dev auto-promoted, prod soaked then promoted by a person", recordPipeline},

		// The pipeline-local-steps branch (a pipeline run's store and policy
		// steps as local activities), recorded from the commit that added it:
		//   go test -tags record_histories -run 'TestRecordHistories/pipeline_local_steps' -count=1 ./workflows/
		{"pipeline local steps: dev auto-promoted, prod soaked then promoted by a person", onBranchOf("_pipeline_local_steps", workflows.PipelineWorkflow, recordPipeline)},
	}...)
	for _, sc := range scenarios {
		t.Run(sc.name, sc.run)
	}
	// The batched-progress branch (a promotion's first workflow task writes
	// the store once and skips the registry calls and deployment read it
	// has the answer to), recorded from the commit that added it:
	//   go test -tags record_histories -run 'TestRecordHistories/batched_progress' -count=1 ./workflows/
	for _, sc := range promotionScenarios {
		t.Run("batched progress: "+sc.name, onBranch("_batched_progress", sc.run))
	}
}

// recScenario is one scenario of TestRecordHistories.
type recScenario struct {
	name string
	run  func(t *testing.T)
}

// promotionScenarios are the model promotions recorded again on each branch
// of the promotion workflow: on local-steps (recorded from the commit that
// added it, go test -tags record_histories -run 'TestRecordHistories/local_steps'
// -count=1 ./workflows/, when these ran as "local steps: <name>") and on
// batched-progress.
var promotionScenarios = []recScenario{
	{"canary approved by update", func(t *testing.T) {
		recordVotes(t, modelplane.RiskMedium, "approve", false, modelplane.StatusSucceeded, "promotion_canary_approved_by_update_succeeded")
	}},
	{"canary approved by a signed-in Web UI signal, stamped", recordStampedSignal},
	{"quorum by update and signal", func(t *testing.T) {
		recordVotes(t, modelplane.RiskHigh, "approve", true, modelplane.StatusSucceeded, "promotion_quorum_by_update_and_signal_succeeded")
	}},
	{"approval rejected", func(t *testing.T) {
		recordVotes(t, modelplane.RiskMedium, "reject", false, modelplane.StatusRejected, "promotion_approval_rejected")
	}},
	{"strategies", recordStrategies},
	{"approval escalated then expired", recordExpiry},
	{"evidence changed during approval", recordEvidenceChanged},
	{"analysis failed", recordAnalysisFailure},
	{"inconclusive, decided promote", func(t *testing.T) { recordInconclusive(t, "promote") }},
	{"inconclusive, decided rollback", func(t *testing.T) { recordInconclusive(t, "rollback") }},
	{"drift during rollout", func(t *testing.T) { recordStopDuringRollout(t, "drift") }},
	{"manual rollback by signal", func(t *testing.T) { recordStopDuringRollout(t, "signal") }},
	{"manual rollback by update", func(t *testing.T) { recordStopDuringRollout(t, "update") }},
	{"MLflow import and reconciliation", recordMLflow},
}

// recordStampedSignal: carol, signed in, signals approve with a payload
// naming bob; the frontend stamps carol and the vote is hers.
func recordStampedSignal(t *testing.T) {
	r := newRecRig(t, recConfig{tier: modelplane.RiskMedium, stamped: true})
	id := r.promote("v2", recCanary([]int{50, 100}, "1s"), nil)
	r.waitStage(id, modelplane.StageAwaitingApproval)
	carol := r.ts.NewClientWithOptions(client.Options{HeadersProvider: mpworker.Bearer(recToken("carol"))})
	if err := carol.SignalWorkflow(context.Background(), workflows.PromotionWorkflowID(id), "", workflows.Approve,
		json.RawMessage(`{"approver":"bob","decision":"approve","comment":"signed in as carol"}`)); err != nil {
		t.Fatal(err)
	}
	if p := r.finish(id, modelplane.StatusSucceeded, "promotion_canary_approved_by_stamped_signal_succeeded"); len(p.Approvals) != 1 || p.Approvals[0].Approver != "carol" {
		t.Fatalf("approvals = %+v, want carol's", p.Approvals)
	}
}

// recordVotes runs a canary that waits for approval: bob votes apiVote
// through the API (a workflow update) unless it is empty, and carol approves
// the way the Temporal Web UI does (Send a Signal with a JSON payload) when byUI.
func recordVotes(t *testing.T, tier modelplane.RiskTier, apiVote string, byUI bool, status, name string) *recRig {
	r := newRecRig(t, recConfig{tier: tier})
	id := r.promote("v2", recCanary([]int{50, 100}, "1s"), nil)
	r.waitStage(id, modelplane.StageAwaitingApproval)
	votes := 0
	if apiVote != "" {
		r.approve(id, "bob", apiVote)
		votes++
	}
	if byUI {
		r.signal(id, workflows.Approve, json.RawMessage(`{"approver":"carol","decision":"approve","comment":"looks good from the Web UI"}`))
		votes++
	}
	if p := r.finish(id, status, name); len(p.Approvals) != votes {
		t.Fatalf("approvals = %+v, want %d", p.Approvals, votes)
	}
	return r
}

func recordCanaryAndGuardianDrift(t *testing.T) {
	r := recordVotes(t, modelplane.RiskMedium, "approve", false, modelplane.StatusSucceeded, "promotion_canary_approved_by_update_succeeded")
	// The promotion handed over to the guardian; drift now rolls back to v1.
	gid := workflows.GuardianWorkflowID("churn", "prod")
	r.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.41, "source": "evidently"}, 202)
	r.waitFor("guardian rollback, retrain and next watch", func() bool {
		return r.kit.Traffic(t) == "v1=100" && len(r.kit.Sink.Events()) == 1 && lastEvent(r.history(gid, "")) == enumspb.EVENT_TYPE_TIMER_STARTED
	})
	r.save("guardian_drift_after_promotion_rolled_back", gid, "")
}

func recordStrategies(t *testing.T) {
	for _, c := range []struct {
		name     string
		strategy map[string]any
		settle   int // polls until a platform change is done (0: at once)
	}{
		{"direct", map[string]any{"type": "direct", "monitor_window": "1s"}, 0},
		{"bluegreen", map[string]any{"type": "bluegreen", "bake": "1s", "monitor_window": "1s"}, 0},
		{"shadow_then_canary", map[string]any{"type": "shadow", "shadow_percent": 20, "steps": []int{50, 100}, "bake": "1s", "monitor_window": "1s"}, 0},
		{"canary_awaits_platform_operations", recCanary([]int{50, 100}, "1s"), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRecRig(t, recConfig{})
			r.kit.Sim.SettleAfter(c.settle)
			r.finish(r.promote("v2", c.strategy, nil), modelplane.StatusSucceeded, "promotion_"+c.name+"_succeeded")
		})
	}
}

func recordExpiry(t *testing.T) {
	r := newRecRig(t, recConfig{tier: modelplane.RiskMedium})
	id := r.promote("v2", recCanary([]int{100}, "1s"), map[string]any{"approval_timeout": "2s"})
	r.finish(id, modelplane.StatusExpired, "promotion_approval_escalated_then_expired")
	if !r.audited(store.AuditFilter{PromotionID: id}, modelplane.AuditApprovalEscalated) {
		t.Fatal("no approval_escalated record")
	}
}

func recordEvidenceChanged(t *testing.T) {
	r := newRecRig(t, recConfig{tier: modelplane.RiskHigh})
	id := r.promote("v2", recCanary([]int{100}, "1s"), nil)
	before := r.waitStage(id, modelplane.StageAwaitingApproval).Validation.EvidenceHash
	r.approve(id, "bob", "approve")
	r.waitFor("bob's vote", func() bool { return len(r.promotion(id).Approvals) == 1 })
	// A new evaluation voids bob's vote; carol and bob approve the new evidence.
	r.call("PUT", "/v1/models/churn/versions/v2/metrics", "alice", map[string]any{"metrics": map[string]float64{"auc": 0.93, "f1": 0.81}}, 200)
	r.waitFor("new evidence", func() bool {
		v := r.promotion(id).Validation
		return v != nil && v.EvidenceHash != before
	})
	r.approve(id, "carol", "approve")
	r.waitFor("carol's vote", func() bool { return len(r.promotion(id).Approvals) == 2 })
	r.approve(id, "bob", "approve")
	r.finish(id, modelplane.StatusSucceeded, "promotion_evidence_changed_during_approval_succeeded")
}

func recordAnalysisFailure(t *testing.T) {
	r := newRecRig(t, recConfig{})
	r.health(modelplane.Health{ErrorRate: 0.2, LatencyP99Ms: 40})
	p := r.finish(r.promote("v2", recCanary([]int{10, 50, 100}, "1s"), nil), modelplane.StatusRolledBack, "promotion_analysis_failed_rolled_back")
	if !strings.Contains(p.Reason, "error_rate") {
		t.Fatalf("reason = %s", p.Reason)
	}
}

func recordInconclusive(t *testing.T, decision string) {
	r := newRecRig(t, recConfig{})
	r.health(modelplane.Health{NoData: true})
	id := r.promote("v2", recCanary([]int{50, 100}, "1s"), nil)
	r.waitStage(id, modelplane.StageAwaitingDecision)
	r.health(modelplane.Health{ErrorRate: 0.001, LatencyP99Ms: 40})
	// Promoting despite an inconclusive analysis is an override: an admin's call.
	user, status := "admin", modelplane.StatusSucceeded
	if decision == "rollback" {
		user, status = "bob", modelplane.StatusRolledBack
	}
	r.call("POST", "/v1/promotions/"+id+"/decision", user, map[string]any{"decision": decision}, 200)
	r.finish(id, status, "promotion_inconclusive_decided_"+decision)
}

// recordStopDuringRollout stops a canary at its first step: by a drift
// report through the API (rolls back and asks for retraining), a manual
// rollback signal, or a manual rollback through the API (an update).
func recordStopDuringRollout(t *testing.T, how string) {
	r := newRecRig(t, recConfig{})
	id := r.promote("v2", recCanary([]int{10, 50, 100}, "30s"), nil)
	r.waitFor("first canary step", func() bool { return r.kit.Traffic(t) == "v1=90,v2=10" })
	switch how {
	case "drift":
		r.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "version": "v2", "metric": "psi", "score": 0.5, "source": "evidently"}, 202)
		r.finish(id, modelplane.StatusRolledBack, "promotion_drift_during_rollout_rolled_back_retrain")
		if n := len(r.kit.Sink.Events()); n != 1 {
			t.Fatalf("retrain requests = %d, want 1", n)
		}
	case "signal":
		r.signal(id, workflows.Rollback, workflows.RollbackRequest{Actor: "sre-on-call", Reason: "pager"})
		r.finish(id, modelplane.StatusRolledBack, "promotion_manual_rollback_by_signal")
	default:
		r.call("POST", "/v1/promotions/"+id+"/rollback", "bob", map[string]any{"reason": "customer complaints"}, 202)
		r.finish(id, modelplane.StatusRolledBack, "promotion_manual_rollback_by_update")
	}
}

// recordGuardianContinueAsNew runs a guardian whose server suggests
// continuing as new after a few dozen events: the first run ends so, and
// the run that handles a manual rollback signal is recorded to its end too.
func recordGuardianContinueAsNew(t *testing.T) {
	r := newRecRig(t, recConfig{suggestCANAfter: 80})
	ctx := context.Background()
	tg, err := r.kit.Store.GetTarget(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	tg.GuardInterval = modelplane.Duration(300 * time.Millisecond)
	if err := r.kit.Store.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	r.finish(r.promote("v2", map[string]any{"type": "direct", "monitor_window": "1s"}, nil), modelplane.StatusSucceeded, "") // promotion_direct_succeeded covers it
	gid := workflows.GuardianWorkflowID("churn", "prod")
	var first string
	r.waitFor("the guardian's first continue-as-new", func() bool {
		start := r.history(gid, "").Events[0].GetWorkflowExecutionStartedEventAttributes()
		first = start.GetFirstExecutionRunId()
		return start.GetContinuedExecutionRunId() != ""
	})
	r.save("guardian_continued_as_new", gid, first)

	if err := r.c.SignalWorkflow(ctx, gid, "", workflows.Rollback, workflows.RollbackRequest{Actor: "sre-on-call", Reason: "bad answers"}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("guardian rollback to v1", func() bool { return r.kit.Traffic(t) == "v1=100" })
	// Follow the chain of runs to the one that received the signal, and wait for it to end.
	run := first
	for h := r.history(gid, run); !hasSignal(h, workflows.Rollback); h = r.history(gid, run) {
		can := h.Events[len(h.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes()
		if can == nil {
			t.Fatalf("run %s neither received the rollback signal nor continued as new", run)
		}
		run = can.GetNewExecutionRunId()
	}
	r.waitFor("the rollback run's continue-as-new", func() bool {
		return lastEvent(r.history(gid, run)) == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
	})
	r.save("guardian_manual_rollback_then_continued_as_new", gid, run)
}

// recRegistry stands in for the official MCP registry's publish and status
// endpoints (the real one needs a built binary and PostgreSQL).
func recRegistry(t *testing.T) *mcpregistry.Client {
	var mu sync.Mutex
	versions := map[string]*mcpregistry.ServerResponse{}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v0/publish", func(w http.ResponseWriter, req *http.Request) {
		var s mcpregistry.ServerJSON
		_ = json.NewDecoder(req.Body).Decode(&s)
		now := time.Now().UTC()
		v := &mcpregistry.ServerResponse{Server: s, Meta: mcpregistry.ResponseMeta{Official: &mcpregistry.Official{
			Status: mcpregistry.StatusActive, StatusChangedAt: now, PublishedAt: now, IsLatest: true}}}
		mu.Lock()
		defer mu.Unlock()
		versions[s.Name+"@"+s.Version] = v
		reply(w, v)
	})
	version := func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		v := versions[req.PathValue("name")+"@"+req.PathValue("version")]
		if v == nil {
			http.Error(w, `{"title":"Not Found","status":404,"detail":"server not found"}`, http.StatusNotFound)
			return
		}
		if req.Method == http.MethodPatch {
			var b struct {
				Status  mcpregistry.Status `json:"status"`
				Message string             `json:"statusMessage"`
			}
			_ = json.NewDecoder(req.Body).Decode(&b)
			v.Meta.Official.Status, v.Meta.Official.StatusMessage, v.Meta.Official.StatusChangedAt = b.Status, b.Message, time.Now().UTC()
		}
		reply(w, v)
	}
	mux.HandleFunc("GET /v0/servers/{name}/versions/{version}", version)
	mux.HandleFunc("PATCH /v0/servers/{name}/versions/{version}/status", version)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return mcpregistry.New(srv.URL, mcpregistry.StaticToken("recorder"))
}

func recordMCP(t *testing.T) {
	r := newRecRig(t, recConfig{bare: true, mcpRegistry: recRegistry(t)})
	ctx := context.Background()
	name := "com.example.histories/weather"
	register := func(version string) *mcptest.Handle {
		spec := mcptest.Weather()
		spec.Version = version
		u, h := mcptest.Serve(t, spec)
		r.call("POST", "/v1/mcp/servers", "alice", map[string]any{"name": name, "version": version, "description": "Weather forecasts and alerts",
			"remote_url": "https://weather.histories.example.com/mcp", "validate_url": u, "owner": "agents@example.com", "team": "agents",
			"risk_tier": "medium", "data_domains": []string{"public"}}, 201)
		return h
	}
	promote := func(version, monitor string) string {
		id := r.call("POST", "/v1/mcp/promotions", "alice", map[string]any{"name": name, "version": version, "channel": "prod", "monitor_window": monitor}, 202)["id"].(string)
		r.waitStage(id, modelplane.StageAwaitingApproval)
		return id
	}
	channel := func() string { c, _ := r.kit.Store.GetChannel(ctx, name, "prod"); return c.Version }

	live := register("1.0.0")
	id := promote("1.0.0", "1s")
	r.approve(id, "bob", "approve")
	r.finish(id, modelplane.StatusSucceeded, "mcp_promotion_succeeded")

	register("1.1.0")
	id = promote("1.1.0", "10m")
	r.approve(id, "bob", "approve")
	r.waitFor("1.1.0 on prod", func() bool { return channel() == "1.1.0" && r.promotion(id).Stage == modelplane.StageMonitoring })
	r.call("POST", "/v1/promotions/"+id+"/rollback", "alice", map[string]any{"reason": "agents report wrong units"}, 202)
	r.finish(id, modelplane.StatusRolledBack, "mcp_promotion_rolled_back_during_watch")

	// 1.0.0 serves again; its tools change under the same version: quarantined.
	live.SetTools(mcptest.Forecast(), mcptest.PoisonedTool())
	wid := "mcp-revalidate-histories"
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, activities.MCPRevalidateWorkflow, activities.MCPRef{Name: name, Channel: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	var rv activities.RevalidateResult
	if err := run.Get(ctx, &rv); err != nil || !rv.Quarantined {
		t.Fatalf("revalidation = %+v, %v", rv, err)
	}
	r.save("mcp_revalidate_tool_drift_quarantined", wid, run.GetRunID())

	changing := register("1.2.0")
	id = promote("1.2.0", "1s")
	changing.SetTools(mcptest.Forecast())
	r.approve(id, "bob", "approve")
	p := r.finish(id, modelplane.StatusFailed, "mcp_promotion_tools_changed_after_approval_failed")
	if !strings.Contains(p.Reason, "approval no longer holds") {
		t.Fatalf("reason = %s", p.Reason)
	}
}

func recordMLflow(t *testing.T) {
	reg := mlflowtest.NewServer(t)
	mc, err := mlflow.New(mlflow.Options{TrackingURI: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := newRecRig(t, recConfig{bare: true, mlflow: mc})
	ctx := context.Background()
	reg.CreateModel("churn-xgb")
	mrun := reg.CreateRun(mlflowtest.Run{Metrics: map[string]float64{"auc": 0.93}})
	reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: mrun, Source: "s3://models/churn-xgb/1"})
	if err := mc.SetRegisteredModelAlias(ctx, "churn-xgb", "candidate", "1"); err != nil {
		t.Fatal(err)
	}
	id := r.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "target": "prod", "mlflow": map[string]any{"name": "churn-xgb", "alias": "candidate"},
		"strategy": recCanary([]int{50, 100}, "1s")}, 202)["id"].(string)
	r.finish(id, modelplane.StatusSucceeded, "promotion_mlflow_imported_first_deployment_succeeded")

	// Version 2's webhook was lost: the reconciliation finds it and starts its promotion.
	tg, _ := r.kit.Store.GetTarget(ctx, "prod")
	tg.AutoPromote = []modelplane.AutoPromote{{MLflowModel: "churn-xgb", Model: "churn", Strategy: modelplane.RolloutStrategy{Type: "canary", Steps: []int{50, 100},
		Bake: modelplane.Duration(time.Second), MonitorWindow: modelplane.Duration(time.Second)}}}
	if err := r.kit.Store.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: mrun})
	wid := "mlflow-reconcile-histories"
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, workflows.MLflowReconcileWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	var rr activities.ReconcileResult
	if err := run.Get(ctx, &rr); err != nil || len(rr.Start) != 1 || rr.Start[0].Version != "2" {
		t.Fatalf("reconciliation = %+v, %v", rr, err)
	}
	r.save("mlflow_reconcile_started_promotion", wid, run.GetRunID())
	r.finish(rr.Start[0].ID, modelplane.StatusSucceeded, "promotion_mlflow_auto_promoted_canary_succeeded")
	if got, _ := reg.Alias("churn-xgb", "champion"); got != "2" {
		t.Fatalf("champion = %q, want 2", got)
	}
}

// recordPipeline: v2 runs through pipeline churn-release: dev, which the
// policy lets promote itself, then prod after a 2 s soak in dev, promoted
// by alice. Only the run's history is saved (its promotions are recorded
// by the scenarios above).
func recordPipeline(t *testing.T) {
	r := newRecRig(t, recConfig{})
	ctx := context.Background()
	if _, err := r.kit.Store.CreateTarget(ctx, modelplane.Target{Name: "dev", Provider: sim.Name, Environment: "dev", GuardInterval: modelplane.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	direct := map[string]any{"type": "direct", "monitor_window": "1s"}
	r.call("PUT", "/v1/pipelines/churn-release", "admin", map[string]any{"name": "churn-release", "team": "growth", "stages": []map[string]any{
		{"name": "dev", "auto": true, "strategy": direct, "waves": []map[string]any{{"targets": []string{"dev"}}}},
		{"name": "prod", "upstream": []string{"dev"}, "soak": "2s", "strategy": direct, "waves": []map[string]any{{"targets": []string{"prod"}}}},
	}}, 201)
	r.call("POST", "/v1/pipelines/churn-release/runs", "alice", map[string]any{"model": "churn", "version": "v2"}, 202)
	run := "/v1/pipelines/churn-release/runs/churn/v2"
	r.waitFor("prod waiting for a person", func() bool {
		view := r.call("GET", run, "alice", nil, 200)
		stages, _ := view["stages"].([]any)
		for _, s := range stages {
			if m, _ := s.(map[string]any); m["name"] == "prod" && strings.HasPrefix(fmt.Sprint(m["note"]), "waits for a person") {
				return true
			}
		}
		return false
	})
	r.call("POST", run+"/stages/prod/promote", "alice", nil, 202)
	wid := workflows.PipelineRunID("churn-release", "churn", "v2")
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var view workflows.PipelineRunView
	if err := r.c.GetWorkflow(cctx, wid, "").Get(cctx, &view); err != nil {
		t.Fatal(err)
	}
	for _, s := range view.Stages {
		if s.Status != modelplane.PipelineVerified {
			t.Fatalf("stage %s ended %s (%s), want verified", s.Name, s.Status, s.Note)
		}
	}
	r.save("pipeline_dev_auto_prod_soaked_promoted_by_person", wid, "")
}
