package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

var webhookSecret = []byte("mlflow-webhook-secret-for-tests")

// mlflowHarness is the API and a worker with an MLflow registry behind them.
func mlflowHarness(t *testing.T) (*harness, *mlflowtest.Server) {
	t.Helper()
	h := newHarness(t, false)
	reg := mlflowtest.NewServer(t)
	c, err := mlflow.New(mlflow.Options{TrackingURI: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	h.kit.Activities.MLflow = c
	h.kit.Activities.Policy = governance(t)
	id, _ := api.NewTokens([]api.Token{{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: []string{"growth"}}, {Name: "admin", Role: api.RoleAdmin, Secret: tokens["admin"], Teams: []string{"growth"}}})
	srv := httptest.NewServer((&api.Server{Store: h.kit.Store, Temporal: h.client, Auth: id, Policy: governance(t), Providers: h.kit.Activities.Providers,
		MLflow: c, MLflowWebhookSecret: webhookSecret}).Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.startWorker()
	h.kit.Seed(t, modelplane.RiskLow)
	reg.CreateModel("churn-xgb")
	return h, reg
}

func (h *harness) waitDone(id, want string) modelplane.Promotion {
	h.t.Helper()
	var p modelplane.Promotion
	h.waitFor(id+" "+want, 60*time.Second, func() bool {
		var err error
		p, err = h.kit.Store.GetPromotion(context.Background(), id)
		return err == nil && p.Stage == modelplane.StageDone
	})
	if p.Status != want {
		h.t.Fatalf("%s: %s (%s), want %s", id, p.Status, p.Reason, want)
	}
	return p
}

var quick = map[string]any{"type": "canary", "steps": []int{50, 100}, "bake": "200ms", "monitor_window": "200ms"}

// A promotion may name an MLflow version by alias: it is imported with its
// lineage and the lifecycle is mirrored back (challenger, then champion;
// the previous champion is superseded).
func TestMLflowPromotionImportsAndMirrors(t *testing.T) {
	h, reg := mlflowHarness(t)
	run := reg.CreateRun(mlflowtest.Run{Metrics: map[string]float64{"auc": 0.93}})
	reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: run, Source: "s3://models/churn-xgb/1"})
	reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: run, Source: "s3://models/churn-xgb/2"})
	c := h.kit.Activities.MLflow
	if err := c.SetRegisteredModelAlias(context.Background(), "churn-xgb", "candidate", "1"); err != nil {
		t.Fatal(err)
	}

	r := h.must(h.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "target": "prod", "mlflow": map[string]any{"name": "churn-xgb", "alias": "candidate"}, "strategy": quick}), 202)
	h.waitDone(r.body["id"].(string), modelplane.StatusSucceeded)
	v, err := h.kit.Store.GetVersion(context.Background(), "churn", "1")
	if err != nil || v.Lineage.Registry != "mlflow" || v.Lineage.RunID != run || v.Metrics["auc"] != 0.93 || v.ArtifactURI != "s3://models/churn-xgb/1" {
		t.Fatalf("imported version = %+v, %v", v, err)
	}
	if got, _ := reg.Alias("churn-xgb", "champion"); got != "1" {
		t.Fatalf("champion = %q after the first release, want 1", got)
	}

	r = h.must(h.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "target": "prod", "mlflow": map[string]any{"name": "churn-xgb", "version": "2"}, "strategy": quick}), 202)
	id := r.body["id"].(string)
	h.waitDone(id, modelplane.StatusSucceeded)
	champion, _ := reg.Alias("churn-xgb", "champion")
	challenger, hasChallenger := reg.Alias("churn-xgb", "challenger")
	tags := reg.Tags("churn-xgb", "2")
	if champion != "2" || hasChallenger || tags["modelplane.promotion_id"] != id || tags["modelplane.stage"] != "champion" || reg.Tags("churn-xgb", "1")["modelplane.stage"] != "superseded" {
		t.Fatalf("after v2: champion=%q challenger=%q(%v) tags(2)=%v tags(1)=%v", champion, challenger, hasChallenger, tags, reg.Tags("churn-xgb", "1"))
	}

	// Drift after the promotion: the guardian puts traffic back on 1, and
	// MLflow's champion alias follows it.
	h.waitGuardian()
	h.must(h.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.45}), 202)
	h.waitFor("traffic back on 1", 60*time.Second, func() bool { return h.kit.Traffic(t) == "1=100" })
	h.waitFor("champion back on 1", 60*time.Second, func() bool { got, _ := reg.Alias("churn-xgb", "champion"); return got == "1" })
	// The mirror moves the alias before it tags: wait for the tag, don't race it.
	h.waitFor("version 2 tagged rolled_back", 60*time.Second, func() bool { return reg.Tags("churn-xgb", "2")["modelplane.stage"] == "rolled_back" })

	// Naming a version both ways is refused, naming the field.
	bad := h.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "target": "prod", "version": "2", "mlflow": map[string]any{"name": "churn-xgb", "version": "2"}})
	if bad.status != 400 || bad.errField() != "version" {
		t.Fatalf("version and mlflow: %d %s", bad.status, bad.raw)
	}
	missing := h.call("POST", "/v1/promotions", "alice", map[string]any{"model": "churn", "target": "prod", "mlflow": map[string]any{"name": "churn-xgb", "alias": "nope"}})
	if missing.status != 400 || missing.errField() != "mlflow.alias" {
		t.Fatalf("missing alias: %d %s", missing.status, missing.raw)
	}
}

// Webhooks start promotions that targets' rules ask for; a forged, stale or
// replayed delivery starts nothing, and reconciliation catches a lost one
// without starting anything twice.
func TestMLflowWebhookAndReconciliation(t *testing.T) {
	h, reg := mlflowHarness(t)
	ctx := context.Background()
	tg, _ := h.kit.Store.GetTarget(ctx, "prod")
	tg.AutoPromote = []modelplane.AutoPromote{{MLflowModel: "churn-xgb", Model: "churn", Strategy: modelplane.RolloutStrategy{Type: "canary", Steps: []int{50, 100},
		Bake: modelplane.Duration(200 * time.Millisecond), MonitorWindow: modelplane.Duration(200 * time.Millisecond)}}}
	if err := h.kit.Store.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	hook := h.url + "/v1/webhooks/mlflow"
	run := reg.CreateRun(mlflowtest.Run{Metrics: map[string]float64{"auc": 0.91}})
	v1 := reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: run})

	forged, err := mlflowtest.Deliver(ctx, hook, []byte("not the secret"), "model_version", "created", map[string]any{"name": "churn-xgb", "version": v1})
	if err != nil || forged.StatusCode != 401 {
		t.Fatalf("forged delivery: %v %v", forged.StatusCode, err)
	}
	stale, _ := mlflowtest.DeliverWebhook(ctx, hook, mlflowtest.Webhook{Secret: webhookSecret, Timestamp: time.Now().Add(-time.Hour), Entity: "model_version", Action: "created", Data: map[string]any{"name": "churn-xgb", "version": v1}})
	if stale.StatusCode != 401 {
		t.Fatalf("stale delivery: %d", stale.StatusCode)
	}
	w := mlflowtest.Webhook{ID: "d-1", Secret: webhookSecret, Entity: "model_version", Action: "created", Data: map[string]any{"name": "churn-xgb", "version": v1}}
	resp, err := mlflowtest.DeliverWebhook(ctx, hook, w)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("delivery: %v %v", resp, err)
	}
	var res api.MLflowWebhookResult
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &res)
	if len(res.Promotions) != 1 {
		t.Fatalf("webhook started %v (%s), want one promotion", res.Promotions, body)
	}
	h.waitDone(res.Promotions[0], modelplane.StatusSucceeded)
	if replay, _ := mlflowtest.DeliverWebhook(ctx, hook, w); replay.StatusCode != http.StatusConflict {
		t.Fatalf("replayed delivery: %d, want 409", replay.StatusCode)
	}

	// Version 2's webhook is lost: the reconciliation schedule's workflow finds it.
	reg.CreateVersion("churn-xgb", mlflowtest.Version{RunID: run})
	for i := 0; i < 2; i++ { // the second pass must start nothing new
		run, err := h.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "reconcile-test", TaskQueue: workflows.TaskQueue}, workflows.MLflowReconcileWorkflow)
		if err != nil {
			t.Fatal(err)
		}
		var rr activities.ReconcileResult
		if err := run.Get(ctx, &rr); err != nil {
			t.Fatal(err)
		}
		if i == 0 && (len(rr.Start) != 1 || rr.Start[0].Version != "2") {
			t.Fatalf("reconciliation found %+v", rr)
		}
		if i == 0 {
			h.waitDone(rr.Start[0].ID, modelplane.StatusSucceeded)
		}
	}
	ps, _ := h.kit.Store.ListPromotions(ctx, store.PromotionFilter{Model: "churn"})
	if len(ps) != 2 {
		t.Fatalf("promotions = %d, want 2 (one per MLflow version, none twice)", len(ps))
	}
	if got, _ := reg.Alias("churn-xgb", "champion"); got != "2" {
		t.Fatalf("champion = %q, want 2", got)
	}
}
