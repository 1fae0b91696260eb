package notes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelplane/modelplane/examples/notes"
	"github.com/modelplane/modelplane/providers/mcp"
)

// serve mounts the server below a path of its own, as an application would.
func serve(t *testing.T) (*notes.Server, string) {
	t.Helper()
	s := notes.New()
	mux := http.NewServeMux()
	mux.Handle("/apps/notes/mcp", s.Handler())
	mux.Handle("/apps/notes/drift", s.DriftHandler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return s, hs.URL + "/apps/notes/mcp"
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// connect opens a client session; changed counts tools/list_changed.
func connect(t *testing.T, url string, changed chan<- struct{}) *sdk.ClientSession {
	t.Helper()
	opts := &sdk.ClientOptions{}
	if changed != nil {
		opts.ToolListChangedHandler = func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} }
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "notes-test", Version: "1"}, opts)
	cs, err := c.Connect(ctx(t), &sdk.StreamableClientTransport{Endpoint: url}, &sdk.ClientSessionOptions{ProtocolVersion: mcp.ProtocolVersion})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func validate(t *testing.T, url string) mcp.Report {
	t.Helper()
	r, err := mcp.Validate(ctx(t), url, mcp.Options{})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return r
}

func TestValidatePasses(t *testing.T) {
	_, url := serve(t)
	r := validate(t, url)
	if !r.Passed || len(r.Findings) != 0 {
		t.Fatalf("validation: passed=%v findings %+v", r.Passed, r.Findings)
	}
	var names []string
	for _, tool := range r.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, " ") != "add_note delete_note echo search_notes" || len(r.Fingerprints) != 4 {
		t.Fatalf("tools %v, fingerprints %d", names, len(r.Fingerprints))
	}
	if r.ServerName != notes.Name || r.ServerVersion != notes.Version || r.Protocol != mcp.ProtocolVersion {
		t.Fatalf("handshake: %s %s over %s", r.ServerName, r.ServerVersion, r.Protocol)
	}
}

func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) (string, *sdk.CallToolResult) {
	t.Helper()
	res, err := cs.CallTool(ctx(t), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n"), res
}

func TestTools(t *testing.T) {
	_, url := serve(t)
	cs := connect(t, url, nil)

	hints := map[string]string{}
	for tool, err := range cs.Tools(ctx(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		a := tool.Annotations
		switch {
		case a == nil:
			hints[tool.Name] = "none"
		case a.DestructiveHint != nil:
			hints[tool.Name] = fmt.Sprintf("readOnly=%v destructive=%v", a.ReadOnlyHint, *a.DestructiveHint)
		default:
			hints[tool.Name] = fmt.Sprintf("readOnly=%v", a.ReadOnlyHint)
		}
	}
	want := map[string]string{"search_notes": "readOnly=true", "echo": "readOnly=true",
		"add_note": "readOnly=false destructive=false", "delete_note": "none"}
	if fmt.Sprint(hints) != fmt.Sprint(want) {
		t.Fatalf("annotations %v, want %v", hints, want)
	}

	text, res := call(t, cs, "search_notes", map[string]any{"query": "BILLING"})
	if res.IsError || text != "n1: Ship v2 of the billing service on Friday" {
		t.Fatalf("search: %q (error %v)", text, res.IsError)
	}
	var found struct{ Notes []notes.Note }
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &found); err != nil || len(found.Notes) != 1 || found.Notes[0].ID != "n1" {
		t.Fatalf("structured search result: %s", raw)
	}

	text, res = call(t, cs, "add_note", map[string]any{"text": "Renew the TLS certificate"})
	if res.IsError || text != "added n3" {
		t.Fatalf("add: %q (error %v)", text, res.IsError)
	}
	if text, _ := call(t, cs, "search_notes", map[string]any{"query": ""}); strings.Count(text, "\n") != 2 || !strings.Contains(text, "n3: Renew the TLS certificate") {
		t.Fatalf("all notes after the add: %q", text)
	}
	if text, res := call(t, cs, "add_note", map[string]any{"text": "  "}); !res.IsError || !strings.Contains(text, "empty") {
		t.Fatalf("add of blank text: %q (error %v)", text, res.IsError)
	}

	if text, res := call(t, cs, "delete_note", map[string]any{"id": "n3"}); res.IsError || text != "deleted n3" {
		t.Fatalf("delete: %q (error %v)", text, res.IsError)
	}
	if text, res := call(t, cs, "delete_note", map[string]any{"id": "n3"}); !res.IsError || !strings.Contains(text, `no note "n3"`) {
		t.Fatalf("second delete: %q (error %v)", text, res.IsError)
	}
	if text, _ := call(t, cs, "search_notes", map[string]any{"query": "tls"}); text != `no notes match "tls"` {
		t.Fatalf("search after the delete: %q", text)
	}

	if text, res := call(t, cs, "echo", map[string]any{"text": "hello, gateway"}); res.IsError || text != "hello, gateway" {
		t.Fatalf("echo: %q (error %v)", text, res.IsError)
	}
	// The SDK holds calls to the schema: a required property is required.
	if _, res := call(t, cs, "echo", map[string]any{}); !res.IsError {
		t.Fatal("echo without text succeeded")
	}
}

func waitChanged(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notifications/tools/list_changed after %s", what)
	}
}

func TestDrift(t *testing.T) {
	s, url := serve(t)
	changed := make(chan struct{}, 10)
	cs := connect(t, url, changed)
	before := validate(t, url)

	s.Drift(true)
	waitChanged(t, changed, "Drift(true)")
	after := validate(t, url)
	for name, fp := range before.Fingerprints {
		if drifted := after.Fingerprints[name] != fp; drifted != (name == "search_notes") {
			t.Errorf("%s: fingerprint changed=%v", name, drifted)
		}
	}
	if after.ContractHash == before.ContractHash || after.ServerVersion != before.ServerVersion {
		t.Fatalf("contract %s → %s, version %s → %s: want a new contract under the same version",
			before.ContractHash, after.ContractHash, before.ServerVersion, after.ServerVersion)
	}
	// Content checks alone pass it: pinning the contract is what catches it.
	if !after.Passed {
		t.Fatalf("drifted server failed validation: %+v", after.Findings)
	}
	// The connected session sees the new description too.
	for tool, err := range cs.Tools(ctx(t), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if tool.Name == "search_notes" {
			if !strings.Contains(tool.Description, "https://") {
				t.Fatalf("drifted description: %q", tool.Description)
			}
			fp, err := mcp.ToolFingerprint(tool)
			if err != nil || fp != after.Fingerprints["search_notes"] {
				t.Fatalf("ToolFingerprint %s (%v), Validate %s", fp, err, after.Fingerprints["search_notes"])
			}
		}
	}

	s.Drift(true) // already drifting: no change, no notification
	s.Drift(false)
	waitChanged(t, changed, "Drift(false)")
	if restored := validate(t, url); restored.ContractHash != before.ContractHash {
		t.Fatalf("contract after Drift(false) is %s, want %s", restored.ContractHash, before.ContractHash)
	}
	select {
	case <-changed:
		t.Fatal("more list_changed notifications than changes")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestDriftHandler(t *testing.T) {
	s, url := serve(t)
	h := s.DriftHandler()
	do := func(method string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/drift", nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	steps := []struct {
		method string
		code   int
		body   string
	}{
		{http.MethodPost, 200, `{"drift":true}`},
		{http.MethodPost, 200, `{"drift":true}`}, // on stays on
		{http.MethodDelete, 200, `{"drift":false}`},
		{http.MethodDelete, 200, `{"drift":false}`},
		{http.MethodPost, 200, `{"drift":true}`},
	}
	for _, st := range steps {
		if code, body := do(st.method); code != st.code || body != st.body {
			t.Fatalf("%s: %d %s, want %d %s", st.method, code, body, st.code, st.body)
		}
	}
	if r := validate(t, url); r.Fingerprints["search_notes"] == validate(t, serveFresh(t)).Fingerprints["search_notes"] {
		t.Fatal("POST did not change search_notes")
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/drift", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST, DELETE" {
			t.Fatalf("%s: %d Allow=%q, want 405", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if code, body := do(http.MethodDelete); code != 200 || body != `{"drift":false}` {
		t.Fatalf("DELETE after the 405s: %d %s", code, body)
	}
}

func serveFresh(t *testing.T) string {
	_, url := serve(t)
	return url
}

// TestConcurrent runs calls from several sessions while the tool drifts
// back and forth (run with -race).
func TestConcurrent(t *testing.T) {
	s, url := serve(t)
	const sessions, adds = 4, 10
	var wg sync.WaitGroup
	for i := range sessions {
		cs := connect(t, url, nil)
		wg.Go(func() {
			for j := range adds {
				if _, err := cs.CallTool(ctx(t), &sdk.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": fmt.Sprintf("s%d note %d", i, j)}}); err != nil {
					t.Errorf("add: %v", err)
				}
				if _, err := cs.CallTool(ctx(t), &sdk.CallToolParams{Name: "search_notes", Arguments: map[string]any{"query": "note"}}); err != nil {
					t.Errorf("search: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			s.Drift(i%2 == 0)
		}
	})
	wg.Wait()
	text, _ := call(t, connect(t, url, nil), "search_notes", map[string]any{"query": ""})
	if n := strings.Count(text, "\n") + 1; n != 2+sessions*adds {
		t.Fatalf("%d notes after the run, want %d", n, 2+sessions*adds)
	}
}
