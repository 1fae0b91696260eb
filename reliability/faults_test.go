//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// TestProviderFaultsAreRetried runs canaries while 30% of the platform's
// answers are faults — 503s, throttling, timeouts that did or did not apply
// the change, and replies lost after the change was applied — and every
// operation takes a poll to settle. Every promotion still succeeds, each
// traffic step is applied exactly once (the retried mutation ids are
// deduplicated by the platform), and the audit matches the history.
func TestProviderFaultsAreRetried(t *testing.T) {
	s := newStack(t, stackConfig{faults: faultPlan{failOn: thirtyPercent}, settle: 1})
	ctx := context.Background()
	s.api.createTarget(t, "prod", "production")
	const n = 10
	steps := []int{25, 50, 100}
	models := make([]string, n)
	ids := make([]string, n)
	for i := range models {
		models[i] = fmt.Sprintf("faulty-%02d", i)
		s.api.seedModel(t, models[i], modelplane.RiskMedium)
		if err := serveStable(ctx, s.store, s.sim, "prod", models[i], "v1"); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range models {
		ids[i] = s.api.startCanary(t, m, "prod", steps, "1s", "2s")
	}
	s.api.awaitAll(t, "approval stage", ids, 5*time.Minute, atApproval)
	s.api.votes(t, ids, "bob", "approve")
	final := s.api.awaitAll(t, "every promotion to end", ids, 10*time.Minute, terminal)

	t.Logf("store %s; provider calls and injected faults:\n%s", s.dbKind, s.faults.summary())
	ours := map[string]bool{}
	for i, id := range ids {
		p := final[id]
		if p.Status != modelplane.StatusSucceeded || p.Traffic.String() != "v2=100" {
			t.Errorf("%s: %s/%s traffic %s: %s", models[i], p.Stage, p.Status, p.Traffic, p.Reason)
			continue
		}
		muts, err := trafficOf(ctx, s.sim, "prod", models[i], id)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTraffic(muts, canarySplits("v1", "v2", steps...)...); err != nil {
			t.Errorf("%s: %v", models[i], err)
		}
		for _, m := range muts {
			ours[m.ID] = true
		}
		if n, err := stageAudit(ctx, s.store, id); err != nil || n != len(p.History) {
			t.Errorf("%s: %d stage audit records for %d history entries (%v)", models[i], n, len(p.History), err)
		}
	}
	// The pattern puts each kind of fault on SetTraffic by its 11th call
	// (there are at least 30): none means the injector is not in the path.
	for _, k := range faultKinds {
		if s.faults.faultsOf("SetTraffic", k) == 0 {
			t.Errorf("no %s fault was injected into SetTraffic", k)
		}
	}
	lost := s.faults.lostMutations()
	if len(lost) == 0 {
		t.Fatal("no traffic change lost its reply: the deduplication path was not exercised")
	}
	for _, id := range lost {
		oc := s.faults.outcomesOf(id)
		// Applied, answer lost, retried with the same id until a call got an
		// answer — and the simulator holds that change once (checkTraffic).
		if len(oc) < 2 || oc[len(oc)-1] != "ok" || !ours[id] {
			t.Errorf("mutation %s: calls %v, recorded by a promotion: %v", id, oc, ours[id])
		}
	}
	t.Logf("%d traffic changes lost their reply after being applied and were retried under the same mutation id: %v", len(lost), lost)
}

// TestNonRetryableProviderErrorFailsFast removes the candidate from the
// platform while the promotion awaits approval, with the same 30% of faults
// as above. Moving traffic to it is refused as invalid: the promotion fails
// on that answer with the platform's reason, and the traffic change is not
// attempted again — the attempt count in Temporal's history equals the
// provider calls (injected faults included), and the last got the refusal.
func TestNonRetryableProviderErrorFailsFast(t *testing.T) {
	s := newStack(t, stackConfig{faults: faultPlan{failOn: thirtyPercent}})
	ctx := context.Background()
	s.api.createTarget(t, "prod", "production")
	s.api.seedModel(t, "strict", modelplane.RiskMedium)
	if err := serveStable(ctx, s.store, s.sim, "prod", "strict", "v1"); err != nil {
		t.Fatal(err)
	}
	id := s.api.startCanary(t, "strict", "prod", []int{25, 100}, "1s", "1s")
	s.api.awaitAll(t, "approval stage", []string{id}, 3*time.Minute, atApproval)
	tg, err := s.store.GetTarget(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	// Straight to the platform, past the fault injector: v2 is no longer deployed.
	if _, err := s.sim.Retire(ctx, tg, "strict", "v2"); err != nil {
		t.Fatal(err)
	}
	s.api.votes(t, []string{id}, "bob", "approve")
	p := s.api.awaitAll(t, "the promotion to end", []string{id}, 3*time.Minute, terminal)[id]

	const why = "version v2 is not deployed on prod"
	if p.Status != modelplane.StatusFailed || !strings.Contains(p.Reason, "traffic change failed") || !strings.Contains(p.Reason, why) {
		t.Fatalf("promotion ended %s: %q; want failed, naming the traffic change and %q", p.Status, p.Reason, why)
	}
	if n, err := stageAudit(ctx, s.store, id); err != nil || n != len(p.History) {
		t.Errorf("%d stage audit records for %d history entries (%v)", n, len(p.History), err)
	}
	if muts, err := trafficOf(ctx, s.sim, "prod", "strict", id); err != nil || len(muts) != 0 {
		t.Fatalf("traffic changes applied: %v (%v); want none", muts, err)
	}
	if st, err := s.sim.State(ctx, tg, "strict"); err != nil || st.Traffic.String() != "v1=100" {
		t.Fatalf("traffic now %v (%v), want v1=100", st.Traffic, err)
	}

	// Every SetTraffic activity of the run, with its last attempt number.
	attempts := setTrafficAttempts(t, s, p.WorkflowID)
	if len(attempts) != 1 {
		t.Fatalf("SetTraffic activities: %v; want exactly one (nothing to roll back)", attempts)
	}
	for mid, a := range attempts {
		oc := s.faults.outcomesOf(mid)
		refused := slices.IndexFunc(oc, func(o string) bool { return strings.Contains(o, why) })
		if refused != len(oc)-1 || a.attempt != len(oc) || !a.nonRetryable {
			t.Fatalf("mutation %s: calls %v; history: attempt %d, non-retryable %v — want the refusal last, one attempt per call, not retried",
				mid, oc, a.attempt, a.nonRetryable)
		}
		// At most the plan's two faults in a row before the refusal.
		if a.attempt > 3 {
			t.Fatalf("mutation %s took %d attempts", mid, a.attempt)
		}
		t.Logf("mutation %s: calls %v; Temporal attempts %d; reason %q", mid, oc, a.attempt, p.Reason)
	}
}

type activityAttempt struct {
	attempt      int
	nonRetryable bool
}

// setTrafficAttempts reads the workflow's history: for each SetTraffic
// activity (by mutation id), the attempt it ended on and whether its failure
// was marked non-retryable.
func setTrafficAttempts(t *testing.T, s *stack, workflowID string) map[string]activityAttempt {
	t.Helper()
	it := s.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	byEvent := map[int64]string{} // scheduled event id → mutation id
	out := map[string]activityAttempt{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch a := ev.Attributes.(type) {
		case *historypb.HistoryEvent_ActivityTaskScheduledEventAttributes:
			if a.ActivityTaskScheduledEventAttributes.GetActivityType().GetName() != "SetTraffic" {
				continue
			}
			var in activities.TrafficInput
			if err := converter.GetDefaultDataConverter().FromPayloads(a.ActivityTaskScheduledEventAttributes.GetInput(), &in); err != nil {
				t.Fatal(err)
			}
			byEvent[ev.GetEventId()] = in.MutationID
			out[in.MutationID] = activityAttempt{}
		case *historypb.HistoryEvent_ActivityTaskStartedEventAttributes:
			if mid, ok := byEvent[a.ActivityTaskStartedEventAttributes.GetScheduledEventId()]; ok {
				at := out[mid]
				at.attempt = int(a.ActivityTaskStartedEventAttributes.GetAttempt())
				out[mid] = at
			}
		case *historypb.HistoryEvent_ActivityTaskFailedEventAttributes:
			if mid, ok := byEvent[a.ActivityTaskFailedEventAttributes.GetScheduledEventId()]; ok {
				at := out[mid]
				at.nonRetryable = a.ActivityTaskFailedEventAttributes.GetFailure().GetApplicationFailureInfo().GetNonRetryable()
				out[mid] = at
			}
		}
	}
	return out
}
