package api_test

import (
	"sync"
	"testing"

	"github.com/modelplane/modelplane/policy"
)

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

// governance is the default policy bundle, shared by the flow tests:
// compiling it once keeps the suites fast. These tests are about rollouts,
// so the bundle's data is relaxed where it would change their quorum or
// refuse their fixtures (no offline metrics; Web UI signals, which carry no
// verified identity); the governance tests use the bundle as shipped.
func governance(t testing.TB) *policy.Engine {
	t.Helper()
	zero := map[string]any{"dev": 0, "staging": 0, "production": 0}
	engineOnce.Do(func() {
		engine, engineErr = policy.New("", policy.WithData(map[string]any{
			"allow_unverified_ui_approvals": true,
			"min_metrics":                   map[string]any{"production": 0},
			"approvals":                     map[string]any{"low": zero, "medium": zero, "high": zero, "critical": zero},
		}))
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}
