//go:build reliability

package reliability

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// Promotion flows the tests share, all through the API as alice and bob.

// startCanary asks for a canary of v2 and returns the promotion id.
func (c *apiClient) startCanary(t *testing.T, model, target string, steps []int, bake, monitor string) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(t, http.StatusAccepted, "POST", "/v1/promotions", "alice", map[string]any{
		"model": model, "version": "v2", "target": target,
		"strategy": map[string]any{"type": modelplane.StrategyCanary, "steps": steps, "bake": bake, "monitor_window": monitor},
	}, &acc)
	if acc.ID == "" {
		t.Fatalf("promotion of %s accepted without an id", model)
	}
	return acc.ID
}

// vote casts user's decision; a vote the workflow already counted (a retry
// after a lost answer) is not an error.
func (c *apiClient) vote(id, user, decision string) error {
	r, err := c.call("POST", "/v1/promotions/"+id+"/approvals", user, map[string]any{"decision": decision, "comment": "reliability suite"})
	if err != nil {
		return err
	}
	if r.status == http.StatusOK || (r.status == http.StatusConflict && strings.Contains(string(r.body), "already voted")) {
		return nil
	}
	return fmt.Errorf("%s's %s of %s: %s", user, decision, id, r)
}

// voteUntilCounted approves as user until the promotion shows the vote:
// the answer to a vote is lost when the worker dies while taking it.
func (c *apiClient) voteUntilCounted(id, user string, deadline time.Time) error {
	for {
		err := c.vote(id, user, "approve")
		if err == nil {
			return nil
		}
		if p, perr := c.promotion(id); perr == nil && slices.ContainsFunc(p.Approvals, func(a modelplane.Approval) bool { return a.Approver == user }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vote never counted: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}

// votes casts decisions concurrently: each waits for the workflow to take it.
func (c *apiClient) votes(t *testing.T, ids []string, user, decision string) {
	t.Helper()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.vote(id, user, decision)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fetch reads every promotion; an error means the API is not answering (yet).
func (c *apiClient) fetch(ids []string) (map[string]modelplane.Promotion, error) {
	out := make(map[string]modelplane.Promotion, len(ids))
	for _, id := range ids {
		p, err := c.promotion(id)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

// awaitAll polls until every promotion satisfies done and returns them.
func (c *apiClient) awaitAll(t *testing.T, what string, ids []string, timeout time.Duration, done func(modelplane.Promotion) bool) map[string]modelplane.Promotion {
	t.Helper()
	var ps map[string]modelplane.Promotion
	eventually(t, what, timeout, func() (bool, string) {
		got, err := c.fetch(ids)
		if err != nil {
			return false, err.Error()
		}
		ps = got
		var waiting []string
		for _, id := range ids {
			if p := got[id]; !done(p) {
				waiting = append(waiting, fmt.Sprintf("%s(%s %s/%s %s)", id, p.Model, p.Stage, p.Status, p.Traffic))
			}
		}
		if len(waiting) > 5 {
			waiting = append(waiting[:5], fmt.Sprintf("… %d more", len(waiting)-5))
		}
		return len(waiting) == 0, strings.Join(waiting, ", ")
	})
	return ps
}

func atApproval(p modelplane.Promotion) bool {
	return p.Stage == modelplane.StageAwaitingApproval || modelplane.Terminal(p.Status)
}

func terminal(p modelplane.Promotion) bool { return modelplane.Terminal(p.Status) }
