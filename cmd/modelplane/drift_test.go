package main

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
)

// TestDevPlatformDrift changes what the simulated platform serves behind
// modelplane's back, with the CLI as a person would, and finds the drift
// reported by the real guardian on the real Temporal server: status, field,
// first-seen time, audit record, metric; then in sync again.
func TestDevPlatformDrift(t *testing.T) {
	dir := t.TempDir()
	args, d := testkit.DevArgs(dir, testkit.FreePorts(t, testkit.DevPorts))
	apiURL := d.API
	dev := testkit.Start(t, binary, args...)
	testkit.WaitFor(t, "dev ready", 60*time.Second, func() bool {
		return strings.Contains(dev.Output(), "The vote counts for the signed-in user") && testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200
	})
	tok := testkit.DevTokens(t, dir+"/tokens")
	if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models", tok["alice"], map[string]any{"name": "churn", "owner": "o@example.com", "team": "growth", "risk_tier": "low"}, nil); st != 201 {
		t.Fatalf("create model: %d", st)
	}
	for _, v := range []string{"1", "2"} {
		if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/churn/versions", tok["alice"], map[string]any{"version": v, "artifact_uri": "s3://m/" + v, "metrics": map[string]float64{"auc": 0.9}}, nil); st != 201 {
			t.Fatalf("create version: %d", st)
		}
	}
	for _, v := range []string{"1", "2"} {
		var acc struct{ ID string }
		if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions", tok["alice"], map[string]any{"model": "churn", "version": v, "target": "prod", "strategy": map[string]any{"type": "direct", "monitor_window": "1s"}}, &acc); st != 202 {
			t.Fatalf("promote %s: %d", v, st)
		}
		status := func() modelplane.Promotion {
			var p modelplane.Promotion
			testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+acc.ID, tok["alice"], nil, &p)
			return p
		}
		testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return status().Stage == modelplane.StageAwaitingApproval })
		if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions/"+acc.ID+"/approvals", tok["bob"], map[string]any{"decision": "approve"}, nil); st != 200 {
			t.Fatalf("approve: %d", st)
		}
		testkit.WaitFor(t, "promotion of "+v, 30*time.Second, func() bool { return status().Status == modelplane.StatusSucceeded })
	}
	guardian := func() api.GuardianStatus {
		var g api.GuardianStatus
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/deployments/prod/churn/guardian", tok["alice"], nil, &g)
		return g
	}
	testkit.WaitFor(t, "the guardian's first platform check", 30*time.Second, func() bool {
		g := guardian()
		return g.Stable == "2" && g.Platform != nil && g.Platform.Status == modelplane.InSync
	})

	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, append(args, "--api", apiURL, "--data-dir", dir, "--as", "alice")...).CombinedOutput()
		if err != nil {
			t.Fatalf("modelplane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	changed := time.Now()
	cli("sim", "traffic", "--model", "churn", "--target", "prod", "1=30,2=70")
	var g api.GuardianStatus
	testkit.WaitFor(t, "drift reported", 30*time.Second, func() bool {
		g = guardian()
		return g.Platform != nil && g.Platform.Status == modelplane.Drifted
	})
	p := g.Platform
	if p.FirstSeen == nil || p.FirstSeen.Before(changed.Add(-time.Second)) || p.FirstSeen.After(changed.Add(10*time.Second)) {
		t.Fatalf("first seen %v for a change made at %s (checks every 5 s)", p.FirstSeen, changed)
	}
	if len(p.Diffs) != 2 || p.Diffs[0] != (modelplane.FieldDiff{Field: "traffic.1", Applied: "0%", Actual: "30%"}) {
		t.Fatalf("diffs = %+v", p.Diffs)
	}
	if out := cli("deployment", "churn", "prod"); !strings.Contains(out, "platform: drifted") || !strings.Contains(out, "traffic.2: applied 100%, serving 70%") || !strings.Contains(out, "first seen") {
		t.Fatalf("modelplane deployment:\n%s", out)
	}
	var audit struct{ Records []modelplane.AuditRecord }
	testkit.HTTPJSON(t, "GET", apiURL+"/v1/audit?model=churn&action=platform_drift", tok["alice"], nil, &audit)
	if len(audit.Records) != 1 || audit.Records[0].Decision != "drifted" || audit.Records[0].Actor != "guardian" {
		t.Fatalf("platform_drift records = %+v", audit.Records)
	}

	res, err := http.Get(apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(scrape), `modelplane_platform_drift_total{status="drifted",target="prod"} 1`+"\n") {
		t.Fatalf("/metrics lacks the drift:\n%s", grepLines(scrape, "platform_drift"))
	}

	// Put back by hand: in sync again, and said so.
	cli("sim", "traffic", "--model", "churn", "--target", "prod", "2=100")
	testkit.WaitFor(t, "in sync again", 30*time.Second, func() bool {
		g = guardian()
		return g.Platform != nil && g.Platform.Status == modelplane.InSync
	})
	testkit.HTTPJSON(t, "GET", apiURL+"/v1/audit?model=churn&action=platform_drift", tok["alice"], nil, &audit)
	if len(audit.Records) != 2 || audit.Records[1].Decision != "in_sync" {
		t.Fatalf("platform_drift records = %+v", audit.Records)
	}
}
