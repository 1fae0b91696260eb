package api_test

import (
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/vertex"
)

// A target's platform decides what the API accepts: Vertex AI has no shadow
// traffic and no native rollout, and its config keys are checked when the
// target is created, not halfway through a rollout.
func TestTargetsAreCheckedAgainstTheirPlatform(t *testing.T) {
	h := newHarness(t, false)
	h.kit.Activities.Providers.(modelplane.ProviderSet)[vertex.Name] = vertex.New(vertex.Options{})
	h.seed("low")
	good := map[string]string{"project": "acme-ml", "location": "europe-west4", "serving_image": "europe-docker.pkg.dev/acme/serve:1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name   string
		config map[string]string
		field  string
	}{
		{"no location", with("location", ""), "config.location"},
		{"native rollout", with("rollout", "native"), "config.rollout"},
		{"unknown rollout", with("rollout", "sideways"), "config.rollout"},
		{"a typo in an optional key", with("machine_tpye", "n1-standard-8"), "config.machine_tpye"},
	} {
		r := h.call("POST", "/v1/targets", "admin", map[string]any{"name": "vx", "provider": "vertex", "environment": "production", "config": c.config})
		if r.status != 400 || r.errField() != c.field {
			t.Errorf("%s: %d %s, want 400 naming %s", c.name, r.status, r.raw, c.field)
		}
	}
	h.must(h.call("POST", "/v1/targets", "admin", map[string]any{"name": "vx", "provider": "vertex", "environment": "production", "config": good}), 201)

	r := h.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "version": "v2", "target": "vx",
		"strategy": map[string]any{"type": "shadow", "shadow_percent": 10, "then": "canary", "steps": []int{50, 100}}})
	if r.status != 400 || r.errField() != "strategy.type" {
		t.Fatalf("shadow on Vertex: %d %s, want 400 naming strategy.type", r.status, r.raw)
	}
}
