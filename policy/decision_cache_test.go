package policy

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/modelplane/modelplane"
)

// ask asks in three times (seen, traced, then answered from the cache if
// it may be) and checks the three answers agree; it returns the last.
func ask(t *testing.T, e *Engine, in Input) modelplane.PolicyDecision {
	t.Helper()
	var last modelplane.PolicyDecision
	for i := range 3 {
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (d.Allow != last.Allow || !slices.Equal(d.Reasons, last.Reasons) || d.Explicit != last.Explicit ||
			d.RequiredApprovals != last.RequiredApprovals || d.PolicyVersion != last.PolicyVersion) {
			t.Fatalf("answer %d differs: %+v, then %+v", i+1, last, d)
		}
		if d.ID == last.ID {
			t.Fatalf("two answers share the id %s", d.ID)
		}
		last = d
	}
	return last
}

func hits(e *Engine) uint64 { return e.cur.Load().cache.hits.Load() }

// cachedAnswer asks in three times and reports whether the third answer
// came from the cache.
func cachedAnswer(t *testing.T, e *Engine, in Input) (modelplane.PolicyDecision, bool) {
	t.Helper()
	before := hits(e)
	d := ask(t, e, in)
	return d, hits(e) > before
}

func TestCacheAnswersRepeatedQuestions(t *testing.T) {
	e, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range benchInputs() {
		before := hits(e)
		d := ask(t, e, in)
		if hits(e) != before+1 {
			t.Errorf("%s by %s: %d answers from the cache, want 1 (the third)", in.Action, in.Caller.Name, hits(e)-before)
		}
		// The evaluated answer, from an engine without a cache, is the same.
		want, err := uncachedEngine(t).Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow != want.Allow || !slices.Equal(d.Reasons, want.Reasons) || d.Explicit != want.Explicit ||
			d.RequiredApprovals != want.RequiredApprovals {
			t.Errorf("%s by %s: cached %+v, evaluated %+v", in.Action, in.Caller.Name, d, want)
		}
	}
	// The caller owns the reasons it gets.
	in := question("model.read", alice)
	ask(t, e, in)
	d, _ := e.Decide(context.Background(), in)
	d.Reasons[0] = "changed by the caller"
	if d2, _ := e.Decide(context.Background(), in); d2.Reasons[0] == "changed by the caller" {
		t.Error("a cached decision shares its reasons with callers")
	}
	// The tool query is another question.
	tool := Input{Caller: alice, Asset: Asset{Kind: KindMCPServer, Name: "notes", Team: "fraud"},
		Request: map[string]any{"tool": map[string]any{"name": "search", "annotations": map[string]any{"readOnlyHint": true}}}}
	full := with(tool, func(in *Input) { in.Action = ActionMCPToolCall })
	if _, ok := cachedAnswer(t, e, full); !ok {
		t.Error("tool call by Decide not cached")
	}
	before := hits(e)
	if _, err := e.DecideTool(context.Background(), tool); err != nil {
		t.Fatal(err)
	}
	if hits(e) != before {
		t.Error("DecideTool answered from Decide's entry")
	}
}

func TestCacheRoleChange(t *testing.T) {
	e, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	create := question("model.create", alice)
	if d, ok := cachedAnswer(t, e, create); !d.Allow || !ok {
		t.Fatalf("alice as requester: allow %v, cached %v", d.Allow, ok)
	}
	changes := []struct {
		name   string
		change func(*modelplane.Principal)
	}{
		{"requester role taken away", func(p *modelplane.Principal) { p.Roles = []string{} }},
		{"role list missing", func(p *modelplane.Principal) { p.Roles = nil }},
		{"approver instead", func(p *modelplane.Principal) { p.Roles = []string{modelplane.RoleApprover} }},
		{"moved to another team", func(p *modelplane.Principal) { p.Teams = []string{"ads"} }},
		{"auditor instead", func(p *modelplane.Principal) { p.Roles = []string{modelplane.RoleAuditor} }},
		{"unverified identity", func(p *modelplane.Principal) { p.Name = "" }},
	}
	for _, c := range changes {
		in := create
		in.Caller.Teams, in.Caller.Roles = slices.Clone(in.Caller.Teams), slices.Clone(in.Caller.Roles)
		c.change(&in.Caller)
		if d := ask(t, e, in); d.Allow {
			t.Errorf("%s: still allowed: %q", c.name, d.Reasons)
		}
	}
	// And back: the original question is still answered, from the cache.
	if d, ok := cachedAnswer(t, e, create); !d.Allow || !ok {
		t.Fatalf("alice as requester again: allow %v, cached %v", d.Allow, ok)
	}
	// Gaining a role is seen as promptly as losing one.
	mikeCreates := question("model.create", mike)
	if d := ask(t, e, mikeCreates); d.Allow {
		t.Fatal("mike has no role")
	}
	mikeCreates.Caller.Roles = []string{modelplane.RoleRequester}
	if d := ask(t, e, mikeCreates); !d.Allow {
		t.Errorf("mike as requester denied: %q", d.Reasons)
	}
}

func TestCacheReload(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	create := question("model.create", alice)
	d1, ok := cachedAnswer(t, e, create)
	if !d1.Allow || !ok {
		t.Fatalf("before reload: allow %v, cached %v", d1.Allow, ok)
	}
	patchData(t, dir, noModelCreate)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	d2, err := e.Decide(context.Background(), create)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Allow || d2.PolicyVersion == d1.PolicyVersion || d2.PolicyVersion != e.Version() {
		t.Fatalf("after reload: %+v (policy before %s)", d2, d1.PolicyVersion)
	}
	if d3, _ := cachedAnswer(t, e, create); d3.Allow {
		t.Fatal("the old answer came back")
	}
	// A rule change (not only data) is seen too.
	replaceFiles(t, dir, map[string]string{"extra.rego": "package modelplane\n\ndeny contains \"models are read-only today\" if input.action == \"model.read\"\n"})
	read := question("model.read", alice)
	if d, ok := cachedAnswer(t, e, read); !d.Allow || !ok {
		t.Fatalf("read before the rule is loaded: allow %v, cached %v", d.Allow, ok)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(context.Background(), read); d.Allow || !strings.Contains(d.Reason(), "read-only today") {
		t.Fatalf("after the new rule: %+v", d)
	}
}

// TestCacheReloadDuringDecisions flips the answer with every reload while
// two goroutines keep asking: an answer from a call that began after
// Reload returned must come from the new policy, and every answer must
// agree with the policy version it names.
func TestCacheReloadDuringDecisions(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	create := question("model.create", alice)
	type policy struct {
		n     int  // reloads before it
		allow bool // its answer
	}
	var mu sync.Mutex
	policies := map[string]policy{e.Version(): {0, true}}
	var live atomic.Int64 // reloads returned

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var asked atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := live.Load()
				d, err := e.Decide(ctx, create)
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				asked.Add(1)
				mu.Lock()
				p, known := policies[d.PolicyVersion]
				mu.Unlock()
				if !known || d.Allow != p.allow {
					t.Errorf("answer %v names policy %s (known %v, whose answer is %v)", d.Allow, d.PolicyVersion, known, p.allow)
				}
				if int64(p.n) < n {
					t.Errorf("a call begun after reload %d returned was answered by the policy of reload %d", n, p.n)
				}
			}
		})
	}
	fromCache := uint64(0)
	for i := 1; i <= 6; i++ {
		// Each reload flips the answer and is a new version.
		patchData(t, dir, func(data map[string]any) {
			data["reload"] = i
			roles := data["roles"].(map[string]any)
			requester := slices.DeleteFunc(roles["requester"].([]any), func(a any) bool { return a == "model.create" })
			if i%2 == 0 {
				requester = append(requester, "model.create")
			}
			roles["requester"] = requester
		})
		b, err := e.read()
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		policies[b.version()] = policy{i, i%2 == 0}
		mu.Unlock()
		fromCache += hits(e)
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		live.Store(int64(i))
		time.Sleep(50 * time.Millisecond) // let the askers reach the cache
	}
	fromCache += hits(e)
	cancel()
	wg.Wait()
	if fromCache == 0 {
		t.Errorf("none of %d answers came from the cache: the test proves nothing", asked.Load())
	}
	t.Logf("%d answers, %d from the cache", asked.Load(), fromCache)
}

func TestCacheClock(t *testing.T) {
	t.Run("expiring credentials", func(t *testing.T) {
		// The engine tells the policy whether the credentials expired
		// (caller_expired), so the default bundle reads no clock for them:
		// an answer before expiry is kept, and expiry asks a new question.
		e, err := New("")
		if err != nil {
			t.Fatal(err)
		}
		exp := tuesday.Add(time.Hour)
		read := question("model.read", alice)
		read.Caller.Expires = &exp
		if d, ok := cachedAnswer(t, e, read); !d.Allow || !ok {
			t.Fatalf("before expiry: allow %v, cached %v", d.Allow, ok)
		}
		for _, at := range []time.Time{exp, exp.Add(time.Second), exp.Add(24 * time.Hour)} {
			read.Time = at
			d, err := e.Decide(context.Background(), read)
			if err != nil {
				t.Fatal(err)
			}
			want := "credentials of alice expired at " + exp.Format(time.RFC3339Nano)
			if d.Allow || !slices.Contains(d.Reasons, want) {
				t.Fatalf("at %s: allow %v, reasons %q; want a deny saying %q", at, d.Allow, d.Reasons, want)
			}
		}
		// A value the caller sets is replaced: unexpired credentials are
		// not refused for it, and expired ones are not let through.
		read.Time, read.CallerExpired = exp.Add(-time.Minute), true
		if d, _ := e.Decide(context.Background(), read); !d.Allow {
			t.Fatalf("caller_expired given, credentials valid: refused %q", d.Reasons)
		}
		read.Time, read.CallerExpired = exp.Add(time.Minute), false
		if d, _ := e.Decide(context.Background(), read); d.Allow {
			t.Fatal("caller_expired false given, credentials expired: allowed")
		}
	})
	t.Run("change windows", func(t *testing.T) {
		e := newCustom(t, func(data map[string]any) {
			data["change_windows"] = map[string]any{"production": []any{
				map[string]any{"name": "business hours", "days": []any{"mon", "tue", "wed", "thu", "fri"}, "start_hour": 8, "end_hour": 17},
			}}
		}, nil)
		start := question("promotion.start", alice)
		if d, ok := cachedAnswer(t, e, start); !d.Allow || ok {
			t.Fatalf("inside the window: allow %v, cached %v", d.Allow, ok)
		}
		start.Time = tuesday.Add(10 * time.Hour)
		if d, _ := e.Decide(context.Background(), start); d.Allow {
			t.Fatal("outside the window answered from the cache")
		}
		// The default window is open at all hours and needs no clock.
		if _, ok := cachedAnswer(t, defaultEngine(t), question("promotion.start", alice)); !ok {
			t.Error("the always-open default window made promotion.start uncacheable")
		}
	})

	// Custom rules that read the time in other ways: each answers model.read
	// differently at ten (tuesday) and at one.
	rules := []struct{ name, rule string }{
		{"input.time", `deny contains "not before noon" if input.time < "2026-03-03T12:00:00Z"`},
		{"time.now_ns", `deny contains "not before noon" if time.now_ns() < time.parse_rfc3339_ns("2026-03-03T12:00:00Z")`},
		{"object.get", `deny contains "not before noon" if object.get(input, "time", "") < "2026-03-03T12:00:00Z"`},
		{"object.get path", `deny contains "not before noon" if object.get(input, ["time"], "") < "2026-03-03T12:00:00Z"`},
		{"computed key", `deny contains "not before noon" if {
	some k, v in input
	k == "time"
	v < "2026-03-03T12:00:00Z"
}`},
		{"whole input", `deny contains "not before noon" if {
	x := input
	x.time < "2026-03-03T12:00:00Z"
}`},
		{"helper rule", `deny contains "not before noon" if before_noon

before_noon if input.time < "2026-03-03T12:00:00Z"`},
		{"function", `deny contains "not before noon" if before(input.action)

before(_) if input.time < "2026-03-03T12:00:00Z"`},
		{"else", `deny contains msg if msg := noon_note

noon_note := "fine" if input.action == "nothing" else := "not before noon" if input.time < "2026-03-03T12:00:00Z"`},
		// The rule index picks rules by the time: the rule that answers at
		// one is not even entered at ten, unless indexing is off.
		{"indexed", `deny contains "not at one" if input.time == "2026-03-03T13:00:00Z"`},
		{"indexed, matching first", `deny contains "not at ten" if input.time == "2026-03-03T10:00:00Z"`},
	}
	for _, c := range rules {
		t.Run(c.name, func(t *testing.T) {
			e := newCustom(t, nil, map[string]string{"clock.rego": "package modelplane\n\n" + c.rule + "\n"})
			read := question("model.read", alice)
			atTen, ok := cachedAnswer(t, e, read)
			if ok {
				t.Errorf("at ten (allow %v): answered from the cache", atTen.Allow)
			}
			read.Time = tuesday.Add(3 * time.Hour)
			if d, _ := e.Decide(context.Background(), read); d.Allow == atTen.Allow {
				t.Errorf("at one, the answer of ten: allow %v, %q", d.Allow, d.Reasons)
			}
		})
	}
}

// TestRuleReadsClock checks the static half: which compiled rules may read
// the clock.
func TestRuleReadsClock(t *testing.T) {
	compile := func(t *testing.T, src string) *ast.Compiler {
		t.Helper()
		m, err := ast.ParseModuleWithOpts("x.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		c := ast.NewCompiler()
		if c.Compile(map[string]*ast.Module{"x": m}); c.Failed() {
			t.Fatal(c.Errors)
		}
		return c
	}
	clockRules := func(c *ast.Compiler) []string {
		var names []string
		for _, m := range c.Modules {
			for _, r := range m.Rules {
				if ruleReadsClock(r) {
					names = append(names, r.Head.Ref().String())
				}
			}
		}
		slices.Sort(names)
		return slices.Compact(names)
	}
	// The default bundle: only now_ns reads the time (its tests mock the
	// input whole, and are never part of a decision).
	b, err := readBundle(DefaultFS(), "built-in")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := b.parse()
	if err != nil {
		t.Fatal(err)
	}
	c := ast.NewCompiler()
	if c.Compile(mods); c.Failed() {
		t.Fatal(c.Errors)
	}
	var decisionRules []string
	for _, n := range clockRules(c) {
		if !strings.HasPrefix(n, "test_") {
			decisionRules = append(decisionRules, n)
		}
	}
	if !slices.Equal(decisionRules, []string{"now_ns"}) {
		t.Errorf("default bundle: rules reading the clock %q, want [now_ns]", decisionRules)
	}
	for _, c := range []struct {
		rule  string
		clock bool
	}{
		{`p if input.caller.name == "x"`, false},
		{`p := object.get(input, ["caller", "name"], "")`, false},
		{`p := object.get(input, "caller", {})`, false},
		{`p := input.time`, true},
		{`p := object.get(input, ["time"], "")`, true},
		{`p := object.get(input, "time", "")`, true},
		{`p := object.get(input, k, "") if k := "time"`, true},
		{`p := count(input)`, true},
		{`p := input[k] if k := "time"`, true},
		{`p := x if x := input`, true},
		{`p := time.now_ns()`, true},
		{`p := rand.intn("x", 10)`, true},
		{`p := uuid.rfc4122("x")`, true},
		{`p := x if x := f(1) with f as uuid.rfc4122

f(_) := 1`, true},
		{`p := x if x := input.action with input.time as "2026-01-01T00:00:00Z"`, true}, // errs on the side of yes
		{`p := [x | some x in input.caller.roles]`, false},
		{`p := [x | some x in object.get(input, ["caller", "roles"], [])]`, false},
		{`p := time.parse_rfc3339_ns(input.caller.expires)`, false},
	} {
		got := clockRules(compile(t, "package x\n\n"+c.rule+"\n"))
		if slices.Contains(got, "p") != c.clock {
			t.Errorf("%s: reads the clock %v, want %v", c.rule, !c.clock, c.clock)
		}
	}
}

// richInput sets every field of an Input.
func richInput() Input {
	exp := tuesday.Add(time.Hour)
	return Input{
		Action: "promotion.approve",
		Caller: modelplane.Principal{Name: "bob", Teams: []string{"fraud"}, Roles: []string{"approver"}, Method: "oidc",
			Expires: &exp, Client: "cli", Act: []string{"agent"}},
		Asset: Asset{Kind: "model", Name: "m", Owner: "o", Team: "fraud", RiskTier: "high", DataDomain: "d", Version: "v1",
			Metrics: map[string]float64{"auc": 0.9}, Lineage: map[string]string{"run_id": "r1"}},
		Target: &TargetInfo{Name: "prod", Environment: "production", Provider: "sim"},
		Promotion: &modelplane.PolicyPromotion{ID: "p", RequestedBy: "alice", Stage: "s", EvidenceHash: "h",
			Approvals: []modelplane.PolicyApproval{{Approver: "carl", Decision: "approve", EvidenceHash: "h"}}, Override: false},
		Request: map[string]any{"evidence_hash": "h", "n": 1.5, "list": []any{"a", true, nil}, "nested": map[string]any{"k": "v"}},
		Time:    tuesday,
	}
}

func inputKey(t *testing.T, in Input) string {
	t.Helper()
	k, ok := appendKey(nil, in)
	if !ok {
		t.Fatalf("no key for %+v", in)
	}
	return string(k)
}

// TestCacheKeyCoversInput changes every field of the Input, one at a time,
// and checks the cache key changes with it, except for the time. A field
// added to Input (or Principal, Asset, ...) fails here until the key
// covers it.
func TestCacheKeyCoversInput(t *testing.T) {
	base := inputKey(t, richInput())
	later := richInput()
	later.Time = later.Time.Add(time.Hour)
	if inputKey(t, later) != base {
		t.Error("the time changes the key")
	}
	var paths [][]int
	var names []string
	var collect func(tp reflect.Type, path []int, name string)
	collect = func(tp reflect.Type, path []int, name string) {
		for i := range tp.NumField() {
			f := tp.Field(i)
			p := append(slices.Clone(path), i)
			n := name + "." + f.Name
			ft := f.Type
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[time.Time]() {
				paths, names = append(paths, p), append(names, n) // nil vs set
				collect(ft.Elem(), p, n)
				continue
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
				collect(ft, p, n)
				continue
			}
			paths, names = append(paths, p), append(names, n)
		}
	}
	collect(reflect.TypeFor[Input](), nil, "Input")
	for i, path := range paths {
		if names[i] == "Input.Time" {
			continue
		}
		for variant := range 2 {
			in := richInput()
			v := reflect.ValueOf(&in).Elem()
			for j, idx := range path {
				v = v.Field(idx)
				if j < len(path)-1 && v.Kind() == reflect.Pointer {
					v = v.Elem()
				}
			}
			if !mutate(t, v, variant) {
				continue
			}
			if inputKey(t, in) == base {
				t.Errorf("%s (change %d) does not change the cache key", names[i], variant)
			}
		}
	}
	// Lists: nil and empty differ for the policy (null and []).
	a, b := richInput(), richInput()
	a.Caller.Teams, b.Caller.Teams = nil, []string{}
	if inputKey(t, a) == inputKey(t, b) {
		t.Error("nil and empty teams share a key")
	}
	// Strings cannot run into each other.
	a, b = richInput(), richInput()
	a.Caller.Name, a.Caller.Method = "bo", "boidc"
	b.Caller.Name, b.Caller.Method = "bob", "oidc"
	if inputKey(t, a) == inputKey(t, b) {
		t.Error("fields run into each other")
	}
	// Map order does not matter.
	a, b = richInput(), richInput()
	a.Asset.Metrics = map[string]float64{"a": 1, "b": 2, "c": 3, "d": 4}
	b.Asset.Metrics = map[string]float64{"d": 4, "c": 3, "b": 2, "a": 1}
	if inputKey(t, a) != inputKey(t, b) {
		t.Error("map order changes the key")
	}
	// A request value the key cannot encode is not cached.
	a = richInput()
	a.Request = map[string]any{"x": struct{}{}}
	if _, ok := appendKey(nil, a); ok {
		t.Error("an unknown request type was encoded")
	}
}

// mutate changes v in the variant-th way; false if there is none.
func mutate(t *testing.T, v reflect.Value, variant int) bool {
	switch v.Kind() {
	case reflect.String:
		if variant > 0 {
			v.SetString("")
		} else {
			v.SetString(v.String() + "x")
		}
	case reflect.Bool:
		if variant > 0 {
			return false
		}
		v.SetBool(!v.Bool())
	case reflect.Slice:
		if variant > 0 {
			v.Set(reflect.Zero(v.Type()))
			return true
		}
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Map:
		if variant > 0 {
			v.Set(reflect.Zero(v.Type()))
			return true
		}
		m := reflect.MakeMap(v.Type())
		for _, k := range v.MapKeys() {
			m.SetMapIndex(k, v.MapIndex(k))
		}
		m.SetMapIndex(reflect.ValueOf("extra"), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	case reflect.Pointer:
		if v.Type().Elem() == reflect.TypeFor[time.Time]() {
			if variant > 0 {
				v.Set(reflect.Zero(v.Type()))
			} else {
				later := v.Elem().Interface().(time.Time).Add(time.Second)
				v.Set(reflect.ValueOf(&later))
			}
			return true
		}
		if variant > 0 {
			return false
		}
		v.Set(reflect.Zero(v.Type())) // a struct pointer: nil
	default:
		t.Fatalf("a field of kind %s: teach appendKey and this test about it", v.Kind())
	}
	return true
}

func BenchmarkCacheKey(b *testing.B) {
	in := richInput()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendKey(buf[:0], in)
	}
	_ = fmt.Sprint(len(buf))
}

// TestSharedInputTermsConcurrently evaluates the same questions from two
// goroutines at once without the cache: the input's string terms are
// shared between decisions, which -race would flag if OPA wrote to them.
func TestSharedInputTermsConcurrently(t *testing.T) {
	e := uncachedEngine(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range 40 {
				in := benchInputs()[i%5]
				if _, err := e.Decide(context.Background(), in); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
