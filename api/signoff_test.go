package api_test

import (
	"context"
	"testing"

	"github.com/modelplane/modelplane/worker"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/temporalserver"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

const serviceKey = "svc-key-0123456789abcdef"

// stampingFrontend is a frontend that verifies the governance users' tokens
// and stamps who sent each signal and update, as modelplane's own Temporal
// does; the harness's client and worker present the service key.
func stampingFrontend(t *testing.T) []temporaltest.TestServerOption {
	t.Helper()
	users, err := identity.NewTokens(func() []identity.TokenEntry {
		var out []identity.TokenEntry
		for _, u := range govUsers {
			out = append(out, identity.TokenEntry{Name: u.Name, Roles: []string{u.Role}, Teams: u.Teams, SHA256: identity.Digest(u.Secret)})
		}
		return out
	}())
	if err != nil {
		t.Fatal(err)
	}
	opts, err := (&temporalserver.Auth{Users: users, ServiceKeyDigests: []string{identity.Digest(serviceKey)}}).ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	return []temporaltest.TestServerOption{temporaltest.WithBaseServerOptions(opts...), temporaltest.WithBaseClientOptions(client.Options{HeadersProvider: worker.Bearer(serviceKey)})}
}

// TestStampedVotes: past the API, straight at a stamping frontend, a vote
// counts for the caller the frontend verified, whatever the payload claims
// (name, roles, method); the shipped policy and four-eyes judge that
// caller; votes through the API still count for the API's caller.
func TestStampedVotes(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, true, stampingFrontend(t)...)
	h.seed("medium")
	ctx := context.Background()
	as := func(name string) client.Client {
		for _, u := range govUsers {
			if u.Name == name {
				return h.ts.NewClientWithOptions(client.Options{HeadersProvider: worker.Bearer(u.Secret)})
			}
		}
		t.Fatalf("no user %s", name)
		return nil
	}
	forged := workflows.Vote{Approver: "carol", Decision: "approve", Method: modelplane.AuthOIDC, Roles: []string{modelplane.RoleApprover}, Teams: []string{"growth"}}

	// alice requested it and signals a vote claiming to be carol: four-eyes refuses alice.
	id := h.promote("alice", canaryBody("v2", []int{100}, "300ms"))
	h.waitStage(id, modelplane.StageAwaitingApproval)
	wid := workflows.PromotionWorkflowID(id)
	if err := as("alice").SignalWorkflow(ctx, wid, "", workflows.Approve, forged); err != nil {
		t.Fatal(err)
	}
	h.waitFor("alice's refused vote", govWait, func() bool {
		return len(h.audit(store.AuditFilter{PromotionID: id, Actor: "alice", Action: "approval_denied"})) == 1
	})
	// frank (team fraud) updates claiming carol: the policy refuses frank, visibly.
	upd := func(who string) error {
		handle, err := as(who).UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.Approve, Args: []any{forged}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = handle.Get(ctx, nil)
		}
		return err
	}
	if err := upd("frank"); err == nil {
		t.Fatal("frank's vote was accepted")
	}
	if p := h.promotion(id); len(p.Approvals) != 0 {
		t.Fatalf("refused votes were counted: %+v", p.Approvals)
	}
	// bob updates claiming carol: the vote is bob's, verified by his token.
	if err := upd("bob"); err != nil {
		t.Fatal(err)
	}
	p := h.waitEnded(id, modelplane.StatusSucceeded)
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "bob" || p.Approvals[0].Method != modelplane.AuthToken || p.Approvals[0].Via != "update" {
		t.Fatalf("approvals = %+v, want bob's by update, verified by token", p.Approvals)
	}
	if recs := h.audit(store.AuditFilter{PromotionID: id, Actor: "carol"}); len(recs) != 0 {
		t.Fatalf("the name in the payload got records: %+v", recs)
	}

	// Through the API (stamped as modelplane's service) the API's caller votes.
	id = h.promote("alice", canaryBody("v1", []int{100}, "300ms"))
	h.waitStage(id, modelplane.StageAwaitingApproval)
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "carol", map[string]any{"decision": "approve"}), 200)
	p = h.waitEnded(id, modelplane.StatusSucceeded)
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "carol" || p.Approvals[0].Method != modelplane.AuthToken {
		t.Fatalf("API approvals = %+v", p.Approvals)
	}

	// A rollback signal claiming to come from carol is bob's.
	id = h.promote("alice", canaryBody("v2", []int{50, 100}, "1m"))
	h.waitStage(id, modelplane.StageAwaitingApproval)
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "carol", map[string]any{"decision": "approve"}), 200)
	h.waitStage(id, modelplane.StageCanary)
	if err := as("bob").SignalWorkflow(ctx, workflows.PromotionWorkflowID(id), "", workflows.Rollback, workflows.RollbackRequest{Actor: "carol", Reason: "error budget"}); err != nil {
		t.Fatal(err)
	}
	p = h.waitEnded(id, modelplane.StatusRolledBack)
	if p.Reason != "manual rollback by bob: error budget" {
		t.Fatalf("rollback reason %q, want it attributed to bob", p.Reason)
	}
}
