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
	// A bad file is refused naming the file, the line and the field.
	bad := writeFile(t, dir, "bad.yaml", "kind: Pipeline\nname: bad\nteam: growth\nstages:\n  - name: dev\n    strategy: {type: direct}\n    waves:\n      - targets: [dev]\n        on_failure: retry\n")
	if out, err := cli("alice", "apply", "-f", bad); err == nil || !strings.Contains(out, "bad.yaml:9: stages[0].waves[0].on_failure") {
		t.Fatalf("a bad pipeline file: %v\n%s", err, out)
	}
	// The example: the model and the pipeline, as alice; twice changes nothing.
	if out := must("alice", "apply", "-f", "../../examples/pipeline/"); !strings.Contains(out, "2 to create, 0 to change, 0 to delete, 0 unchanged") {
		t.Fatalf("apply:\n%s", out)
	}
	if out := must("alice", "diff", "-f", "../../examples/pipeline/"); !strings.Contains(out, "0 to create, 0 to change, 0 to delete, 2 unchanged") {
		t.Fatalf("diff after apply:\n%s", out)
	}
	// The targets are what dev seeded; alice may not change targets.
	if out := must("admin", "apply", "-f", "../../examples/pipeline/targets", "--dry-run"); !strings.Contains(out, "0 to create, 0 to change, 0 to delete, 5 unchanged") {
		t.Fatalf("the example targets differ from dev's:\n%s", out)
	}
	if out, err := cli("alice", "apply", "-f", "../../examples/pipeline/targets"); err == nil || !strings.Contains(out, "only admins may change it") {
		t.Fatalf("alice applied targets: %v\n%s", err, out)
	}
	if out := must("alice", "get", "pipeline", "release"); !strings.Contains(out, "kind: Pipeline") || !strings.Contains(out, "max_parallel: 1") {
		t.Fatalf("get pipeline:\n%s", out)
	}
	if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/ranker/versions", tok["alice"], map[string]any{"version": "1", "artifact_uri": "s3://m/1", "metrics": map[string]float64{"auc": 0.9}}, nil); st != 201 {
		t.Fatalf("create version: %d", st)
	}
	if id := strings.TrimSpace(must("alice", "pipeline", "run", "release", "ranker", "1")); id != workflows.PipelineRunID("release", "ranker", "1") {
		t.Fatalf("run id %q", id)
	}
	run := func() workflows.PipelineRunView {
		var v workflows.PipelineRunView
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/pipelines/release/runs/ranker/1", tok["alice"], nil, &v)
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
	if out, err := cli("bob", "pipeline", "promote", "release", "ranker", "1", "prod"); err == nil || !strings.Contains(out, "403") && !strings.Contains(out, "denied") {
		t.Fatalf("bob promoted prod: %v\n%s", err, out)
	}
	must("alice", "pipeline", "promote", "release", "ranker", "1", "prod")
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
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/deployments/"+tg+"/ranker", tok["alice"], nil, &dep)
		if dep.Stable != "1" {
			t.Errorf("%s serves %q, want 1", tg, dep.Stable)
		}
	}
	if out := must("alice", "pipeline", "status", "release", "ranker", "1"); !strings.Contains(out, "prod         verified") {
		t.Fatalf("pipeline status:\n%s", out)
	}
	// Across runs: which version each stage verified.
	if out := must("alice", "pipeline", "versions", "release"); !strings.Contains(out, "prod         ranker 1") || !strings.Contains(out, "dev          ranker 1") {
		t.Fatalf("pipeline versions:\n%s", out)
	}
}
