package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/format"

	"github.com/modelplane/modelplane"
)

// tuesday is inside any sensible change window; tests that care about the
// clock set Input.Time themselves.
var tuesday = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)

var (
	defaultOnce sync.Once
	defaultEng  *Engine
	defaultErr  error
)

// defaultEngine is shared: loading runs the bundle's Rego tests, which
// takes a noticeable fraction of a second under -race.
func defaultEngine(t testing.TB) *Engine {
	t.Helper()
	defaultOnce.Do(func() { defaultEng, defaultErr = New("") })
	if defaultErr != nil {
		t.Fatal(defaultErr)
	}
	return defaultEng
}

func principal(name, method string, teams []string, roles ...string) modelplane.Principal {
	return modelplane.Principal{Name: name, Teams: teams, Roles: roles, Method: method}
}

var (
	alice   = principal("alice", modelplane.AuthOIDC, []string{"fraud"}, modelplane.RoleRequester)
	bob     = principal("bob", modelplane.AuthOIDC, []string{"fraud"}, modelplane.RoleApprover)
	carol   = principal("carol", modelplane.AuthOIDC, []string{"ads"}, modelplane.RoleApprover)
	mallory = principal("mallory", modelplane.AuthToken, []string{"ads"}, modelplane.RoleRequester)
	dana    = principal("dana", modelplane.AuthOIDC, nil, modelplane.RoleAdmin)
	audrey  = principal("audrey", modelplane.AuthOIDC, nil, modelplane.RoleAuditor)
	mike    = principal("mike", modelplane.AuthOIDC, []string{"fraud"}) // a member with no role
	uma     = principal("uma", modelplane.AuthUI, []string{"fraud"}, modelplane.RoleApprover)
	system  = principal("modelplane", modelplane.AuthSystem, nil)
)

func fraudModel() Asset {
	return Asset{Kind: KindModel, Name: "fraud-detector", Owner: "alice", Team: "fraud", RiskTier: "high",
		Version: "v2", Metrics: map[string]float64{"auc": 0.93}, Lineage: map[string]string{"run_id": "r1"}}
}

// question builds a typical input: alice's promotion of the fraud model to
// production, awaiting approval.
func question(action string, caller modelplane.Principal) Input {
	return Input{
		Action:    action,
		Caller:    caller,
		Asset:     fraudModel(),
		Target:    &TargetInfo{Name: "prod", Environment: "production", Provider: "sim"},
		Promotion: &modelplane.PolicyPromotion{ID: "p-1", RequestedBy: "alice", Stage: modelplane.StageAwaitingApproval, EvidenceHash: "sha256:e1"},
		Time:      tuesday,
	}
}

type decisionCase struct {
	name   string
	in     Input
	allow  bool
	reason string // substring of the joined reasons; "" skips the check
}

func check(t *testing.T, e *Engine, cases []decisionCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Decide(context.Background(), c.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != c.allow {
				t.Fatalf("allow = %v, want %v (reasons: %q)", d.Allow, c.allow, d.Reasons)
			}
			if !strings.Contains(d.Reason(), c.reason) {
				t.Errorf("reasons %q do not mention %q", d.Reasons, c.reason)
			}
			if len(d.Reasons) == 0 {
				t.Error("no reasons")
			}
			if d.ID == "" || d.PolicyVersion != e.Version() {
				t.Errorf("id %q, policy version %q, want %q", d.ID, d.PolicyVersion, e.Version())
			}
		})
	}
}

// with returns in after applying changes, to keep table rows short.
func with(in Input, change func(*Input)) Input {
	change(&in)
	return in
}

func asset(kind, name, team string) func(*Input) {
	return func(in *Input) { in.Asset = Asset{Kind: kind, Name: name, Team: team} }
}

func env(environment string) func(*Input) {
	return func(in *Input) { in.Target.Environment = environment }
}

func TestRoles(t *testing.T) {
	e := defaultEngine(t)
	q := question
	check(t, e, []decisionCase{
		// requester
		{"requester creates model in own team", q("model.create", alice), true, "requester in team fraud"},
		{"requester creates version", q("version.create", alice), true, ""},
		{"requester starts promotion", q("promotion.start", alice), true, ""},
		{"requester creates mcp server", with(q("mcp.create", alice), asset(KindMCPServer, "search", "fraud")), true, ""},
		{"requester promotes mcp server", with(q("mcp.promote", alice), asset(KindMCPServer, "search", "fraud")), true, ""},
		{"requester reads own team's model", q("model.read", alice), true, "member of team fraud"},
		{"requester may not approve", with(q("promotion.approve", alice), func(in *Input) { in.Promotion.RequestedBy = "zoe" }), false, "needs role admin or role approver"},
		{"requester may not step", q("promotion.step", alice), false, ""},
		{"requester may not override", q("promotion.override", alice), false, "needs role admin"},
		{"requester may not create targets", with(q("target.create", alice), asset(KindTarget, "prod", "")), false, "target prod has no owning team; only admins may change it"},
		{"requester may not export audit", q("audit.export", alice), false, ""},
		// approver
		{"approver approves", q("promotion.approve", bob), true, "approver in team fraud"},
		{"approver rejects", q("promotion.reject", bob), true, ""},
		{"approver decides", q("promotion.decide", bob), true, ""},
		{"approver rolls back", q("promotion.rollback", bob), true, ""},
		{"approver may not start", q("promotion.start", bob), false, "needs"},
		{"approver may not create models", q("model.create", bob), false, ""},
		// admin
		{"admin creates model in any team", q("model.create", dana), true, "dana is an admin"},
		{"admin creates target", with(q("target.create", dana), asset(KindTarget, "prod", "")), true, ""},
		{"admin overrides", q("promotion.override", dana), true, ""},
		{"admin approves across teams", q("promotion.approve", dana), true, ""},
		{"admin exports audit", q("audit.export", dana), true, ""},
		{"admin steps", q("promotion.step", dana), true, ""},
		// auditor
		{"auditor reads model of any team", q("model.read", audrey), true, "auditors may read everything"},
		{"auditor reads audit", q("audit.read", audrey), true, ""},
		{"auditor exports audit", q("audit.export", audrey), true, ""},
		{"auditor reads provenance", q("provenance.read", audrey), true, ""},
		{"auditor reads scorecard", q("scorecard.read", audrey), true, ""},
		{"auditor reads deployment", q("deployment.read", audrey), true, ""},
		{"auditor reads promotion", q("promotion.read", audrey), true, ""},
		{"auditor reads mcp", with(q("mcp.read", audrey), asset(KindMCPServer, "search", "ads")), true, ""},
		{"auditor reads targets", with(q("target.read", audrey), asset(KindTarget, "prod", "")), true, ""},
		{"auditor may not create", q("model.create", audrey), false, "auditors may read but not change anything"},
		{"auditor may not approve", q("promotion.approve", audrey), false, ""},
		{"auditor may not roll back", q("promotion.rollback", audrey), false, ""},
		{"auditor may not report drift", q("drift.report", audrey), false, ""},
		// team member without a role
		{"member reads", q("model.read", mike), true, "member of team fraud"},
		{"member reads deployment", q("deployment.read", mike), true, ""},
		{"member reports drift", q("drift.report", mike), true, ""},
		{"member rolls back", q("promotion.rollback", mike), true, ""},
		{"member may not start", q("promotion.start", mike), false, "roles: none"},
		{"member may not export audit", q("audit.export", mike), false, ""},
		{"anyone reads team-less targets", with(q("target.read", mallory), asset(KindTarget, "prod", "")), true, "any authenticated caller"},
		// modelplane itself
		{"system steps", q("promotion.step", system), true, "modelplane itself"},
		{"system rolls back", q("promotion.rollback", system), true, ""},
		{"system reports drift", q("drift.report", system), true, ""},
		{"system auto-promotes", q("promotion.start", system), true, ""},
		{"system may not approve", q("promotion.approve", system), false, ""},
		{"system may not create models", q("model.create", system), false, ""},
		// the requester keeps safety actions on their own promotion
		{"requester rolls back own promotion after leaving team", q("promotion.rollback", principal("alice", "oidc", []string{"ads"}, "requester")), true, "alice requested promotion p-1"},
		{"requester cancels own promotion", q("promotion.reject", alice), true, "alice requested promotion p-1"},
		{"requester may not cancel another's promotion", with(q("promotion.reject", alice), func(in *Input) { in.Promotion.RequestedBy = "zoe" }), false, ""},
		// identity
		{"unauthenticated", q("model.read", modelplane.Principal{Roles: []string{"admin"}}), false, "caller is not authenticated"},
		{"expired credentials", with(q("model.read", alice), func(in *Input) {
			exp := tuesday.Add(-time.Minute)
			in.Caller.Expires = &exp
		}), false, "credentials of alice expired"},
		{"unexpired credentials", with(q("model.read", alice), func(in *Input) {
			exp := tuesday.Add(time.Hour)
			in.Caller.Expires = &exp
		}), true, ""},
	})
}

func TestTeamIsolation(t *testing.T) {
	e := defaultEngine(t)
	q := question
	check(t, e, []decisionCase{
		{"requester of another team may not create", q("model.create", mallory), false, "mallory is not a member of team fraud, which owns model fraud-detector"},
		{"requester of another team may not start", q("promotion.start", mallory), false, "team fraud"},
		{"requester of another team may not read", q("model.read", mallory), false, "team fraud"},
		{"requester of another team may not read deployments", q("deployment.read", mallory), false, "team fraud"},
		{"approver of another team may not approve", q("promotion.approve", carol), false, "carol is not a member of team fraud"},
		{"approver of another team may not roll back", q("promotion.rollback", carol), false, "team fraud"},
		{"approver of another team may not report drift", q("drift.report", carol), false, "team fraud"},
		{"team-less model may not be created by requester", with(q("model.create", alice), asset(KindModel, "orphan", "")), false, "model orphan has no owning team"},
		{"team-less model may be created by admin", with(q("model.create", dana), asset(KindModel, "orphan", "")), true, ""},
		{"member of several teams acts in each", q("model.create", principal("zed", "oidc", []string{"ads", "fraud"}, "requester")), true, ""},
	})
	d, err := e.Decide(context.Background(), q("model.create", mallory))
	if err != nil || !d.Explicit {
		t.Errorf("team isolation deny should be explicit: %+v %v", d, err)
	}
}

func TestFourEyes(t *testing.T) {
	e := defaultEngine(t)
	approve := func(caller modelplane.Principal, change func(*Input)) Input {
		in := question("promotion.approve", caller)
		in.Request = map[string]any{"evidence_hash": "sha256:e1"}
		if change != nil {
			change(&in)
		}
		return in
	}
	requesterApprover := principal("alice", "oidc", []string{"fraud"}, "requester", "approver")
	check(t, e, []decisionCase{
		{"other approver approves", approve(bob, nil), true, ""},
		{"requester may not approve own", approve(requesterApprover, nil), false, "four-eyes: alice requested promotion p-1"},
		{"admin may not approve own", approve(dana, func(in *Input) { in.Promotion.RequestedBy = "dana" }), false, "four-eyes"},
		{"requester may still reject own", with(approve(requesterApprover, nil), func(in *Input) { in.Action = "promotion.reject" }), true, ""},
		{"no double vote", approve(bob, func(in *Input) {
			in.Promotion.Approvals = []modelplane.PolicyApproval{{Approver: "bob", Decision: "approve", EvidenceHash: "sha256:e1"}}
		}), false, "bob has already voted (approve) on promotion p-1"},
		{"another's vote does not block", approve(bob, func(in *Input) {
			in.Promotion.Approvals = []modelplane.PolicyApproval{{Approver: "carl", Decision: "approve"}}
		}), true, ""},
		{"evidence changed", approve(bob, func(in *Input) { in.Request["evidence_hash"] = "sha256:old" }), false,
			"evidence changed since bob reviewed it: the vote is for sha256:old but promotion p-1 now has sha256:e1"},
		{"vote without evidence hash", approve(bob, func(in *Input) { in.Request = nil }), true, ""},
		{"promotion without evidence hash", approve(bob, func(in *Input) { in.Promotion.EvidenceHash = "" }), true, ""},
		{"approve without promotion", approve(bob, func(in *Input) { in.Promotion = nil }), false, "needs the promotion"},
		{"unverified UI approval in production", approve(uma, nil), false, "needs a verified identity"},
		{"unverified UI approval with prod alias", approve(uma, env("prod")), false, "needs a verified identity"},
		{"unverified UI approval without target", approve(uma, func(in *Input) { in.Target = nil }), false, "needs a verified identity"},
		{"unverified UI approval in staging", approve(uma, env("staging")), true, ""},
		{"unverified UI decide in production", with(approve(uma, nil), func(in *Input) { in.Action = "promotion.decide" }), false, "verified identity"},
		{"unverified UI reject in production", with(approve(uma, nil), func(in *Input) { in.Action = "promotion.reject" }), true, ""},
	})

	ui := newCustom(t, func(data map[string]any) { data["allow_unverified_ui_approvals"] = true }, nil)
	check(t, ui, []decisionCase{
		{"unverified UI approval allowed by data", approve(uma, nil), true, ""},
	})
}

func TestRequiredApprovals(t *testing.T) {
	e := defaultEngine(t)
	want := map[string]map[string]int{
		"low":      {"dev": 0, "staging": 0, "production": 1},
		"medium":   {"dev": 0, "staging": 1, "production": 1},
		"high":     {"dev": 1, "staging": 1, "production": 2},
		"critical": {"dev": 1, "staging": 2, "production": 2},
	}
	for tier, row := range want {
		for environment, n := range row {
			in := question("promotion.start", alice)
			in.Asset.RiskTier = tier
			in.Target.Environment = environment
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allow || d.RequiredApprovals != n {
				t.Errorf("%s/%s: allow %v, required approvals %d, want %d (%q)", tier, environment, d.Allow, d.RequiredApprovals, n, d.Reasons)
			}
		}
	}
	for _, c := range []struct {
		tier, env string
		want      int
	}{
		{"low", "prod", 1},     // alias
		{"medium", "stage", 1}, // alias
		{"low", "qa", 1},       // unknown environment: strictest of the tier
		{"", "staging", 2},     // unknown tier: critical
		{"bogus", "dev", 1},    // unknown tier: critical
	} {
		in := question("promotion.start", alice)
		in.Asset.RiskTier, in.Target.Environment = c.tier, c.env
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if d.RequiredApprovals != c.want {
			t.Errorf("%q/%q: required approvals %d, want %d", c.tier, c.env, d.RequiredApprovals, c.want)
		}
	}
	// Only promotion.start carries a quorum.
	if d, _ := e.Decide(context.Background(), question("model.create", alice)); d.RequiredApprovals != 0 {
		t.Errorf("model.create carries required approvals %d", d.RequiredApprovals)
	}
}

func TestRequiredMetrics(t *testing.T) {
	noMetrics := func(in *Input) { in.Asset.Metrics = nil }
	start := func(environment string, change func(*Input)) Input {
		in := question("promotion.start", alice)
		in.Target.Environment = environment
		if change != nil {
			change(&in)
		}
		return in
	}
	check(t, defaultEngine(t), []decisionCase{
		{"production needs a metric", start("production", noMetrics), false, "production requires at least 1 offline metric(s) (for example accuracy); version v2 of model fraud-detector reports 0"},
		{"prod alias needs a metric", start("prod", noMetrics), false, "offline metric"},
		{"production with a metric", start("production", nil), true, ""},
		{"dev needs none", start("dev", noMetrics), true, ""},
		{"staging needs none", start("staging", noMetrics), true, ""},
	})
	custom := newCustom(t, func(data map[string]any) {
		data["required_metrics"] = map[string]any{"production": []any{"auc", "latency_p99_ms"}, "staging": []any{"auc"}}
	}, map[string]string{"modelplane_test.rego": ""}) // its fixture lacks the new metric
	check(t, custom, []decisionCase{
		{"missing metric named", start("production", nil), false, `production requires metric "latency_p99_ms", which version v2 of model fraud-detector does not report`},
		{"all metrics present", start("production", func(in *Input) { in.Asset.Metrics["latency_p99_ms"] = 40 }), true, ""},
		{"zero is a value", start("staging", func(in *Input) { in.Asset.Metrics = map[string]float64{"auc": 0} }), true, ""},
		{"staging list", start("staging", noMetrics), false, `staging requires metric "auc"`},
	})
}

func TestChangeWindows(t *testing.T) {
	// The default allows every hour; the mechanism is exercised through data.
	sat := time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC)
	d, err := defaultEngine(t).Decide(context.Background(), with(question("promotion.start", alice), func(in *Input) { in.Time = sat.Add(13 * time.Hour) }))
	if err != nil || !d.Allow {
		t.Fatalf("default policy should allow any time: %+v %v", d, err)
	}

	e := newCustom(t, func(data map[string]any) {
		data["change_windows"] = map[string]any{
			"production": []any{
				map[string]any{"name": "business hours", "days": []any{"mon", "tue", "wed", "thu"}, "start_hour": 8, "end_hour": 17},
				map[string]any{"name": "friday night", "days": []any{"fri"}, "start_hour": 22, "end_hour": 2},
			},
		}
		data["freezes"] = []any{
			map[string]any{"name": "year-end", "from": "2026-12-20T00:00:00Z", "to": "2027-01-04T00:00:00Z"},
		}
	}, nil)
	at := func(action string, caller modelplane.Principal, when time.Time, change func(*Input)) Input {
		in := question(action, caller)
		in.Time = when
		if change != nil {
			change(&in)
		}
		return in
	}
	override := func(in *Input) { in.Promotion.Override = true }
	check(t, e, []decisionCase{
		{"inside window", at("promotion.start", alice, tuesday, nil), true, ""},
		{"after hours", at("promotion.start", alice, tuesday.Add(8*time.Hour), nil), false,
			`promotion.start is outside the production change windows ["business hours" (mon,tue,wed,thu 08:00-17:00 UTC), "friday night" (fri 22:00-02:00 UTC)]; it is tue 18:00 UTC`},
		{"end hour is exclusive", at("promotion.start", alice, tuesday.Add(7*time.Hour), nil), false, "business hours"},
		{"weekend", at("promotion.start", alice, sat, nil), false, "it is sat 10:00 UTC"},
		{"overnight window", at("promotion.start", alice, time.Date(2026, 3, 6, 23, 30, 0, 0, time.UTC), nil), true, ""},
		{"prod alias", at("promotion.start", alice, sat, env("prod")), false, "change windows"},
		{"staging has no window", at("promotion.start", alice, sat, env("staging")), true, ""},
		{"system step outside window", at("promotion.step", system, sat, nil), false, "promotion.step is outside"},
		{"system step with override", at("promotion.step", system, sat, override), true, "allowed by override (exception)"},
		{"admin start with override", at("promotion.start", dana, sat, override), true, "override"},
		{"admin start without override", at("promotion.start", dana, sat, nil), false, "an admin may override"},
		{"requester cannot use override", at("promotion.start", alice, sat, override), false, "outside"},
		{"approvals are not windowed", at("promotion.approve", bob, sat, nil), true, ""},
		{"rollback is never windowed", at("promotion.rollback", system, sat, nil), true, ""},
		{"freeze", at("promotion.start", alice, time.Date(2026, 12, 22, 10, 0, 0, 0, time.UTC), nil), false, `change freeze "year-end" is in effect for production until 2027-01-04T00:00:00Z`},
		{"freeze ends", at("promotion.start", alice, time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC), nil), true, ""},
		{"freeze overridden", at("promotion.step", system, time.Date(2026, 12, 22, 10, 0, 0, 0, time.UTC), override), true, `change freeze "year-end": allowed by override`},
	})
}

func TestUndefinedDecisionDenies(t *testing.T) {
	e := defaultEngine(t)
	d, err := e.Decide(context.Background(), question("model.explode", dana))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Explicit || d.Reason() != "no policy decision for action model.explode" {
		t.Errorf("got %+v", d)
	}

	// A custom policy that answers only reads.
	partial := newCustom(t, nil, map[string]string{"modelplane_test.rego": "", "modelplane.rego": `package modelplane

decision := {"allow": true, "reasons": ["reads are open"], "explicit": true} if endswith(input.action, ".read")
`})
	d, err = partial.Decide(context.Background(), question("model.create", dana))
	if err != nil || d.Allow || d.Explicit || d.Reason() != "no policy decision for action model.create" {
		t.Errorf("got %+v %v", d, err)
	}
	d, err = partial.Decide(context.Background(), question("model.read", dana))
	if err != nil || !d.Allow || !d.Explicit {
		t.Errorf("got %+v %v", d, err)
	}
}

func TestDecisionIDs(t *testing.T) {
	e := defaultEngine(t)
	seen := map[string]bool{}
	prev := ""
	for i := range 200 {
		in := question("model.read", alice)
		in.Time = tuesday.Add(time.Duration(i) * time.Millisecond)
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.ID) != 32 || seen[d.ID] {
			t.Fatalf("bad or repeated id %q", d.ID)
		}
		if d.ID <= prev {
			t.Fatalf("ids not ordered by time: %q after %q", d.ID, prev)
		}
		seen[d.ID], prev = true, d.ID
	}
	// A zero time means now: the decision still gets a time-stamped id.
	e2, err := New("", WithClock(func() time.Time { return tuesday }))
	if err != nil {
		t.Fatal(err)
	}
	in := question("model.read", alice)
	in.Time = time.Time{}
	d, err := e2.Decide(context.Background(), in)
	if err != nil || !d.Allow || d.ID[:12] != newID(tuesday)[:12] {
		t.Errorf("got %+v %v", d, err)
	}
}

// TestInputValue checks the hand-built OPA input is exactly the JSON form.
func TestInputValue(t *testing.T) {
	exp := tuesday.Add(time.Hour)
	inputs := []Input{
		{},
		question("promotion.approve", bob),
		{
			Action: "promotion.start",
			Caller: modelplane.Principal{Name: "x", Teams: []string{}, Roles: []string{}, Method: "token", Expires: &exp},
			Asset:  Asset{Metrics: map[string]float64{"a": 1, "b": 0.125, "c": -3e-9, "d": 1e21}, Lineage: map[string]string{"k": "v"}},
			Promotion: &modelplane.PolicyPromotion{Approvals: []modelplane.PolicyApproval{{Approver: "a", Decision: "approve", EvidenceHash: "h"}},
				Override: true},
			Request: map[string]any{"evidence_hash": "h", "n": 3, "list": []string{"a"}, "nested": map[string]any{"ok": true, "nil": nil}},
			Time:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		},
	}
	for i, in := range inputs {
		got, err := inputValue(in)
		if err != nil {
			t.Fatal(err)
		}
		want := jsonValue(t, in)
		if got.Compare(want) != 0 {
			t.Errorf("input %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

// newCustom writes the default bundle to a temporary directory, patches
// data.json, adds, replaces or ("" content) removes files, and loads it.
func newCustom(t testing.TB, patch func(map[string]any), files map[string]string) *Engine {
	t.Helper()
	dir := customDir(t, patch, files)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func customDir(t testing.TB, patch func(map[string]any), files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteDefault(dir); err != nil {
		t.Fatal(err)
	}
	if patch != nil {
		patchData(t, dir, patch)
	}
	for name, content := range files {
		var err error
		if content == "" {
			err = os.Remove(filepath.Join(dir, name))
		} else {
			err = os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func patchData(t testing.TB, dir string, patch func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	patch(data)
	if b, err = json.MarshalIndent(data, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultBundleFormatted keeps the shipped Rego as `opa fmt` writes it,
// since operators copy it to start their own policy.
func TestDefaultBundleFormatted(t *testing.T) {
	err := fs.WalkDir(DefaultFS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(name, ".rego") {
			return err
		}
		src, err := fs.ReadFile(DefaultFS(), name)
		if err != nil {
			return err
		}
		out, err := format.Source(name, src)
		if err != nil {
			return err
		}
		if string(out) != string(src) {
			t.Errorf("%s is not formatted (opa fmt -w)", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWithDataOverridesBundle(t *testing.T) {
	in := Input{Action: ActionPromotionApprove,
		Caller:    modelplane.Principal{Name: "bob", Teams: []string{"fraud"}, Roles: []string{"approver"}, Method: modelplane.AuthUI},
		Asset:     Asset{Kind: KindModel, Name: "m", Team: "fraud", RiskTier: "high"},
		Target:    &TargetInfo{Name: "prod", Environment: "production"},
		Promotion: &modelplane.PolicyPromotion{ID: "p1", RequestedBy: "alice"}}
	strict, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := strict.Decide(context.Background(), in); d.Allow {
		t.Fatalf("an unverified UI approval in production must be refused by default: %+v", d)
	}
	dev, err := New("", WithData(map[string]any{"allow_unverified_ui_approvals": true}))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := dev.Decide(context.Background(), in); !d.Allow {
		t.Fatalf("with the dev override it must be allowed: %+v", d)
	}
}
