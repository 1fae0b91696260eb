package providers_test

import (
	"slices"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/vertex/vertextest"
)

func TestVertexLifecycle(t *testing.T) {
	srv, prov, tg := vertextest.Setup(t)
	srv.SetPollsToFinish(3)
	runLifecycle(t, platform{provider: prov, target: tg, artifacts: "gs://models",
		health: func(t *testing.T, v string, n, e5 int64, p99 float64) {
			srv.SetHealth("churn", v, vertextest.Figures{Requests: n, Errors5xx: e5, LatencyP99Ms: p99})
		}})

	// The registry mirrors the lifecycle: v2 is champion, v3 lost challenger.
	aliases := map[string][]string{}
	for _, name := range srv.ModelNames() {
		for _, m := range srv.ModelVersions(name) {
			aliases[m.GetVersionDescription()] = m.GetVersionAliases()
		}
	}
	if !slices.Contains(aliases["v2"], "champion") || slices.Contains(aliases["v3"], "challenger") || slices.Contains(aliases["v3"], "champion") {
		t.Fatalf("aliases after rollback = %v; want champion on v2, nothing on v3", aliases)
	}

	// Shadow is refused before anything starts on a platform without it.
	s := modelplane.RolloutStrategy{Type: modelplane.StrategyShadow, ShadowPercent: 10, Then: modelplane.StrategyCanary, Steps: []int{50, 100}}
	s, _ = s.Normalize()
	err := s.CheckStrategy(tg, modelplane.CapabilitiesOf(prov))
	var e *modelplane.Error
	if !asError(err, &e) || e.Field != "strategy.type" {
		t.Fatalf("shadow on Vertex: err = %v, want a field error on strategy.type", err)
	}
}
