package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
)

// Tool-call records are queried by tool, outcome and agent, and counted for
// the scorecard, on both dialects.
func TestToolCallQueries(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			now := time.Now().UTC()
			var recs []modelplane.AuditRecord
			for i, c := range []struct {
				tool, agent string
				outcome     modelplane.ToolOutcome
				explicit    bool
			}{
				{"echo", "agent-a", modelplane.ToolAllowed, true},
				{"echo", "agent-b", modelplane.ToolAllowed, true},
				{"delete", "agent-a", modelplane.ToolDenied, true},
				{"echo", "", modelplane.ToolBlocked, true},
				{"ghost", "agent-a", modelplane.ToolDenied, false}, // not in the contract: no policy asked
			} {
				r := modelplane.AuditRecord{Key: fmt.Sprintf("tool-call/%d", i), Time: now, Actor: "alice", Action: modelplane.AuditToolCall,
					Subject: "io.github.acme/notes/" + c.tool, Model: "io.github.acme/notes", Decision: string(c.outcome),
					Details: map[string]any{"tool": c.tool}}
				if c.agent != "" {
					r.Details["agent"] = c.agent
				}
				if c.explicit {
					r.Policy = &modelplane.PolicyDecision{ID: fmt.Sprint(i), Allow: c.outcome != modelplane.ToolDenied, Explicit: true}
				}
				recs = append(recs, r)
			}
			recs = append(recs, modelplane.AuditRecord{Key: "other", Action: "model_created", Actor: "alice", Details: map[string]any{"agent": "agent-a"}})
			if err := s.AppendAudit(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			count := func(f store.AuditFilter) int {
				got, err := s.ListAudit(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				return len(got)
			}
			for what, c := range map[string]struct {
				f    store.AuditFilter
				want int
			}{
				"by agent":         {store.AuditFilter{Action: modelplane.AuditToolCall, Agent: "agent-a"}, 3},
				"by tool":          {store.AuditFilter{Subject: "io.github.acme/notes/echo"}, 3},
				"by outcome":       {store.AuditFilter{Action: modelplane.AuditToolCall, Decision: "denied"}, 2},
				"agent and tool":   {store.AuditFilter{Agent: "agent-a", Subject: "io.github.acme/notes/echo"}, 1},
				"without calls":    {store.AuditFilter{ExcludeActions: []modelplane.AuditAction{modelplane.AuditToolCall}}, 1},
				"unknown agent":    {store.AuditFilter{Agent: "nobody"}, 0},
				"agent on any act": {store.AuditFilter{Agent: "agent-a"}, 4},
			} {
				if n := count(c.f); n != c.want {
					t.Errorf("%s: %d records, want %d", what, n, c.want)
				}
			}
			by, explicit, err := s.ToolCallCounts(ctx, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if by["allowed"] != 2 || by["denied"] != 2 || by["blocked"] != 1 || explicit != 4 {
				t.Fatalf("counts %v explicit %d", by, explicit)
			}
			if by, _, _ := s.ToolCallCounts(ctx, now.Add(time.Hour)); len(by) != 0 {
				t.Fatalf("counts after now: %v", by)
			}
		})
	}
}
