package policy

import (
	"context"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// TestDataServedAsTheStoreServesIt: the policy's data served to OPA from
// memory (dataDoc) gives every answer reading it from the store gave, over
// thousands of questions about every action, for the default data and for
// data with change windows, freezes, required metrics and tool rules.
func TestDataServedAsTheStoreServesIt(t *testing.T) {
	ctx := context.Background()
	variants := map[string]func(map[string]any){
		"default": nil,
		"windows": func(d map[string]any) {
			d["change_windows"] = map[string]any{"production": []any{
				map[string]any{"name": "office", "days": []any{"mon", "tue", "wed", "thu", "fri"}, "start_hour": 9, "end_hour": 17},
				map[string]any{"name": "night", "days": []any{"sat"}, "start_hour": 22, "end_hour": 4}},
				"staging": []any{map[string]any{"name": "all", "days": []any{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "start_hour": 0, "end_hour": 24}}}
		},
		"freeze": func(d map[string]any) {
			d["freezes"] = []any{map[string]any{"name": "xmas", "from": "2026-03-01T00:00:00Z", "to": "2026-03-10T00:00:00Z"},
				map[string]any{"name": "stg", "environments": []any{"staging"}, "from": "2026-03-01T00:00:00Z", "to": "2026-03-05T00:00:00Z"}}
			d["required_metrics"] = map[string]any{"production": []any{"auc", "f1"}, "staging": []any{"auc"}}
			d["min_metrics"] = map[string]any{"production": 2, "staging": 1}
			d["allow_unverified_ui_approvals"] = true
		},
		"tools": func(d map[string]any) {
			d["mcp_tools"].(map[string]any)["argument_allow"] = map[string]any{"fraud-detector": map[string]any{"search": map[string]any{"limit": []any{10, 20}}}}
			d["mcp_tools"].(map[string]any)["blocked_agents"] = []any{"evil"}
		},
	}
	actions := []string{"model.read", "target.read", "promotion.read", "audit.export", "freeze.read", "pipeline.read",
		"model.create", "version.create", "target.create", "promotion.start", "promotion.approve", "promotion.reject",
		"promotion.step", "promotion.rollback", "promotion.decide", "promotion.override", "mcp.create", "mcp.promote",
		"mcp.tool.call", "drift.report", "sim.health", "pipeline.write", "freeze.set", "model.explode", ""}
	exp := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	auditorReq := principal("ann", modelplane.AuthOIDC, []string{"fraud"}, modelplane.RoleAuditor, modelplane.RoleRequester)
	expired := alice
	expired.Expires = &exp
	anon := principal("", modelplane.AuthToken, nil)
	callers := []modelplane.Principal{alice, bob, carol, mallory, dana, audrey, mike, uma, system, auditorReq, expired, anon,
		principal("both", modelplane.AuthOIDC, []string{"fraud", "ads"}, modelplane.RoleRequester, modelplane.RoleApprover)}
	envs := []*TargetInfo{nil, {Name: "prod", Environment: "production"}, {Name: "p", Environment: "prod"}, {Name: "s", Environment: "Staging"},
		{Name: "d", Environment: "dev"}, {Name: "x", Environment: "weird"}, {Name: "e", Environment: ""}}
	tiers := []string{"low", "medium", "high", "critical", "", "bogus"}
	teams := []string{"fraud", "", "ads"}
	times := []time.Time{tuesday, time.Date(2026, 3, 7, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC)}
	for name, patch := range variants {
		// The bundle's Rego tests assume the default data.
		dir := customDir(t, patch, map[string]string{"modelplane_test.rego": ""})
		ne, err := New(dir, WithDecisionCache(0))
		if err != nil {
			t.Fatal(err)
		}
		oe, err := New(dir, WithDecisionCache(0))
		if err != nil {
			t.Fatal(err)
		}
		oe.cur.Load().data = func(*rego.EvalContext) {} // read from the store
		r := rand.New(rand.NewSource(1))
		n := 0
		for range 6000 {
			in := Input{Action: actions[r.Intn(len(actions))], Caller: callers[r.Intn(len(callers))], Time: times[r.Intn(len(times))]}
			in.Asset = fraudModel()
			in.Asset.Team = teams[r.Intn(len(teams))]
			in.Asset.RiskTier = tiers[r.Intn(len(tiers))]
			switch r.Intn(4) {
			case 0:
				in.Asset.Metrics = nil
			case 1:
				in.Asset.Metrics = map[string]float64{"auc": 1, "f1": 2}
			case 2:
				in.Asset.Kind = KindMCPServer
				in.Asset.Version = ""
			}
			if r.Intn(5) == 0 {
				in.Asset.Name = ""
			}
			in.Target = envs[r.Intn(len(envs))]
			if r.Intn(4) > 0 {
				p := &modelplane.PolicyPromotion{ID: "p-1", RequestedBy: []string{"alice", "bob", "dana", "modelplane"}[r.Intn(4)], EvidenceHash: []string{"", "sha256:e1"}[r.Intn(2)], Override: r.Intn(3) == 0}
				if r.Intn(2) == 0 {
					p.Approvals = []modelplane.PolicyApproval{{Approver: []string{"bob", "carol"}[r.Intn(2)], Decision: []string{"approve", "reject", ""}[r.Intn(3)]}}
				}
				in.Promotion = p
			}
			switch r.Intn(6) {
			case 0:
				in.Request = map[string]any{"evidence_hash": []string{"sha256:e1", "sha256:e2", ""}[r.Intn(3)]}
			case 1:
				in.Request = map[string]any{"auto": r.Intn(2) == 0}
			case 2:
				tool := map[string]any{"name": []string{"search", "drop"}[r.Intn(2)]}
				switch r.Intn(4) {
				case 0:
					tool["annotations"] = map[string]any{"readOnlyHint": true}
				case 1:
					tool["annotations"] = map[string]any{"destructiveHint": false}
				case 2:
					tool["annotations"] = map[string]any{"destructiveHint": true}
				}
				in.Request = map[string]any{"tool": tool, "agent": []string{"evil", "good", ""}[r.Intn(3)], "listing": r.Intn(4) == 0,
					"arguments": map[string]any{"limit": []int{10, 30}[r.Intn(2)]}}
			}
			for _, tool := range []bool{false, true} {
				var od, nd modelplane.PolicyDecision
				var oerr, nerr error
				if tool {
					od, oerr = oe.DecideTool(ctx, in)
					nd, nerr = ne.DecideTool(ctx, in)
				} else {
					od, oerr = oe.Decide(ctx, in)
					nd, nerr = ne.Decide(ctx, in)
				}
				od.ID, nd.ID, od.PolicyVersion, nd.PolicyVersion = "", "", "", ""
				if (oerr == nil) != (nerr == nil) || !reflect.DeepEqual(od, nd) {
					t.Fatalf("%s: %+v tool=%v\nold %+v %v\nnew %+v %v", name, in, tool, od, oerr, nd, nerr)
				}
				if od.Allow {
					n++
				}
			}
		}
		if n == 0 || n == 12000 {
			t.Fatalf("%s: %d of 12000 questions allowed: the questions do not tell answers apart", name, n)
		}
	}
}

// TestDataDocLeavesTheRootToTheStore: the whole of data, read at once, is
// the store's to give, since the store leaves the system key out of it.
// (The engine's own queries cannot read it: a rule under data reading all
// of data is recursive.)
func TestDataDocLeavesTheRootToTheStore(t *testing.T) {
	doc := dataDoc{ast.MustParseTerm(`{"system": {"secret": "s"}, "roles": {"requester": ["model.create"]}}`).Value}
	if v := doc.Get(ast.MustParseRef("data")); v != nil {
		t.Fatalf("data read whole from dataDoc: %v", v)
	}
	if v := doc.Get(ast.MustParseRef("data.roles.requester")); v == nil || v.String() != `["model.create"]` {
		t.Fatalf("data.roles.requester = %v", v)
	}
	if v := doc.Get(ast.MustParseRef("data.roles[x]")); v != nil {
		t.Fatalf("a ref with a variable: %v, want it left to the store", v)
	}
}
