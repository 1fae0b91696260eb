package workflows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
	"github.com/modelplane/modelplane/store"
)

// Traffic and MLflow's champion alias must agree at rest: when the alias
// cannot be moved, the traffic step is compensated and the promotion says so.
func TestChampionAliasFailureRestoresTraffic(t *testing.T) {
	e := newEnv(t, modelplane.RiskLow)
	reg := mlflowtest.NewServer(t)
	c, err := mlflow.New(mlflow.Options{TrackingURI: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.kit.Activities.MLflow = c
	reg.CreateModel("churn-xgb")
	ctx := context.Background()
	for _, v := range []string{"3", "4"} {
		// Our versions 3 and 4 are MLflow's 1 and 2.
		n := reg.CreateVersion("churn-xgb", mlflowtest.Version{})
		if _, err := e.kit.Store.CreateVersion(ctx, modelplane.Version{Model: "churn", Version: v, ArtifactURI: "s3://models/churn-xgb/" + v, Metrics: map[string]float64{"auc": 0.9},
			Lineage: modelplane.Lineage{Registry: mlflow.RegistryName, RegistryModel: "churn-xgb", RegistryVersion: n}}); err != nil {
			t.Fatal(err)
		}
	}
	e.kit.Serve(t, "3", "")
	reg.Fail("POST registered-models/alias", 500, 1000)
	p := e.run(t, promotionInput(t, e.kit, "4", canary(50, 100), modelplane.Analysis{}))
	if p.Status != modelplane.StatusFailed || !strings.Contains(p.Reason, "champion alias") || !strings.Contains(p.Reason, "traffic restored to 3") {
		t.Fatalf("got %s (%s)", p.Status, p.Reason)
	}
	if got := e.kit.Traffic(t); got != "3=100" {
		t.Fatalf("traffic = %s, want 3=100 after compensation", got)
	}
	recs, _ := e.kit.Store.ListAudit(ctx, store.AuditFilter{PromotionID: p.ID})
	found := false
	for _, r := range recs {
		found = found || (r.Action == "saga_compensated" && r.Decision == "traffic_restored")
	}
	if !found {
		t.Fatalf("no saga_compensated record in %d audit records", len(recs))
	}
}
