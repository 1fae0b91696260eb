package api_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/internal/registrytest"
	"github.com/modelplane/modelplane/providers/mcp/mcptest"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

func TestMain(m *testing.M) { os.Exit(registrytest.Main(m)) }

// An MCP server version goes registered → validated → approved → published
// → promoted → deprecated against the real MCP registry, with real MCP
// servers: approvals bind to the tool contract, a rollback re-activates the
// previous version, and a server whose tools drift under the same version is
// quarantined.
func TestMCPServerLifecycle(t *testing.T) {
	reg := registrytest.Start(t)
	ns := reg.Namespace(t)
	h := newHarness(t, false)
	rc := mcpregistry.New(reg.URL, mcpregistry.TokenFunc(func(context.Context) (string, error) { return reg.Token(ns, "publish", "edit"), nil }))
	h.kit.Activities.MCPRegistry = rc
	srv := httptest.NewServer((&api.Server{Store: h.kit.Store, Temporal: h.client, Auth: mustTokens(t), Policy: governance(t), Providers: h.kit.Activities.Providers}).Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.startWorker()
	ctx := context.Background()
	name := ns + "/weather"

	register := func(version, validateURL string) {
		h.must(h.call("POST", "/v1/mcp/servers", "alice", map[string]any{"name": name, "version": version, "description": "Weather forecasts and alerts",
			"remote_url": "https://weather." + ns + ".example.com/mcp", "validate_url": validateURL, "owner": "agents@example.com", "team": "agents",
			"risk_tier": "medium", "data_domains": []string{"public"}}), 201)
	}
	promote := func(version, monitor string) string {
		r := h.must(h.call("POST", "/v1/mcp/promotions", "alice", map[string]any{"name": name, "version": version, "channel": "prod", "monitor_window": monitor}), 202)
		return r.body["id"].(string)
	}
	approve := func(id string) {
		h.waitFor("awaiting approval", 30e9, func() bool {
			p, err := h.kit.Store.GetPromotion(ctx, id)
			return err == nil && p.Stage == modelplane.StageAwaitingApproval
		})
		h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "bob", map[string]any{"decision": "approve", "comment": "tools reviewed"}), 200)
	}
	registryStatus := func(version string) (mcpregistry.Status, string) {
		res, err := rc.Get(ctx, name, version)
		if err != nil {
			t.Fatalf("registry get %s: %v", version, err)
		}
		return res.Status(), res.Meta.Official.StatusMessage
	}
	channel := func() string {
		c, _ := h.kit.Store.GetChannel(ctx, name, "prod")
		return c.Version
	}

	// 1.0.0: validated, approved by bob (medium risk), published, on prod.
	url1, _ := mcptest.Serve(t, mcptest.Weather())
	register("1.0.0", url1)
	id := promote("1.0.0", "200ms")
	approve(id)
	p := h.waitDone(id, modelplane.StatusSucceeded)
	if p.Validation == nil || len(p.Validation.Contract) != 2 || p.Validation.EvidenceHash == "" {
		t.Fatalf("evidence = %+v", p.Validation)
	}
	if st, _ := registryStatus("1.0.0"); st != mcpregistry.StatusActive || channel() != "1.0.0" {
		t.Fatalf("after 1.0.0: registry %s, channel %q", st, channel())
	}
	res, _ := rc.Get(ctx, name, "1.0.0")
	if meta, _ := res.Server.Lifecycle()["modelplane"].(map[string]any); meta["promotion_id"] != id || meta["contract_hash"] != p.Validation.EvidenceHash {
		t.Fatalf("publisher metadata = %v", res.Server.Lifecycle())
	}

	// 1.1.0 replaces it; 1.0.0 is deprecated naming its replacement.
	spec := mcptest.Weather()
	spec.Version = "1.1.0"
	url2, live := mcptest.Serve(t, spec)
	register("1.1.0", url2)
	id = promote("1.1.0", "200ms")
	approve(id)
	h.waitDone(id, modelplane.StatusSucceeded)
	if st, msg := registryStatus("1.0.0"); st != mcpregistry.StatusDeprecated || !strings.Contains(msg, "superseded by 1.1.0") {
		t.Fatalf("1.0.0 in the registry: %s %q", st, msg)
	}

	// 1.2.0 is rolled back during its watch: prod returns to 1.1.0.
	spec.Version = "1.2.0"
	url3, _ := mcptest.Serve(t, spec)
	register("1.2.0", url3)
	id = promote("1.2.0", "10m")
	approve(id)
	h.waitFor("1.2.0 on prod", 30e9, func() bool { return channel() == "1.2.0" })
	h.must(h.call("POST", "/v1/promotions/"+id+"/rollback", "alice", map[string]any{"reason": "agents report wrong units"}), 202)
	h.waitDone(id, modelplane.StatusRolledBack)
	if st, msg := registryStatus("1.2.0"); st != mcpregistry.StatusDeprecated || !strings.Contains(msg, "wrong units") || channel() != "1.1.0" {
		t.Fatalf("after rollback: 1.2.0 %s %q, channel %q", st, msg, channel())
	}
	if st, _ := registryStatus("1.1.0"); st != mcpregistry.StatusActive {
		t.Fatalf("1.1.0 after rollback: %s", st)
	}

	// 1.1.0 changes its tools under the same version: re-validation quarantines it.
	live.SetTools(mcptest.Forecast(), mcptest.PoisonedTool())
	run, err := h.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "revalidate-test", TaskQueue: workflows.TaskQueue}, activities.MCPRevalidateWorkflow, activities.MCPRef{Name: name, Channel: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	var rv activities.RevalidateResult
	if err := run.Get(ctx, &rv); err != nil || !rv.Quarantined {
		t.Fatalf("revalidation = %+v, %v", rv, err)
	}
	if st, msg := registryStatus("1.1.0"); st != mcpregistry.StatusDeprecated || !strings.Contains(msg, "drift") {
		t.Fatalf("quarantined 1.1.0 in the registry: %s %q", st, msg)
	}
	recs, _ := h.kit.Store.ListAudit(ctx, store.AuditFilter{Model: name})
	if !hasAction(recs, "mcp_quarantined") {
		t.Fatal("no mcp_quarantined audit record")
	}
	if r := h.call("POST", "/v1/mcp/promotions", "alice", map[string]any{"name": name, "version": "1.1.0"}); r.status != 400 || r.errField() != "version" {
		t.Fatalf("promoting a quarantined version: %d %s", r.status, r.raw)
	}

	// 1.3.0's tools change after approval: the approval no longer holds.
	spec.Version = "1.3.0"
	url4, changing := mcptest.Serve(t, spec)
	register("1.3.0", url4)
	id = promote("1.3.0", "200ms")
	h.waitFor("awaiting approval", 30e9, func() bool {
		p, err := h.kit.Store.GetPromotion(ctx, id)
		return err == nil && p.Stage == modelplane.StageAwaitingApproval
	})
	changing.SetTools(mcptest.Forecast())
	approve(id)
	p = h.waitDone(id, modelplane.StatusFailed)
	if !strings.Contains(p.Reason, "approval no longer holds") {
		t.Fatalf("reason = %q", p.Reason)
	}

	// A server with instructions hidden in a tool description fails validation.
	url5, _ := mcptest.Serve(t, mcptest.Poisoned())
	register("1.4.0", url5)
	p = h.waitDone(promote("1.4.0", "200ms"), modelplane.StatusFailedValidation)
	if !strings.Contains(strings.Join(p.Validation.Failed(), " "), "add_numbers") {
		t.Fatalf("failed checks = %v", p.Validation.Failed())
	}
}

func hasAction(recs []modelplane.AuditRecord, action string) bool {
	for _, r := range recs {
		if string(r.Action) == action {
			return true
		}
	}
	return false
}

func mustTokens(t *testing.T) *identity.Tokens {
	t.Helper()
	// The MCP servers here belong to team agents.
	teams := []string{"growth", "agents"}
	id, err := api.NewTokens([]api.Token{{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: teams}, {Name: "bob", Role: api.RoleApprover, Secret: tokens["bob"], Teams: teams}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
