package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/gateway"
)

func TestContentChecks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	alice := h.connect("alice")
	const key = "AKIAIOSFODNN7EXAMPLE"
	// A credential in the arguments is blocked before it leaves.
	_, err := alice.call("add_note", map[string]any{"text": "deploy with " + key})
	if err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("secret in arguments: %v", err)
	}
	// An email in the arguments is flagged and forwarded.
	if res, err := alice.call("echo", map[string]any{"text": "mail ops@example.com"}); err != nil {
		t.Fatal(err)
	} else if txt := res.Content[0].(*sdk.TextContent).Text; strings.Contains(txt, "ops@example.com") {
		// The result side redacts emails by default.
		t.Fatalf("echo result kept the email: %q", txt)
	}
	// A card number in a result is redacted.
	res, err := alice.call("card_on_file", map[string]any{"customer": "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if txt := res.Content[0].(*sdk.TextContent).Text; strings.Contains(txt, "4111") || !strings.Contains(txt, "[REDACTED:card]") {
		t.Fatalf("card result = %q", txt)
	}
	recs := h.calls()
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	if recs[0].Decision != string(modelplane.ToolBlocked) {
		t.Fatalf("secret call record = %+v", recs[0])
	}
	raw, _ := json.Marshal(recs)
	for _, v := range []string{key, "ops@example.com", "4111 1111"} {
		if strings.Contains(string(raw), v) {
			t.Fatalf("the audit holds the raw value %q", v)
		}
	}
	for i, want := range []string{"secret", "email", "card"} {
		if !strings.Contains(fmt.Sprint(recs[i].Details["findings"]), want) {
			t.Fatalf("record %d findings %v lack %s", i, recs[i].Details["findings"], want)
		}
	}
	// Rules are configurable: flag-only lets the card through, and says so.
	h2 := newHarness(t, options{content: []gateway.Rule{{Detector: gateway.DetectCard, Where: gateway.InResult, Action: gateway.ActFlag}}})
	res, err = h2.connect("alice").call("card_on_file", map[string]any{"customer": "c-1"})
	if err != nil || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, "4111") {
		t.Fatalf("flag-only: %v %+v", err, res)
	}
	if f := fmt.Sprint(h2.calls()[0].Details["findings"]); !strings.Contains(f, "flag") {
		t.Fatalf("flag-only findings = %s", f)
	}
}

func TestBudgetsHoldUnderConcurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{budgets: []gateway.Budget{{Per: "user", Tool: "echo", Limit: gateway.Limit{PerMinute: 10}}}})
	// Pin the clock to the start of a minute so the window cannot roll mid-test.
	now := h.clock.now()
	h.clock.advance(now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now))
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		s := h.connect("alice")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				_, err := s.call("echo", map[string]any{"text": fmt.Sprintf("c%d-%d", c, i)})
				switch {
				case err == nil:
					ok.Add(1)
				case strings.Contains(err.Error(), "Too Many Requests"):
					limited.Add(1)
				default:
					t.Errorf("call: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 || limited.Load() != 22 {
		t.Fatalf("allowed %d, limited %d; want 10 and 22", ok.Load(), limited.Load())
	}
	// The answer a client sees: 429, Retry-After and the JSON-RPC error.
	body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	req, _ := http.NewRequest("POST", h.url+"/mcp/"+server, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secrets["alice"])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rpc struct {
		ID    int `json:"id"`
		Error struct {
			Code int            `json:"code"`
			Data map[string]any `json:"data"`
		} `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&rpc)
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || rpc.ID != 9 || rpc.Error.Code != gateway.CodeRateLimited || rpc.Error.Data["retry_after_seconds"] == nil {
		t.Fatalf("limited answer: %d Retry-After=%q %+v", res.StatusCode, res.Header.Get("Retry-After"), rpc)
	}
	// Other tools and other users have their own budgets.
	if _, err := h.connect("alice").call("search_notes", map[string]any{"query": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.connect("bob").call("echo", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	// The next minute resets it.
	h.clock.advance(time.Minute)
	if _, err := h.connect("alice").call("echo", map[string]any{"text": "again"}); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	blocked := 0
	for _, r := range h.calls() {
		if r.Decision == string(modelplane.ToolBlocked) {
			blocked++
		}
	}
	if blocked != 23 {
		t.Fatalf("%d blocked records, want 23", blocked)
	}
}

func TestAuditChainUnderLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		s := h.connect("bob")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := s.call("echo", map[string]any{"text": fmt.Sprintf("%d-%d", c, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	recs := h.calls()
	if len(recs) != 200 {
		t.Fatalf("%d records, want 200", len(recs))
	}
	ctx := context.Background()
	if brk, n, err := h.st.VerifyAudit(ctx); err != nil || brk != nil || n < 200 {
		t.Fatalf("verify: %+v %d %v", brk, n, err)
	}
	// Edit one call record the way someone with database access would.
	target := recs[117]
	if err := h.st.DB().Exec("UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", target.Seq).Error; err != nil {
		t.Fatal(err)
	}
	brk, _, err := h.st.VerifyAudit(ctx)
	if err != nil || brk == nil || brk.Seq != target.Seq {
		t.Fatalf("verify after tampering: %+v %v (tampered seq %d)", brk, err, target.Seq)
	}
}
