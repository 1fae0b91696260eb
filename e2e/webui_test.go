//go:build e2e

// Package e2e drives the real binary and the Temporal Web UI it embeds in
// headless Chromium (make test-integration).
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
)

// devStack is a running `modelplane dev` with its URLs and dev credentials.
type devStack struct {
	bin, dir, api, ui, temporal string
	tokens, passwords           map[string]string
}

func startDev(t testing.TB) *devStack {
	t.Helper()
	bin, err := testkit.BuildBinary("..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &devStack{bin: bin, dir: t.TempDir()}
	args, d := testkit.DevArgs(s.dir, testkit.FreePorts(t, testkit.DevPorts))
	s.temporal, s.api, s.ui = d.Temporal, d.API, d.UI
	testkit.Start(t, bin, args...)
	testkit.WaitFor(t, "dev ready", 90*time.Second, func() bool { return testkit.HTTPJSON(t, "GET", s.api+"/readyz", "", nil, nil) == 200 })
	s.tokens = testkit.DevTokens(t, filepath.Join(s.dir, "tokens"))
	s.passwords = testkit.DevPasswords(t, filepath.Join(s.dir, "passwords"))
	return s
}

func must(t testing.TB, status int, what string) {
	t.Helper()
	if status/100 != 2 {
		t.Fatalf("%s: HTTP %d", what, status)
	}
}

// awaitingApproval registers model m (medium risk: one approval) and asks
// alice's promotion of version 1 to prod.
func (s *devStack) awaitingApproval(t testing.TB, m string) (id, workflowID string) {
	t.Helper()
	alice := s.tokens["alice"]
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/models", alice, map[string]any{"name": m, "owner": "ml@example.com", "team": "growth", "risk_tier": "medium"}, nil), "create model")
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/models/"+m+"/versions", alice, map[string]any{"version": "1", "artifact_uri": "s3://m/1", "metrics": map[string]float64{"auc": 0.91}}, nil), "create version")
	var acc struct {
		ID         string `json:"id"`
		WorkflowID string `json:"workflow_id"`
	}
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/promotions", alice, map[string]any{"model": m, "version": "1", "target": "prod", "strategy": map[string]any{"type": "direct", "monitor_window": "1s"}}, &acc), "promote")
	testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return s.promotion(t, acc.ID).Stage == modelplane.StageAwaitingApproval })
	return acc.ID, acc.WorkflowID
}

func (s *devStack) promotion(t testing.TB, id string) modelplane.Promotion {
	var p modelplane.Promotion
	testkit.HTTPJSON(t, "GET", s.api+"/v1/promotions/"+id, s.tokens["alice"], nil, &p)
	return p
}

func (s *devStack) audit(t testing.TB, id string) []modelplane.AuditRecord {
	var page struct {
		Records []modelplane.AuditRecord `json:"records"`
	}
	testkit.HTTPJSON(t, "GET", s.api+"/v1/audit?promotion="+id, s.tokens["audrey"], nil, &page)
	return page.Records
}

func shotsDir(t testing.TB) string {
	if d := os.Getenv("MODELPLANE_E2E_SHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// signOffResult is what the browser script reports.
type signOffResult struct {
	SubmittedAt []int64 `json:"submittedAt"`
	RecordedMs  []int64 `json:"recordedMs"`
}

// signOff signs in to the Web UI as user and sends approve with a payload
// naming typed on each workflow; with promotions it also waits for each
// vote to show in the API.
func (s *devStack) signOff(t testing.TB, shots, label, user, typed string, workflowIDs []string, promotions []string) signOffResult {
	t.Helper()
	in := map[string]any{"ui": s.ui, "workflowId": workflowIDs[0], "more": workflowIDs[1:], "user": user, "password": s.passwords[user], "typed": typed, "shots": shots, "label": label}
	if len(promotions) > 0 {
		in["api"], in["token"], in["promotionIds"] = s.api, s.tokens["audrey"], promotions
	}
	arg, _ := json.Marshal(in)
	out, err := exec.Command("node", "webui.mjs", string(arg)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = append(out, ee.Stderr...)
		}
		t.Fatalf("browser as %s: %v\n%s\n(screenshots in %s)", user, err, out, shots)
	}
	var res signOffResult
	if err := json.Unmarshal(out, &res); err != nil || len(res.SubmittedAt) != len(workflowIDs) {
		t.Fatalf("browser as %s printed %q", user, out)
	}
	return res
}

func findRecord(recs []modelplane.AuditRecord, action modelplane.AuditAction, actor string) (modelplane.AuditRecord, bool) {
	for _, r := range recs {
		if r.Action == action && r.Actor == actor {
			return r, true
		}
	}
	return modelplane.AuditRecord{}, false
}

// TestWebUISignOff: people sign in to the Web UI through the dev OIDC
// provider's login page; the frontend stamps who they are, so a vote counts
// for the signed-in person whatever name the payload types, four-eyes and
// team rules hold, and a signed-out browser cannot signal at all.
func TestWebUISignOff(t *testing.T) {
	s := startDev(t)
	shots := shotsDir(t)
	id, wid := s.awaitingApproval(t, "churn")

	// The Web UI says sign-in is on.
	var settings struct{ Auth struct{ Enabled bool } }
	if st := testkit.HTTPJSON(t, "GET", s.ui+"/api/v1/settings", "", nil, &settings); st != 200 || !settings.Auth.Enabled {
		t.Fatalf("Web UI settings: HTTP %d, auth enabled %v", st, settings.Auth.Enabled)
	}
	// Signed out: neither the UI's API nor the frontend lets a signal through.
	req, _ := http.NewRequest(http.MethodPost, s.ui+"/api/v1/namespaces/default/workflows/"+wid+"/signal/approve", strings.NewReader(`{"signalName":"approve","input":{"payloads":[]}}`))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode/100 == 2 {
		t.Fatalf("signed-out signal through the UI: %v %v", err, res)
	}
	c, err := client.Dial(client.Options{HostPort: s.temporal, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pd *serviceerror.PermissionDenied
	if err := c.SignalWorkflow(ctx, wid, "", "approve", map[string]string{"approver": "bob", "decision": "approve"}); !errors.As(err, &pd) {
		t.Fatalf("a signal with no credential: want PermissionDenied, got %v", err)
	}

	// alice requested it: four-eyes refuses her, whoever the payload names.
	s.signOff(t, shots, "alice", "alice", "carol", []string{wid}, nil)
	testkit.WaitFor(t, "alice's refused vote in the audit", 30*time.Second, func() bool { _, ok := findRecord(s.audit(t, id), modelplane.AuditApprovalDenied, "alice"); return ok })
	// dave approves for another team: the policy refuses him.
	s.signOff(t, shots, "dave", "dave", "bob", []string{wid}, nil)
	testkit.WaitFor(t, "dave's refused vote in the audit", 30*time.Second, func() bool { _, ok := findRecord(s.audit(t, id), modelplane.AuditApprovalDenied, "dave"); return ok })
	if p := s.promotion(t, id); len(p.Approvals) != 0 || p.Stage != modelplane.StageAwaitingApproval {
		t.Fatalf("refused votes changed the promotion: %+v", p.Approvals)
	}

	// bob signs off with a payload naming carol: the vote is bob's, verified.
	s.signOff(t, shots, "bob", "bob", "carol", []string{wid}, nil)
	testkit.WaitFor(t, "promotion to succeed after bob's sign-off", 60*time.Second, func() bool { return s.promotion(t, id).Status == modelplane.StatusSucceeded })
	p := s.promotion(t, id)
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "bob" || p.Approvals[0].Via != "signal" || p.Approvals[0].Method != modelplane.AuthOIDC {
		t.Fatalf("approvals = %+v, want one by bob via signal, verified by oidc", p.Approvals)
	}
	recs := s.audit(t, id)
	vote, ok := findRecord(recs, modelplane.AuditVote, "bob")
	if !ok || vote.Details["method"] != modelplane.AuthOIDC || vote.Policy == nil || !vote.Policy.Allow {
		t.Fatalf("bob's vote in the audit: %+v", vote)
	}
	if _, ok := findRecord(recs, modelplane.AuditVote, "carol"); ok {
		t.Fatal("the typed name got a vote")
	}
	for _, who := range []string{"alice", "dave"} {
		r, _ := findRecord(recs, modelplane.AuditApprovalDenied, who)
		if r.Details["method"] != modelplane.AuthOIDC || r.Details["via"] != "signal" {
			t.Errorf("%s's denial does not record the verified method: %+v", who, r)
		}
	}
	out, err := exec.Command(s.bin, "status", id, "--api", s.api, "--token", s.tokens["alice"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bob approve via signal (verified by oidc)") {
		t.Fatalf("modelplane status: %v\n%s", err, out)
	}
}

// BenchmarkWebUISignOff: from the click that sends approve in the Web UI
// (signed in as bob) to the vote showing in the API, over 20 promotions
// awaiting approval. Reports p50 and p99 in milliseconds.
//
//	hack/ensure-browser.sh && go test -tags e2e -run '^$' -bench WebUISignOff -benchtime 1x ./e2e/
func BenchmarkWebUISignOff(b *testing.B) {
	s := startDev(b)
	const votes = 20
	var wids, ids []string
	for i := 0; i < votes; i++ {
		id, wid := s.awaitingApproval(b, fmt.Sprintf("m%02d", i))
		ids, wids = append(ids, id), append(wids, wid)
	}
	b.ResetTimer()
	res := s.signOff(b, shotsDir(b), "bench", "bob", "bob", wids, ids)
	b.StopTimer()
	ms := append([]int64(nil), res.RecordedMs...)
	slices.Sort(ms)
	b.ReportMetric(float64(ms[len(ms)/2]), "p50-ms")
	b.ReportMetric(float64(ms[len(ms)*99/100]), "p99-ms")
	b.ReportMetric(float64(len(ms)), "votes")
}
