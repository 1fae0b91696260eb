package promotions_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/promotions"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/server/temporaltest"
)

func TestPrepareNamesTheBadFieldAndRecordsNothing(t *testing.T) {
	kit := testkit.New(t, ":memory:")
	kit.Seed(t, modelplane.RiskMedium, "v1", "v2")
	svc := &promotions.Service{Store: kit.Store, Providers: kit.Activities.Providers}
	ctx := context.Background()
	ok := modelplane.PromotionRequest{Model: "churn", Version: "v2", Target: "prod", Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: []int{50, 100}}}
	for field, r := range map[string]modelplane.PromotionRequest{
		"model":             with(ok, func(r *modelplane.PromotionRequest) { r.Model = " " }),
		"version":           with(ok, func(r *modelplane.PromotionRequest) { r.Version = "v9" }),
		"target":            with(ok, func(r *modelplane.PromotionRequest) { r.Target = "moon" }),
		"approval_timeout":  with(ok, func(r *modelplane.PromotionRequest) { r.ApprovalTimeout = -1 }),
		"strategy.steps[1]": with(ok, func(r *modelplane.PromotionRequest) { r.Strategy.Steps = []int{50, 40} }),
	} {
		_, _, err := svc.Prepare(ctx, r, "alice", "")
		var e *modelplane.Error
		if !errors.As(err, &e) || e.Field != field {
			t.Errorf("%s: err = %v, want one naming %s", field, err, field)
		}
	}
	if ps, err := kit.Store.ListPromotions(ctx, store.PromotionFilter{Model: "churn"}); err != nil || len(ps) != 0 {
		t.Fatalf("bad requests recorded %d promotions (%v)", len(ps), err)
	}
}

func TestPrepareOncePerKeyAndStartOnce(t *testing.T) {
	kit := testkit.New(t, ":memory:")
	kit.Seed(t, modelplane.RiskMedium, "v1", "v2")
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	svc := &promotions.Service{Store: kit.Store, Providers: kit.Activities.Providers, Temporal: c, TaskQueue: "no-worker"}
	ctx := context.Background()
	r := modelplane.PromotionRequest{Model: "churn", Version: "v2", Target: "prod", Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}}
	p, created, err := svc.Prepare(ctx, r, "alice", "k-1")
	if err != nil || !created {
		t.Fatalf("prepare: created=%v err=%v", created, err)
	}
	if p.RequestedBy != "alice" || p.Stage != modelplane.StagePending || p.WorkflowID != workflows.PromotionWorkflowID(p.ID) || p.ApprovalTimeout == 0 {
		t.Fatalf("prepared %+v", p)
	}
	again, created, err := svc.Prepare(ctx, r, "alice", "k-1")
	if err != nil || created || again.ID != p.ID {
		t.Fatalf("the same key again: id %s created=%v err=%v, want %s replayed", again.ID, created, err, p.ID)
	}
	for i := 0; i < 2; i++ { // a second start (a retried webhook) is harmless
		if err := svc.Start(ctx, p); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	desc, err := c.DescribeWorkflowExecution(ctx, p.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if q := desc.GetExecutionConfig().GetTaskQueue().GetName(); q != "no-worker" {
		t.Fatalf("started on task queue %q", q)
	}
	if got := desc.GetExecutionConfig().GetUserMetadata().GetSummary(); got == nil || !strings.Contains(string(got.GetData()), "requested by alice") {
		t.Fatalf("summary = %s, want who asked", got.GetData())
	}
}

func TestStartWithoutTemporalSaysSo(t *testing.T) {
	kit := testkit.New(t, ":memory:")
	kit.Seed(t, modelplane.RiskMedium, "v1", "v2")
	svc := &promotions.Service{Store: kit.Store, Providers: kit.Activities.Providers}
	p, _, err := svc.Prepare(context.Background(), modelplane.PromotionRequest{Model: "churn", Version: "v2", Target: "prod", Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyDirect}}, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background(), p); err == nil || !strings.Contains(err.Error(), "Temporal") {
		t.Fatalf("start without a client: %v", err)
	}
}

func with(r modelplane.PromotionRequest, f func(*modelplane.PromotionRequest)) modelplane.PromotionRequest {
	f(&r)
	return r
}
