//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
)

// TestDevKilledMidRollout SIGKILLs the whole `modelplane dev` process —
// embedded Temporal, worker and API — twice during a canary: at its first
// step and at the next point the rollout has moved on. Each time it starts
// again on the same data directory; the promotion carries on and succeeds,
// every traffic step applied once, every stage in its history once, and one
// audit record per stage change.
func TestDevKilledMidRollout(t *testing.T) {
	bin := modelplaneBinary(t)
	dir := t.TempDir()
	args, d := testkit.DevArgs(dir, testkit.FreePorts(t, testkit.DevPorts))
	ps := newProcs(t)
	c := newAPIClient(d.API, 4)
	start := func() *proc {
		p := ps.start("dev", bin, childEnv(), args...)
		eventually(t, "modelplane dev to be ready", 3*time.Minute, func() (bool, string) {
			if p.exited() {
				t.Fatalf("modelplane dev exited:\n%s", tailFile(p.log, 3000))
			}
			return c.ready(), "GET /readyz"
		})
		return p
	}
	dev := start()
	c.tokens = devTokens(t, filepath.Join(dir, "tokens"))

	const m = "restart"
	c.seedModel(t, m, modelplane.RiskMedium)
	var first struct{ ID string }
	c.must(t, http.StatusAccepted, "POST", "/v1/promotions", "alice", map[string]any{"model": m, "version": "v1", "target": "prod",
		"strategy": map[string]any{"type": modelplane.StrategyDirect, "monitor_window": "1s"}}, &first)
	c.awaitAll(t, "v1 awaiting approval", []string{first.ID}, 2*time.Minute, atApproval)
	c.votes(t, []string{first.ID}, "bob", "approve")
	if p := c.awaitAll(t, "v1 to be served", []string{first.ID}, 2*time.Minute, terminal)[first.ID]; p.Status != modelplane.StatusSucceeded {
		t.Fatalf("first release: %s (%s)", p.Status, p.Reason)
	}

	steps := []int{25, 50, 100}
	id := c.startCanary(t, m, "prod", steps, "10s", "10s")
	c.awaitAll(t, "v2 awaiting approval", []string{id}, 2*time.Minute, atApproval)
	c.votes(t, []string{id}, "bob", "approve")

	splits := canarySplits("v1", "v2", steps...)
	killedAt := []string{}
	// First crash at the first canary step; the second wherever the rollout
	// has got to once it moved on after the first restart.
	for i, moved := range []func(modelplane.Promotion) bool{
		func(p modelplane.Promotion) bool { return p.Traffic.String() == splits[0] || terminal(p) },
		func(p modelplane.Promotion) bool { return stageKey(p) != killedAt[0] },
	} {
		p := c.awaitAll(t, fmt.Sprintf("the rollout before crash %d", i+1), []string{id}, 3*time.Minute, moved)[id]
		if terminal(p) {
			t.Fatalf("promotion ended (%s: %s) before crash %d", p.Status, p.Reason, i+1)
		}
		dev.kill()
		killedAt = append(killedAt, stageKey(p))
		dev = start()
	}
	t.Logf("modelplane dev SIGKILLed at %q", killedAt)
	p := c.awaitAll(t, "the promotion to end after the crashes", []string{id}, 5*time.Minute, terminal)[id]
	if p.Status != modelplane.StatusSucceeded {
		t.Fatalf("promotion %s: %s", p.Status, p.Reason)
	}
	var dep modelplane.Deployment
	c.must(t, http.StatusOK, "GET", "/v1/deployments/prod/"+m, "alice", nil, &dep)
	if dep.Stable != "v2" || dep.PreviousStable != "v1" || dep.Traffic.String() != "v2=100" {
		t.Fatalf("deployment after the crashes: %+v", dep)
	}
	seen := map[string]int{}
	for _, h := range p.History {
		seen[h.Stage]++
		if seen[h.Stage] > 1 {
			t.Errorf("stage %s entered twice: %+v", h.Stage, p.History)
		}
	}

	// Read the simulator's and the audit's tables from the store itself.
	ctx := context.Background()
	st, sp := testkit.OpenStore(t, filepath.Join(dir, "modelplane.db"))
	got, err := trafficOf(ctx, sp, "prod", m, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTraffic(got, splits...); err != nil {
		t.Fatal(err)
	}
	if n, err := stageAudit(ctx, st, id); err != nil || n != len(p.History) {
		t.Fatalf("%d stage audit records for %d history entries (%v)", n, len(p.History), err)
	}
}

// devTokens reads the tokens `modelplane dev` wrote; alice and bob must have one.
func devTokens(t *testing.T, path string) map[string]string {
	t.Helper()
	out := testkit.DevTokens(t, path)
	for _, u := range []string{"alice", "bob"} {
		if out[u] == "" {
			t.Fatalf("no token for %s in %s", u, path)
		}
	}
	return out
}
