//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
)

// TestMCPGateway is the README's MCP quick start with a client no one here
// wrote: alice registers the example notes server in `modelplane dev`, bob
// approves it, and the official MCP TypeScript SDK lists and calls its
// tools through the gateway with alice's token; when the upstream changes
// search_notes under the same version, the client is told the list
// changed, the tool is gone and calling it is refused. Every call is in
// the audit.
func TestMCPGateway(t *testing.T) {
	s := startDev(t)
	const name = "io.github.acme/notes"
	alice, bob := s.tokens["alice"], s.tokens["bob"]
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/mcp/servers", alice, map[string]any{"name": name, "version": "1.0.0",
		"description": "Team notes", "remote_url": "https://notes.example.com/mcp", "validate_url": s.api + "/examples/mcp/notes",
		"owner": "alice@example.com", "team": "growth", "risk_tier": "medium"}, nil), "register the MCP server")
	var acc struct {
		ID string `json:"id"`
	}
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/mcp/promotions", alice, map[string]any{"name": name, "version": "1.0.0", "channel": "prod", "monitor_window": "1s"}, &acc), "promote")
	testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return s.promotion(t, acc.ID).Stage == modelplane.StageAwaitingApproval })
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/promotions/"+acc.ID+"/approvals", bob, map[string]any{"decision": "approve", "comment": "tools reviewed"}, nil), "approve")
	testkit.WaitFor(t, "published on prod", 30*time.Second, func() bool { return s.promotion(t, acc.ID).Status == modelplane.StatusSucceeded })

	arg, _ := json.Marshal(map[string]string{"url": s.api + "/mcp/" + name, "token": alice, "driftURL": s.api + "/examples/mcp/notes/drift"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "mcp_gateway.mjs", string(arg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mcp_gateway.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		Anonymous    string   `json:"anonymous"`
		ToolsBefore  []string `json:"toolsBefore"`
		ToolsAfter   []string `json:"toolsAfter"`
		Echo         string   `json:"echo"`
		SearchBefore string   `json:"searchBefore"`
		DriftStatus  int      `json:"driftStatus"`
		ListChanged  int      `json:"listChanged"`
		SearchAfter  string   `json:"searchAfter"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	t.Logf("TypeScript SDK saw: %s", stdout.String())
	if !strings.Contains(got.Anonymous, "Unauthorized") {
		t.Errorf("without a token the client got %q, want a 401", got.Anonymous)
	}
	// alice is a requester: the destructive delete_note needs an approver in production.
	if want := []string{"add_note", "echo", "search_notes"}; !slices.Equal(got.ToolsBefore, want) {
		t.Errorf("tools before drift %v, want %v", got.ToolsBefore, want)
	}
	if got.Echo != "hello from the TypeScript SDK" || got.SearchBefore != "ok" {
		t.Errorf("calls answered echo=%q search=%q", got.Echo, got.SearchBefore)
	}
	if got.DriftStatus != 200 || got.ListChanged == 0 {
		t.Errorf("drift: status %d, list_changed notifications %d", got.DriftStatus, got.ListChanged)
	}
	if want := []string{"add_note", "echo"}; !slices.Equal(got.ToolsAfter, want) {
		t.Errorf("tools after drift %v, want %v", got.ToolsAfter, want)
	}
	if !strings.Contains(got.SearchAfter, "approved contract") {
		t.Errorf("calling the drifted tool: %q", got.SearchAfter)
	}

	var page struct {
		Records []modelplane.AuditRecord `json:"records"`
	}
	// The gateway writes its audit in batches a few milliseconds behind the
	// answers: the last call's record may land just after the client ends.
	testkit.WaitFor(t, "the tool-call records", 10*time.Second, func() bool {
		testkit.HTTPJSON(t, "GET", s.api+"/v1/audit?action=tool_call&model="+name, s.tokens["audrey"], nil, &page)
		return len(page.Records) >= 3
	})
	var outcomes []string
	for _, r := range page.Records {
		if r.Actor != "alice" || r.Version != "1.0.0" {
			t.Errorf("record %+v", r)
		}
		outcomes = append(outcomes, r.Subject+" "+r.Decision)
	}
	slices.Sort(outcomes)
	want := []string{name + "/echo allowed", name + "/search_notes allowed", name + "/search_notes denied"}
	if !slices.Equal(outcomes, want) {
		t.Errorf("tool-call records %v, want %v", outcomes, want)
	}
}
