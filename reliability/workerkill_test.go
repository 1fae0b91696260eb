//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/sim"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

// stageKey names where a promotion is: its stage and, during a rollout, the
// traffic split, so each canary step is a stage of its own.
func stageKey(p modelplane.Promotion) string {
	return strings.TrimSpace(p.Stage + " " + p.Traffic.String())
}

// TestWorkerKilledAtEveryStage runs `modelplane server` and `modelplane
// worker` as processes against a Temporal server in the test process, on a
// shared store, and SIGKILLs the worker whenever a promotion has entered a
// stage it was not yet killed in, then starts a new one. 24 canaries run
// together; 4 of them see a candidate with a bad error rate. Once every
// promotion has been killed awaiting approval, bob approves them all. Every
// promotion must end as it would have without the crashes — succeeded, or
// rolled back by analysis — with each traffic step applied once, and with
// one audit record per stage change.
//
// Where kills land: a promotion waiting (for approval, or in a bake between
// steps) is killed once nothing of any promotion is in flight, or, if the
// others keep the worker busy, a third of a bake after a poll first saw it
// there. So every promotion is killed at awaiting_approval, at each canary
// step and while monitoring (asserted). Registering and validating are
// passed in one activity each; the worker is killed there mid-activity when
// a poll sees one (at most twice), which costs the activity's 30 s
// start-to-close timeout (logged, not asserted: whether a poll lands there
// is timing).
func TestWorkerKilledAtEveryStage(t *testing.T) {
	bin := modelplaneBinary(t)
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{Logger: quietLogger(t)}))
	tc := ts.GetDefaultClient()
	dsn, kind := storeDSN(t, t.TempDir())
	backend := []string{"--db", dsn, "--temporal-address", ts.GetFrontendHostPort(), "--namespace", ts.GetDefaultNamespace()}
	ps := newProcs(t)
	port := testkit.FreePorts(t, 1)
	ps.start("server", bin, childEnv("MODELPLANE_TOKENS="+tokensEnv(), sim.EnvForTests+"=1"), append([]string{"server", "--addr", fmt.Sprintf("127.0.0.1:%d", port)}, backend...)...)
	c := newAPIClient(fmt.Sprintf("http://127.0.0.1:%d", port), 32)
	eventually(t, "the API server", 2*time.Minute, func() (bool, string) { return c.ready(), "GET /readyz" })

	ctx := context.Background()
	st, sp := testkit.OpenStore(t, dsn)
	c.createTarget(t, "prod", "production")
	const good, bad = 20, 4
	steps := []int{20, 50, 100}
	// A bake much longer than a worker restart, so a promotion cannot
	// pass a whole step while the others are still busy.
	const bake = 15 * time.Second
	var ids []string
	model := map[string]string{}
	healthy := map[string]bool{}
	for i := 0; i < good+bad; i++ {
		m := fmt.Sprintf("crash-%02d", i)
		c.seedModel(t, m, modelplane.RiskMedium)
		if err := serveStable(ctx, st, sp, "prod", m, "v1"); err != nil {
			t.Fatal(err)
		}
		if i >= good {
			// The candidate errs on 50% of requests: the first analysis fails.
			if err := sp.SetHealth(ctx, "prod", m, "v2", modelplane.Health{ErrorRate: 0.5, LatencyP99Ms: 42, Drift: 0.01}); err != nil {
				t.Fatal(err)
			}
		}
		id := c.startCanary(t, m, "prod", steps, bake.String(), bake.String())
		ids, model[id], healthy[id] = append(ids, id), m, i < good
	}

	// The worker starts only now: every promotion meets it at its first stage.
	// The platform is the simulator, which a worker serves only when told.
	startWorker := func() *proc {
		return ps.start("worker", bin, childEnv(sim.EnvForTests+"=1"), append([]string{"worker"}, backend...)...)
	}
	worker := startWorker()
	killedAt := map[string]map[string]bool{}
	for _, id := range ids {
		killedAt[id] = map[string]bool{}
	}
	voted := map[string]bool{}
	var votes sync.WaitGroup
	voteErrs := make(chan error, len(ids))
	firstSeen := map[string]time.Time{} // promotion and stage key → when a poll first saw it
	kills, midActivity := 0, 0
	began := time.Now()
	deadline := began.Add(20 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("promotions did not finish within 20 minutes of crashes (%d kills)", kills)
		}
		cur, err := c.fetch(ids)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // polling interval
			continue
		}
		var running, fresh []modelplane.Promotion
		var toVote []string
		transient, barrier, overdue := false, true, false
		for _, id := range ids {
			p := cur[id]
			if modelplane.Terminal(p.Status) {
				continue
			}
			running = append(running, p)
			k := stageKey(p)
			if !killedAt[id][k] {
				fresh = append(fresh, p)
				transient = transient || p.Stage == modelplane.StageRegistering || p.Stage == modelplane.StageValidating
				if _, ok := firstSeen[id+" "+k]; !ok {
					firstSeen[id+" "+k] = time.Now()
				}
				overdue = overdue || time.Since(firstSeen[id+" "+k]) > bake/3
			}
			if p.Stage == modelplane.StageAwaitingApproval && killedAt[id][k] && !voted[id] {
				toVote = append(toVote, id)
			} else if !voted[id] {
				barrier = false
			}
		}
		if len(running) == 0 {
			break
		}
		if barrier && len(toVote) > 0 {
			// Every promotion was killed awaiting approval: now bob approves
			// them all at once, so they roll out together. The votes go on
			// beside the kills — a vote the worker dies under is retried.
			for _, id := range toVote {
				voted[id] = true
				votes.Add(1)
				go func() {
					defer votes.Done()
					if err := c.voteUntilCounted(id, "bob", deadline); err != nil {
						voteErrs <- err
					}
				}()
			}
			continue
		}
		// Kill when nothing is in flight; but a promotion must not bake
		// through a whole step unkilled while others keep the worker busy.
		byTransient := transient && midActivity < 2
		killNow := len(fresh) > 0 && (byTransient || overdue || quiet(ctx, tc, running))
		if !killNow {
			time.Sleep(100 * time.Millisecond) // polling interval
			continue
		}
		worker.kill()
		kills++
		if byTransient {
			midActivity++
		}
		// No worker runs, so nothing moves: where the API shows each
		// promotion now is where the crash caught it.
		var frozen map[string]modelplane.Promotion
		eventually(t, "the promotions after a kill", time.Minute, func() (bool, string) {
			var err error
			frozen, err = c.fetch(ids)
			return err == nil, fmt.Sprint(err)
		})
		for _, id := range ids {
			if p := frozen[id]; !modelplane.Terminal(p.Status) {
				killedAt[id][stageKey(p)] = true
			}
		}
		worker = startWorker()
	}
	votes.Wait()
	close(voteErrs)
	for err := range voteErrs {
		t.Error(err)
	}
	final, err := c.fetch(ids)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("store %s: %d SIGKILLs of the worker (%d on sight of registering or validating) in %s", kind, kills, midActivity, time.Since(began).Round(time.Second))

	want := map[bool][]string{
		true:  append([]string{modelplane.StageAwaitingApproval}, append(prefixed("canary ", canarySplits("v1", "v2", steps...)), "monitoring v2=100")...),
		false: {modelplane.StageAwaitingApproval, "canary " + canarySplits("v1", "v2", steps[0])[0]},
	}
	opportunistic := map[string]int{}
	for _, id := range ids {
		p, m := final[id], model[id]
		var muts []string
		switch {
		case healthy[id]:
			muts = canarySplits("v1", "v2", steps...)
			if p.Status != modelplane.StatusSucceeded {
				t.Errorf("%s: %s (%s), want succeeded", m, p.Status, p.Reason)
			}
		default:
			muts = append(canarySplits("v1", "v2", steps[0]), "v1=100")
			if p.Status != modelplane.StatusRolledBack || !strings.Contains(p.Reason, "error_rate") {
				t.Errorf("%s: %s (%s), want rolled_back by the error-rate analysis", m, p.Status, p.Reason)
			}
		}
		got, err := trafficOf(ctx, sp, "prod", m, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTraffic(got, muts...); err != nil {
			t.Errorf("%s: %v", m, err)
		}
		dep, _, err := st.GetDeployment(ctx, m, "prod")
		if wantStable := map[bool]string{true: "v2", false: "v1"}[healthy[id]]; err != nil || dep.Stable != wantStable || dep.Traffic.String() != wantStable+"=100" {
			t.Errorf("%s: deployment %+v (%v), want %s serving 100%%", m, dep, err, wantStable)
		}
		if n, err := stageAudit(ctx, st, id); err != nil || n != len(p.History) {
			t.Errorf("%s: %d stage audit records for %d history entries (%v)", m, n, len(p.History), err)
		}
		var missed []string
		for _, k := range want[healthy[id]] {
			if !killedAt[id][k] {
				missed = append(missed, k)
			}
		}
		if len(missed) > 0 {
			t.Errorf("%s: the worker was never killed at %v (killed at %v)", m, missed, keys(killedAt[id]))
		}
		for k := range killedAt[id] {
			if strings.HasPrefix(k, modelplane.StageRegistering) || strings.HasPrefix(k, modelplane.StageValidating) || strings.HasPrefix(k, modelplane.StageRollingBack) {
				opportunistic[k]++
			}
		}
	}
	t.Logf("promotions killed mid-activity at transient stages: %v", opportunistic)
}

// quiet reports whether no promotion has a workflow task or an activity in
// flight: a SIGKILL now interrupts waits only (timers, approvals).
func quiet(ctx context.Context, tc client.Client, running []modelplane.Promotion) bool {
	busy := make([]bool, len(running))
	var wg sync.WaitGroup
	for i, p := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := tc.DescribeWorkflowExecution(ctx, p.WorkflowID, "")
			busy[i] = err != nil || len(d.GetPendingActivities()) > 0 || d.GetPendingWorkflowTask() != nil
		}()
	}
	wg.Wait()
	return !slices.Contains(busy, true)
}

func prefixed(prefix string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = prefix + s
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
