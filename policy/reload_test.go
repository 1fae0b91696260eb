package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

func jsonValue(t testing.TB, in Input) ast.Value {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := util.UnmarshalJSON(b, &x); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func decide(t testing.TB, e *Engine, in Input) bool {
	t.Helper()
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d.Allow
}

// noModelCreate takes model.create away from requesters.
func noModelCreate(data map[string]any) {
	roles := data["roles"].(map[string]any)
	roles["requester"] = slices.DeleteFunc(roles["requester"].([]any), func(a any) bool { return a == "model.create" })
}

func TestReload(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e.Version() != defaultEngine(t).Version() {
		t.Errorf("a copy of the default bundle should have its version: %s vs %s", e.Version(), defaultEngine(t).Version())
	}
	create := question("model.create", alice)
	if !decide(t, e, create) {
		t.Fatal("requester should create models by default")
	}
	v1 := e.Version()

	// A good change is picked up.
	patchData(t, dir, noModelCreate)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	v2 := e.Version()
	if v2 == v1 || !strings.HasPrefix(v2, "sha256:") || len(v2) != len("sha256:")+12 {
		t.Errorf("version %q after change from %q", v2, v1)
	}
	if decide(t, e, create) {
		t.Error("change not applied")
	}
	d, _ := e.Decide(context.Background(), create)
	if d.PolicyVersion != v2 {
		t.Errorf("decision names policy %s, want %s", d.PolicyVersion, v2)
	}

	// Broken changes are refused and the last good policy keeps answering.
	// Files map to new contents; "" removes the file.
	rules := "modelplane.rego"
	broken := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"syntax error", map[string]string{"broken.rego": "package modelplane\n\ndeny contains \"x\" if {"}, "broken.rego"},
		{"compile error", map[string]string{"broken.rego": "package modelplane\n\ndeny contains msg if { msg := undefined_thing }"}, "undefined_thing"},
		{"conflicting rule", map[string]string{"broken.rego": "package modelplane\n\ndefault tool_allow := true"}, "tool_allow"},
		{"failing rego test", map[string]string{"extra_test.rego": "package extra_test\n\ntest_empty_input_denied if { not data.modelplane.decision.allow with input as {} }\ntest_fails if { 1 == 2 }"},
			"rego tests failed: data.extra_test.test_fails"},
		{"malformed decision", map[string]string{"modelplane_test.rego": "", rules: "package modelplane\n\ndecision := {\"allow\": \"yes\"}"}, "allow must be a boolean"},
		{"wrong package", map[string]string{"modelplane_test.rego": "", rules: "package governance\n\ndecision := {\"allow\": true}"}, "for no action"},
		{"bad data", map[string]string{"data.json": "{not json"}, "data.json"},
		{"no rego", map[string]string{"modelplane_test.rego": "", rules: ""}, "no .rego files"},
	}
	for _, c := range broken {
		t.Run(c.name, func(t *testing.T) {
			restore := replaceFiles(t, dir, c.files)
			err := e.Reload()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("reload error %v, want one mentioning %q", err, c.want)
			}
			if e.Version() != v2 {
				t.Errorf("version changed to %s after failed reload", e.Version())
			}
			if decide(t, e, create) || !decide(t, e, question("model.read", alice)) {
				t.Error("last good policy no longer answers")
			}
			st := e.Status()
			if !strings.Contains(st.LastError, c.want) || st.LastErrorAt.IsZero() || st.Version != v2 {
				t.Errorf("status %+v", st)
			}
			// Repaired, it loads again and the error clears.
			restore()
			if err := e.Reload(); err != nil {
				t.Fatal(err)
			}
			if st := e.Status(); st.LastError != "" || st.Version != v2 {
				t.Errorf("status after repair %+v", st)
			}
		})
	}
}

// replaceFiles writes files into dir ("" removes one) and returns a function
// that puts the old contents back.
func replaceFiles(t *testing.T, dir string, files map[string]string) (restore func()) {
	t.Helper()
	old := map[string][]byte{}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if b, err := os.ReadFile(path); err == nil {
			old[name] = b
		}
		var err error
		if content == "" {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		for name := range files {
			path := filepath.Join(dir, name)
			var err error
			if b, ok := old[name]; ok {
				err = os.WriteFile(path, b, 0o644)
			} else {
				err = os.Remove(path)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	return restore
}

func TestReloadDuringDecisions(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := e.Decide(ctx, question("promotion.start", alice)); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 3 {
		patchData(t, dir, func(data map[string]any) { data["min_metrics"] = map[string]any{"production": i % 2} })
		if err := e.Reload(); err != nil {
			t.Error(err)
		}
	}
	cancel()
	wg.Wait()
}

func TestWatch(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Watch(ctx, 10*time.Millisecond, func(err error) { errs <- err })
	}()
	defer func() { cancel(); <-done }()

	v1 := e.Version()
	patchData(t, dir, noModelCreate)
	waitFor(t, "watch to load the change", func() bool { return e.Version() != v1 })
	if decide(t, e, question("model.create", alice)) {
		t.Error("change not applied")
	}

	v2 := e.Version()
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package modelplane\n\nx if {"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "broken.rego") {
			t.Errorf("unexpected error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not report the broken file")
	}
	if e.Version() != v2 || !decide(t, e, question("model.read", alice)) {
		t.Error("last good policy lost")
	}

	// Files that are not policy do not count as changes.
	if err := os.Remove(filepath.Join(dir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".data.json.swp"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repaired bundle to clear the error", func() bool { return e.Status().LastError == "" })
	if e.Version() != v2 {
		t.Errorf("version %s, want %s: ignored files changed it", e.Version(), v2)
	}
}

// TestPollReportsOnce: a broken bundle is reported once, not on every poll.
func TestPollReportsOnce(t *testing.T) {
	dir := customDir(t, nil, nil)
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.poll(); err != nil {
		t.Fatalf("unchanged dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package modelplane\n\nx if {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.poll(); err == nil {
		t.Fatal("broken bundle not reported")
	}
	if err := e.poll(); err != nil {
		t.Fatalf("reported twice: %v", err)
	}
	// An explicit Reload always tries again.
	if err := e.Reload(); err == nil {
		t.Fatal("Reload accepted a broken bundle")
	}
	// A directory that disappears is reported once too.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := e.poll(); err == nil {
		t.Fatal("missing dir not reported")
	}
	if err := e.poll(); err != nil {
		t.Fatalf("reported twice: %v", err)
	}
	if !decide(t, e, question("model.read", alice)) {
		t.Error("last good policy lost")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .rego files") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir accepted")
	}
	dir := customDir(t, nil, map[string]string{"broken.rego": "package modelplane\n\nx if {"})
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "broken.rego")) {
		t.Errorf("broken dir: %v", err)
	}
}

func TestWriteDefault(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDefault(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"modelplane.rego", "data.json", "modelplane_test.rego"} {
		want, err := fs.ReadFile(DefaultFS(), name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s not written: %v", name, err)
		}
	}
	if err := WriteDefault(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrote existing files: %v", err)
	}
}

func TestDataLayout(t *testing.T) {
	// data.yaml works in place of data.json, and a data file in a
	// subdirectory lands under that path.
	dir := customDir(t, nil, map[string]string{
		"extra.rego": "package extra\n\nlimit := data.limits.max\n",
	})
	b, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	data["allow_unverified_ui_approvals"] = true
	yml, err := json.Marshal(data) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "data.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.yaml"), yml, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "limits"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "limits", "data.yaml"), []byte("max: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := question("promotion.approve", uma)
	if !decide(t, e, in) {
		t.Error("data.yaml not used")
	}
	b2, err := bundleOf(t, dir).data()
	if err != nil {
		t.Fatal(err)
	}
	if got := b2["limits"].(map[string]any)["max"]; got != json.Number("3") {
		t.Errorf("data.limits.max = %v", got)
	}

	// Two files setting the same key is an error.
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"freezes": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "freezes is set by two data files") {
		t.Errorf("conflict: %v", err)
	}
}

func bundleOf(t *testing.T, dir string) *bundle {
	t.Helper()
	b, err := readBundle(os.DirFS(dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDecision(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{"x", "must be an object"},
		{map[string]any{}, "allow must be a boolean"},
		{map[string]any{"allow": true, "reasons": "no"}, "reasons must be an array"},
		{map[string]any{"allow": true, "reasons": []any{1}}, "reasons[0] must be a string"},
		{map[string]any{"allow": true, "explicit": 1}, "explicit must be a boolean"},
		{map[string]any{"allow": true, "required_approvals": "2"}, "must be a number"},
		{map[string]any{"allow": true, "required_approvals": json.Number("1.5")}, "whole number"},
		{map[string]any{"allow": true, "required_approvals": json.Number("-1")}, "whole number"},
	} {
		if _, err := parseDecision(c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.v, err, c.want)
		}
		// The same decision as the value OPA hands back (keepValue).
		if _, err := parseDecisionValue(astValue(t, c.v)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v as a value: error %v, want %q", c.v, err, c.want)
		}
	}
	good := map[string]any{"allow": true, "reasons": []any{"ok"}, "explicit": true, "required_approvals": json.Number("2")}
	r, err := parseDecision(good)
	if err != nil || !r.Allow || !r.Explicit || r.RequiredApprovals != 2 || r.Reasons[0] != "ok" {
		t.Errorf("got %+v %v", r, err)
	}
	if rv, err := parseDecisionValue(astValue(t, good)); err != nil || !reflect.DeepEqual(rv, r) {
		t.Errorf("as a value: got %+v %v, want %+v", rv, err, r)
	}
	// Reasons as a set take the long way, as before: sorted into an array.
	set := ast.NewObject([2]*ast.Term{ast.StringTerm("allow"), ast.BooleanTerm(false)},
		[2]*ast.Term{ast.StringTerm("reasons"), ast.SetTerm(ast.StringTerm("b"), ast.StringTerm("a"))})
	if rv, err := parseDecisionValue(set); err != nil || rv.Allow || !reflect.DeepEqual(rv.Reasons, []string{"a", "b"}) {
		t.Errorf("reasons as a set: got %+v %v", rv, err)
	}
}

func astValue(t *testing.T, v any) ast.Value {
	t.Helper()
	av, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return av
}
