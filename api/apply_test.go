package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func resource(kind modelplane.Kind, spec any) map[string]any {
	b, _ := json.Marshal(spec)
	return map[string]any{"kind": kind, "spec": json.RawMessage(b), "source": "release.yaml:1"}
}

func TestApplyPlansWritesAndIsIdempotent(t *testing.T) {
	h := newHarness(t, false)
	h.seed("low")
	pipe := modelplane.Pipeline{Name: "release", Team: "growth", Stages: []modelplane.PipelineStage{{Name: "prod",
		Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}, Waves: []modelplane.Wave{{Targets: []string{"prod"}}}}}}
	model := modelplane.Model{Name: "ranker", Owner: "ml@example.com", Team: "growth", RiskTier: modelplane.RiskLow}
	body := func(dry bool, res ...map[string]any) map[string]any {
		return map[string]any{"resources": res, "dry_run": dry}
	}
	summary := func(r map[string]any) string { s, _ := r["summary"].(string); return s }

	dry := h.must(h.call("POST", "/v1/apply", "alice", body(true, resource(modelplane.KindModel, model), resource(modelplane.KindPipeline, pipe))), 200).body
	if summary(dry) != "2 to create, 0 to change, 0 to delete, 0 unchanged" {
		t.Fatalf("dry run: %v", dry)
	}
	if r := h.call("GET", "/v1/pipelines/release", "alice", nil); r.status != 404 {
		t.Fatalf("a dry run wrote the pipeline: %d", r.status)
	}
	if got := summary(h.must(h.call("POST", "/v1/apply", "alice", body(false, resource(modelplane.KindModel, model), resource(modelplane.KindPipeline, pipe))), 200).body); got != "2 to create, 0 to change, 0 to delete, 0 unchanged" {
		t.Fatalf("apply: %s", got)
	}
	if got := summary(h.must(h.call("POST", "/v1/apply", "alice", body(false, resource(modelplane.KindModel, model), resource(modelplane.KindPipeline, pipe))), 200).body); got != "0 to create, 0 to change, 0 to delete, 2 unchanged" {
		t.Fatalf("second apply: %s", got)
	}
	// A change is planned field by field.
	pipe.Stages[0].Soak = 0
	pipe.Stages[0].Waves[0].MaxParallel = 1
	r := h.must(h.call("POST", "/v1/apply", "alice", body(true, resource(modelplane.KindPipeline, pipe))), 200)
	var plan struct {
		Changes []modelplane.PlannedChange `json:"changes"`
	}
	_ = json.Unmarshal([]byte(r.raw), &plan)
	if len(plan.Changes) != 1 || plan.Changes[0].Action != modelplane.PlanChange || len(plan.Changes[0].Fields) != 1 ||
		plan.Changes[0].Fields[0] != (modelplane.FieldChange{Field: "stages[0].waves[0].max_parallel", To: "1"}) {
		t.Fatalf("plan of a change: %s", r.raw)
	}

	// Bad input names the resource, its source and the field, and writes nothing.
	bad := pipe
	bad.Stages = []modelplane.PipelineStage{{Name: "prod", Strategy: pipe.Stages[0].Strategy, Waves: []modelplane.Wave{{Targets: []string{"prod"}, OnFailure: "retry"}}}}
	r = h.call("POST", "/v1/apply", "alice", body(false, resource(modelplane.KindModel, modelplane.Model{Name: "other", Owner: "o", Team: "growth", RiskTier: "low"}), resource(modelplane.KindPipeline, bad)))
	if r.status != 400 || !strings.Contains(r.raw, "stages[0].waves[0].on_failure") || !strings.Contains(r.raw, "resources[1] (release.yaml:1) Pipeline") {
		t.Fatalf("bad pipeline: %d %s", r.status, r.raw)
	}
	if r := h.call("GET", "/v1/models/other", "alice", nil); r.status != 404 {
		t.Fatalf("a refused apply wrote its first resource: %d", r.status)
	}
	// Another team's pipeline is refused.
	theirs := pipe
	theirs.Name, theirs.Team = "fraud-release", "fraud"
	if r := h.call("POST", "/v1/apply", "alice", body(false, resource(modelplane.KindPipeline, theirs))); r.status != 403 {
		t.Fatalf("alice applied team fraud's pipeline: %d %s", r.status, r.raw)
	}
	// Prune deletes the caller's undeclared pipelines only when asked.
	r = h.must(h.call("POST", "/v1/apply", "alice", map[string]any{"resources": []any{resource(modelplane.KindModel, model)}, "prune": true}), 200)
	if summary(r.body) != "0 to create, 0 to change, 1 to delete, 1 unchanged" {
		t.Fatalf("prune: %s", r.raw)
	}
	if r := h.call("GET", "/v1/pipelines/release", "alice", nil); r.status != 404 {
		t.Fatalf("prune left the pipeline: %d", r.status)
	}
}
