package providers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

func sagemakerPlatform(t *testing.T, extra ...string) (platform, *sagemakertest.Server) {
	prov, srv := sagemakertest.Provider(t)
	srv.SettleAfter(3)
	tg := sagemakertest.Target("sm-prod", extra...)
	endpoint := sagemaker.EndpointName(tg.Name, tg.Config, "churn")
	return platform{provider: prov, target: tg, artifacts: "s3://models",
		health: func(t *testing.T, v string, n, e5 int64, p99 float64) {
			srv.SetMetrics(endpoint, sagemaker.VariantName(v), sagemakertest.Metrics{Invocations: float64(n), Errors5XX: float64(e5), LatencyP99Ms: p99})
		}}, srv
}

func TestSageMakerLifecycle(t *testing.T) {
	p, srv := sagemakerPlatform(t)
	runLifecycle(t, p)
	// The model registry follows our approvals: every promoted version was approved.
	for _, v := range []string{"v1", "v2", "v3"} {
		approval, _, _, ok := srv.Package("churn", "modelplane churn version "+v)
		if !ok || approval != "Approved" {
			t.Errorf("model package of %s: approval %q (found %v), want Approved", v, approval, ok)
		}
	}
}

// In native mode SageMaker runs the canary; an alarm makes it roll back by
// itself, and modelplane must report that rollback with SageMaker's reason.
func TestSageMakerNativeCanaryAndSilentRollback(t *testing.T) {
	p, srv := sagemakerPlatform(t, modelplane.ConfigRollout, modelplane.RolloutNative, sagemaker.KeyAlarms, "churn-5xx", sagemaker.KeyNativePolicy, "canary")
	l := newLifecycle(t, p)
	if got := l.promote(t, "v1", canary(10, 100)); got.Status != modelplane.StatusSucceeded {
		t.Fatalf("first release: %s (%s)", got.Status, got.Reason)
	}
	good := l.promote(t, "v2", canary(10, 100))
	if good.Status != modelplane.StatusSucceeded || l.traffic(t) != "v2=100" {
		t.Fatalf("native canary v2: %s (%s), traffic %s", good.Status, good.Reason, l.traffic(t))
	}
	if recs := l.audit(t, good.ID); !hasAudit(recs, "native_rollout_started", modelplane.StrategyCanary) {
		t.Fatalf("the platform did not run the canary: %+v", recs)
	}

	srv.FireAlarm("churn-5xx")
	bad := l.promote(t, "v3", canary(10, 100))
	if bad.Status != modelplane.StatusRolledBack || !strings.Contains(bad.Reason, "churn-5xx") {
		t.Fatalf("alarm during native canary: %s (%s); want rolled_back naming the alarm", bad.Status, bad.Reason)
	}
	if got := l.traffic(t); got != "v2=100" {
		t.Fatalf("after SageMaker's rollback the endpoint serves %s", got)
	}
	if recs := l.audit(t, bad.ID); !hasAudit(recs, "rollback", "rolled_back") {
		t.Fatalf("rollback not audited: %+v", recs)
	}
}

func TestSageMakerStuckRollbackNeedsAHuman(t *testing.T) {
	p, srv := sagemakerPlatform(t, modelplane.ConfigRollout, modelplane.RolloutNative, sagemaker.KeyAlarms, "churn-5xx")
	l := newLifecycle(t, p)
	if got := l.promote(t, "v1", canary(10, 100)); got.Status != modelplane.StatusSucceeded {
		t.Fatalf("first release: %s (%s)", got.Status, got.Reason)
	}
	srv.FireAlarm("churn-5xx")
	srv.FailRollbacks()
	bad := l.promote(t, "v2", canary(10, 100))
	if bad.Status != modelplane.StatusFailed || !strings.Contains(bad.Reason, "needs a human") {
		t.Fatalf("stuck rollback: %s (%s); want failed asking for a human", bad.Status, bad.Reason)
	}
	if recs := l.audit(t, bad.ID); !hasAudit(recs, "rollback", "needs_human") {
		t.Fatalf("stuck rollback not audited: %+v", recs)
	}
}

// A target with retrain: pipeline starts the SageMaker Pipeline on drift;
// the request id is the event id, so a retried activity starts one run.
func TestSageMakerRetrainPipeline(t *testing.T) {
	p, srv := sagemakerPlatform(t, modelplane.ConfigRetrain, modelplane.RetrainPipeline, sagemaker.KeyPipeline, "churn-retrain")
	l := newLifecycle(t, p)
	in := activities.RetrainInput{EventID: "deployment/churn/sm-prod/retrain/7", Model: "churn", Target: p.target.Name, Version: "v2", Reason: "psi 0.41 > 0.3"}
	res, err := l.kit.Activities.RequestRetrain(context.Background(), in)
	if err != nil || !res.Sent || res.PipelineRun == "" {
		t.Fatalf("retrain = %+v, %v", res, err)
	}
	// A retry after a lost reply (the cooldown record is what dedupes across
	// events; the pipeline's token dedupes the same event).
	if _, err := l.kit.Activities.Providers.(modelplane.ProviderSet)[sagemaker.Name].(modelplane.Retrainer).StartRetrain(context.Background(), p.target,
		modelplane.RetrainRequest{Model: "churn", Version: "v2", Reason: in.Reason, RequestID: in.EventID}); err != nil {
		t.Fatal(err)
	}
	ex := srv.Executions()
	if len(ex) != 1 || ex[0].Pipeline != "churn-retrain" || ex[0].Parameters["model"] != "churn" || ex[0].Parameters["version"] != "v2" {
		t.Fatalf("pipeline executions = %+v, want one run of churn-retrain for churn v2", ex)
	}
}
