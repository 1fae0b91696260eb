//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
)

// consolePages are the pages console.mjs screenshots and checks with axe.
var consolePages = []string{"inbox", "promotions", "promotion", "deployments", "deployment", "models", "model", "provenance", "audit", "verify", "scorecard", "mcp"}

// consoleResult is what console.mjs reports.
type consoleResult struct {
	PromotionID   string `json:"promotionId"`
	RequestNotice string `json:"requestNotice"`
	ApproveNotice string `json:"approveNotice"`
	Live          struct {
		Status        string         `json:"status"`
		Stages        []string       `json:"stages"`
		Statuses      []string       `json:"statuses"`
		Refreshes     int            `json:"refreshes"`
		RefreshedAttr string         `json:"refreshedAttr"`
		URLBefore     string         `json:"urlBefore"`
		URLAfter      string         `json:"urlAfter"`
		Marker        string         `json:"marker"`
		Navigations   int            `json:"navigations"`
		LiveStatus    string         `json:"liveStatus"`
		RollbackCause string         `json:"rollbackCause"`
		ChartPaths    int            `json:"chartPaths"`
		ChartDesc     string         `json:"chartDesc"`
		ChartLast     map[string]int `json:"chartLast"`
		TrafficNow    string         `json:"trafficNow"`
	} `json:"live"`
	NoJS struct {
		InboxRow   bool    `json:"inboxRow"`
		Stage      string  `json:"stage"`
		VoteForm   bool    `json:"voteForm"`
		LiveStatus string  `json:"liveStatus"`
		Refreshed  *string `json:"refreshed"`
	} `json:"noJS"`
	Verify     string `json:"verify"`
	Provenance string `json:"provenance"`
	Deployment string `json:"deployment"`
	Pages      []struct {
		Page, URL, Error string
	} `json:"pages"`
	Shots    []string `json:"shots"`
	Overflow []struct {
		Page        string `json:"page"`
		Width       int    `json:"width"`
		ScrollWidth int    `json:"scrollWidth"`
	} `json:"overflow"`
	Axe []struct {
		Page       string `json:"page"`
		Width      int    `json:"width"`
		Violations []struct {
			ID, Impact, Help string
			Nodes            []struct{ Target, HTML string }
		} `json:"violations"`
	} `json:"axe"`
}

// TestConsole walks modelplane's own web console in headless Chromium as
// the people of a promotion do. alice signs in through the OIDC provider's
// login page and requests a canary from the model page; bob approves it,
// with a comment, from his inbox; alice's promotion page, left open, follows
// the rollout live without a reload; drift reported during monitoring rolls
// it back and the page says why in plain words; audrey verifies the audit
// chain. carol reads the inbox and the promotion with JavaScript off. Every
// page is screenshotted at 1280 px and 390 px (MODELPLANE_E2E_SHOTS keeps
// them) and must have no serious or critical axe-core WCAG 2 A/AA violation.
func TestConsole(t *testing.T) {
	s := startDev(t)
	shots := shotsDir(t)
	const m, comment = "fraud", "canary numbers look right — bob"

	// Version 1 serves prod first (approved through the API), so version 2's
	// canary has a stable version to roll back to.
	first, _ := s.awaitingApproval(t, m)
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/promotions/"+first+"/approvals", s.tokens["bob"], map[string]any{"decision": "approve", "comment": "first version"}, nil), "approve version 1")
	testkit.WaitFor(t, "version 1 serving prod", 60*time.Second, func() bool { return s.promotion(t, first).Status == modelplane.StatusSucceeded })
	must(t, testkit.HTTPJSON(t, "POST", s.api+"/v1/models/"+m+"/versions", s.tokens["alice"], map[string]any{"version": "2", "artifact_uri": "s3://m/2", "metrics": map[string]float64{"auc": 0.93}}, nil), "create version 2")

	user := func(name string) map[string]string {
		return map[string]string{"password": s.passwords[name]}
	}
	users := map[string]map[string]string{"alice": user("alice"), "bob": user("bob"), "carol": user("carol"), "audrey": user("audrey")}
	users["alice"]["token"] = s.tokens["alice"]
	arg, _ := json.Marshal(map[string]any{"api": s.api, "model": m, "version": "2", "target": "prod", "steps": "50,100", "bake": "2s",
		"monitor": "90s", "comment": comment, "shots": shots, "users": users})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "console.mjs", string(arg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("console.mjs:\n%s", stderr.String())
	var res consoleResult
	if jerr := json.Unmarshal(stdout.Bytes(), &res); err != nil || jerr != nil {
		t.Fatalf("console.mjs: %v %v\nstdout: %s\n(screenshots in %s)", err, jerr, stdout.String(), shots)
	}
	t.Logf("screenshots in %s", shots)

	// alice's request and bob's approval went through the console's forms.
	if !strings.Contains(res.RequestNotice, "Promotion requested by alice") {
		t.Errorf("after the request: notice %q", res.RequestNotice)
	}
	if !strings.Contains(res.ApproveNotice, "Approved as bob") {
		t.Errorf("after the approval: notice %q", res.ApproveNotice)
	}

	// alice's page advanced by itself: the stage changed through the rollout,
	// main was refreshed in place, and neither the URL nor the window changed.
	l := res.Live
	for _, want := range []string{"awaiting approval", "canary", "monitoring", "done"} {
		if !slices.Contains(l.Stages, want) {
			t.Errorf("alice's page never showed stage %q live: %v", want, l.Stages)
		}
	}
	if len(l.Stages) == 0 || l.Stages[0] != "awaiting approval" || l.Status != "rolled back" || !slices.Contains(l.Statuses, "running") {
		t.Errorf("alice's page: stages %v, statuses %v, status now %q", l.Stages, l.Statuses, l.Status)
	}
	if l.Refreshes == 0 || l.RefreshedAttr == "" || l.Marker == "" || l.Navigations != 0 || l.URLBefore != l.URLAfter {
		t.Errorf("alice's page was not refreshed in place: %d refreshes, data-refreshed %q, marker %q, %d navigations, %s → %s",
			l.Refreshes, l.RefreshedAttr, l.Marker, l.Navigations, l.URLBefore, l.URLAfter)
	}
	if !strings.Contains(l.LiveStatus, "Live") {
		t.Errorf("live status: %q", l.LiveStatus)
	}
	if !strings.Contains(l.RollbackCause, "rolled back because a drift signal reported the model drifting") {
		t.Errorf("rollback cause: %q", l.RollbackCause)
	}
	if l.ChartPaths < 2 || !strings.Contains(l.ChartDesc, "2 50%") {
		t.Errorf("traffic chart: %d paths, description %q", l.ChartPaths, l.ChartDesc)
	}
	// The chart ends where the traffic is: back on version 1 after the rollback.
	if l.TrafficNow != "1 100%" || l.ChartLast["1"] != 100 || l.ChartLast["2"] != 0 {
		t.Errorf("traffic now %q, but the chart's lines end at %v (version → percent)", l.TrafficNow, l.ChartLast)
	}

	// Without JavaScript: signed in, the inbox lists the promotion and its page reads.
	if n := res.NoJS; !n.InboxRow || n.Stage != "awaiting approval" || !n.VoteForm || !strings.Contains(n.LiveStatus, "need JavaScript") || n.Refreshed != nil {
		t.Errorf("without JavaScript: %+v", n)
	}
	if !strings.Contains(res.Verify, "The chain is intact") {
		t.Errorf("audrey's verification: %q", res.Verify)
	}
	// The deployment is back on version 1, its guardian watching.
	dep := strings.Join(strings.Fields(res.Deployment), " ")
	for _, want := range []string{"Stable 1 Previous", "Traffic 1 100% Guardian", "Guardian watching"} {
		if !strings.Contains(dep, want) {
			t.Errorf("deployments page does not say %q:\n%s", want, res.Deployment)
		}
	}
	if !strings.Contains(res.Provenance, "bob approve via console, identity by oidc") {
		t.Errorf("provenance does not show bob's console vote:\n%s", res.Provenance)
	}

	// Every page, both widths, screenshotted and clean of serious a11y faults.
	for _, p := range res.Pages {
		if p.Error != "" {
			t.Errorf("page %s (%s) shows an error: %s", p.Page, p.URL, p.Error)
		}
	}
	for _, page := range consolePages {
		for _, w := range []int{1280, 390} {
			f := fmt.Sprintf("%s/console-%s-%d.png", shots, page, w)
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				t.Errorf("no screenshot %s: %v", f, err)
			}
		}
	}
	for _, o := range res.Overflow {
		t.Logf("page %s at %d px scrolls sideways (%d px wide)", o.Page, o.Width, o.ScrollWidth)
	}
	checked := map[string]bool{}
	for _, a := range res.Axe {
		checked[a.Page] = true
		for _, v := range a.Violations {
			msg := fmt.Sprintf("axe on %s at %d px: %s (%s): %s", a.Page, a.Width, v.ID, v.Impact, v.Help)
			for _, n := range v.Nodes {
				msg += fmt.Sprintf("\n    %s  %s", n.Target, n.HTML)
			}
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Error(msg)
			} else {
				t.Log(msg)
			}
		}
	}
	for _, page := range consolePages {
		if !checked[page] {
			t.Errorf("axe never checked %s", page)
		}
	}

	// The API agrees: bob's vote came through the console with a verified
	// (OIDC) identity, and the promotion was rolled back for drift.
	p := s.promotion(t, res.PromotionID)
	if p.Model != m || p.Version != "2" || p.RequestedBy != "alice" || p.Strategy.Type != modelplane.StrategyCanary || !slices.Equal(p.Strategy.Steps, []int{50, 100}) {
		t.Errorf("the promotion the form started: %+v", p)
	}
	if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "drift") {
		t.Errorf("promotion ended %s: %s", p.Status, p.Reason)
	}
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "bob" || p.Approvals[0].Decision != "approve" || p.Approvals[0].Via != "console" ||
		p.Approvals[0].Method != modelplane.AuthOIDC || p.Approvals[0].Comment != comment {
		t.Errorf("approvals = %+v, want bob's approval via console, verified by oidc, with his comment", p.Approvals)
	}
	recs := s.audit(t, res.PromotionID)
	if vote, ok := findRecord(recs, modelplane.AuditVote, "bob"); !ok || vote.Details["via"] != "console" || vote.Details["method"] != modelplane.AuthOIDC {
		t.Errorf("bob's vote in the audit: %+v", vote)
	}
	if rb, ok := findRecord(recs, modelplane.AuditRollback, "drift-monitor"); !ok || rb.Decision != "rolled_back" || rb.Details["cause"] != "drift" {
		t.Errorf("rollback in the audit: %+v (found %v)", rb, ok)
	}
	var verify struct {
		OK bool `json:"ok"`
	}
	if st := testkit.HTTPJSON(t, "GET", s.api+"/v1/audit/verify", s.tokens["audrey"], nil, &verify); st != 200 || !verify.OK {
		t.Errorf("audit verify: HTTP %d ok=%v", st, verify.OK)
	}
}
