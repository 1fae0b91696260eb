//go:build e2e

// Package e2e drives the real binary and the Temporal Web UI it embeds in
// headless Chromium (make test-integration).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
)

// TestWebUISignOff: an approver reads the evidence in the Web UI and sends
// the approve signal there; the promotion counts the vote and proceeds.
func TestWebUISignOff(t *testing.T) {
	bin, err := testkit.BuildBinary("..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := testkit.FreePorts(t, 10)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", base+8)
	uiURL := fmt.Sprintf("http://127.0.0.1:%d", base+9)
	testkit.Start(t, bin, "dev", "--data-dir", dir, "--temporal-port", fmt.Sprint(base), "--api-addr", fmt.Sprintf("127.0.0.1:%d", base+8), "--ui-port", fmt.Sprint(base+9))
	testkit.WaitFor(t, "dev ready", 60*time.Second, func() bool { return testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200 })

	tokens, err := os.ReadFile(filepath.Join(dir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	alice := ""
	for _, line := range strings.Split(string(tokens), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "alice" {
			alice = f[2]
		}
	}
	must := func(status int, what string) {
		t.Helper()
		if status/100 != 2 {
			t.Fatalf("%s: HTTP %d", what, status)
		}
	}
	must(testkit.HTTPJSON(t, "POST", apiURL+"/v1/models", alice, map[string]any{"name": "churn", "owner": "ml@example.com", "team": "growth", "risk_tier": "medium"}, nil), "create model")
	must(testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/churn/versions", alice, map[string]any{"version": "1", "artifact_uri": "s3://m/1", "metrics": map[string]float64{"auc": 0.91}}, nil), "create version")
	var acc struct {
		ID         string `json:"id"`
		WorkflowID string `json:"workflow_id"`
	}
	must(testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions", alice, map[string]any{"model": "churn", "version": "1", "target": "prod", "strategy": map[string]any{"type": "direct", "monitor_window": "1s"}}, &acc), "promote")
	var p modelplane.Promotion
	get := func() modelplane.Promotion {
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+acc.ID, alice, nil, &p)
		return p
	}
	testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return get().Stage == modelplane.StageAwaitingApproval })

	shots := os.Getenv("MODELPLANE_E2E_SHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	cmd := exec.Command("node", "webui.mjs", uiURL, acc.WorkflowID, "carol", shots)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("browser: %v\n%s\n(screenshots in %s)", err, out, shots)
	}
	testkit.WaitFor(t, "promotion to succeed after the UI sign-off", 30*time.Second, func() bool { return get().Status == modelplane.StatusSucceeded })
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "carol" || p.Approvals[0].Via != "signal" {
		t.Fatalf("approvals = %+v", p.Approvals)
	}
}
