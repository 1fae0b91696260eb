package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/workflows"
)

// TestDevPipeline applies the example pipeline to the real binary and runs
// a version through it: dev and staging promote themselves after their
// soak, production waits for a person and each region for an approver;
// the process is killed while region 1 waits and the run resumes.
func TestDevPipeline(t *testing.T) {
	dir := t.TempDir()
	args, d := testkit.DevArgs(dir, testkit.FreePorts(t, testkit.DevPorts))
	apiURL := d.API
	ready := func(p *testkit.Proc) bool {
		return strings.Contains(p.Output(), "The vote counts for the signed-in user") && testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200
	}
	dev := testkit.Start(t, binary, args...)
	testkit.WaitFor(t, "dev ready", 60*time.Second, func() bool { return ready(dev) })
	tok := testkit.DevTokens(t, dir+"/tokens")
	cli := func(as string, args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--api", apiURL, "--data-dir", dir, "--as", as)...).CombinedOutput()
		return string(out), err
	}
	must := func(as string, args ...string) string {
		t.Helper()
		out, err := cli(as, args...)
		if err != nil {
			t.Fatalf("modelplane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models", tok["alice"], map[string]any{"name": "churn", "owner": "o@example.com", "team": "growth", "risk_tier": "low"}, nil); st != 201 {
		t.Fatalf("create model: %d", st)
	}
	if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/churn/versions", tok["alice"], map[string]any{"version": "1", "artifact_uri": "s3://m/1", "metrics": map[string]float64{"auc": 0.9}}, nil); st != 201 {
		t.Fatalf("create version: %d", st)
	}
	// A bad file is refused naming the file and the field.
	if out, err := cli("alice", "pipeline", "put", "-f", writeFile(t, dir, "bad.yaml", "name: bad\nteam: growth\nstages:\n  - name: dev\n    waves: [{targets: [dev], on_failure: retry}]\n    strategy: {type: direct}\n")); err == nil ||
		!strings.Contains(out, "bad.yaml") || !strings.Contains(out, "stages[0].waves[0].on_failure") {
		t.Fatalf("a bad pipeline file: %v\n%s", err, out)
	}
	must("alice", "pipeline", "put", "-f", "../../examples/pipeline/release.yaml")
	if id := strings.TrimSpace(must("alice", "pipeline", "run", "release", "churn", "1")); id != workflows.PipelineRunID("release", "churn", "1") {
		t.Fatalf("run id %q", id)
	}
	run := func() workflows.PipelineRunView {
		var v workflows.PipelineRunView
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/pipelines/release/runs/churn/1", tok["alice"], nil, &v)
		return v
	}
	stage := func(v workflows.PipelineRunView, name string) workflows.StageRun {
		for _, s := range v.Stages {
			if s.Name == name {
				return s
			}
		}
		return workflows.StageRun{}
	}
	testkit.WaitFor(t, "prod waits for a person", 3*time.Minute, func() bool {
		return strings.HasPrefix(stage(run(), "prod").Note, "waits for a person: auto-promotion into production is not enabled")
	})
	v := run()
	dev1, stg := stage(v, "dev"), stage(v, "staging")
	if dev1.Status != modelplane.PipelineVerified || stg.Status != modelplane.PipelineVerified || stg.VerifiedAt.Sub(*dev1.VerifiedAt) < 20*time.Second {
		t.Fatalf("dev %s at %v, staging %s at %v: staging must follow dev's 20 s soak", dev1.Status, dev1.VerifiedAt, stg.Status, stg.VerifiedAt)
	}
	// bob approves but may not start promotions; alice promotes the stage.
	if out, err := cli("bob", "pipeline", "promote", "release", "churn", "1", "prod"); err == nil || !strings.Contains(out, "403") && !strings.Contains(out, "denied") {
		t.Fatalf("bob promoted prod: %v\n%s", err, out)
	}
	must("alice", "pipeline", "promote", "release", "churn", "1", "prod")
	regionWaits := func(target string) string {
		var id string
		testkit.WaitFor(t, target+" awaits approval", 60*time.Second, func() bool {
			for _, tr := range stage(run(), "prod").Targets {
				if tr.Target == target && tr.PromotionID != "" {
					var p modelplane.Promotion
					testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+tr.PromotionID, tok["alice"], nil, &p)
					id = tr.PromotionID
					return p.Stage == modelplane.StageAwaitingApproval
				}
			}
			return false
		})
		return id
	}
	eu := regionWaits("prod-eu")
	// One region at a time: prod-us has not started.
	for _, tr := range stage(run(), "prod").Targets {
		if tr.Target == "prod-us" && tr.PromotionID != "" {
			t.Fatalf("prod-us started while prod-eu waits (max_parallel 1)")
		}
	}
	dev.Interrupt(t)
	dev = testkit.Start(t, binary, args...)
	testkit.WaitFor(t, "dev ready again", 60*time.Second, func() bool { return ready(dev) })
	must("bob", "approve", eu)
	us := regionWaits("prod-us")
	must("bob", "approve", us)
	testkit.WaitFor(t, "prod verified", 90*time.Second, func() bool { return stage(run(), "prod").Status == modelplane.PipelineVerified })
	for _, tg := range []string{"dev", "staging", "prod-eu", "prod-us"} {
		var dep modelplane.Deployment
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/deployments/"+tg+"/churn", tok["alice"], nil, &dep)
		if dep.Stable != "1" {
			t.Errorf("%s serves %q, want 1", tg, dep.Stable)
		}
	}
	if out := must("alice", "pipeline", "status", "release", "churn", "1"); !strings.Contains(out, "prod         verified") {
		t.Fatalf("pipeline status:\n%s", out)
	}
}
