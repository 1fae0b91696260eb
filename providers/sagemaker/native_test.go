package sagemaker_test

import (
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
)

var nativeCfg = []string{"rollout", "native", "alarms", "churn-5xx, churn-latency", "native_step_percent", "20", "native_wait", "2m"}

func TestCapabilities(t *testing.T) {
	got := modelplane.CapabilitiesOf(sagemaker.New(sagemaker.Options{}))
	if got != (modelplane.Capabilities{Shadow: true, Native: true, Pipelines: true}) {
		t.Fatalf("capabilities = %+v, want all", got)
	}
}

func TestNativeCanarySucceeds(t *testing.T) {
	f := newFixture(t, nativeCfg, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	op, err := f.p.StartNative(ctx, f.tg, model, "v1", "v2", "native-1")
	if err != nil {
		t.Fatal(err)
	}
	if st := f.wait(t, op); !st.Done || st.Failed {
		t.Fatalf("native rollout = %+v, want success", st)
	}
	if got := f.state(t).Traffic.String(); got != "v2=100" {
		t.Fatalf("traffic after native rollout = %s, want v2=100", got)
	}
	dc := f.srv.LastDeploymentConfig(f.endpoint())
	bg, _ := dc["BlueGreenUpdatePolicy"].(map[string]any)
	tr, _ := bg["TrafficRoutingConfiguration"].(map[string]any)
	size, _ := tr["CanarySize"].(map[string]any)
	if tr["Type"] != "CANARY" || tr["WaitIntervalInSeconds"] != float64(120) || size["Value"] != float64(20) || size["Type"] != "CAPACITY_PERCENT" {
		t.Fatalf("traffic routing sent = %v", tr)
	}
	ar, _ := dc["AutoRollbackConfiguration"].(map[string]any)
	if alarms, _ := ar["Alarms"].([]any); len(alarms) != 2 {
		t.Fatalf("rollback alarms sent = %v, want the 2 configured", ar)
	}
	// A retried StartNative (same mutation id) starts nothing new.
	updates := f.srv.Calls("UpdateEndpoint")
	op2, err := f.p.StartNative(ctx, f.tg, model, "v1", "v2", "native-1")
	if err != nil || f.srv.Calls("UpdateEndpoint") != updates {
		t.Fatalf("replayed StartNative: err %v, UpdateEndpoint calls %d → %d", err, updates, f.srv.Calls("UpdateEndpoint"))
	}
	if st := f.wait(t, op2); st.Failed {
		t.Fatalf("replayed op reports %+v", st)
	}
}

func TestNativeAlarmRollbackIsDetected(t *testing.T) {
	f := newFixture(t, nativeCfg, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	f.srv.FireAlarm("churn-latency")
	op, err := f.p.StartNative(ctx, f.tg, model, "v1", "v2", "native-1")
	if err != nil {
		t.Fatal(err)
	}
	st := f.wait(t, op)
	if !st.Done || !st.Failed || !st.RolledBack || st.NeedsHuman {
		t.Fatalf("status = %+v, want a silent rollback", st)
	}
	if !strings.Contains(st.Reason, "churn-latency") {
		t.Fatalf("reason %q does not carry SageMaker's failure reason", st.Reason)
	}
	if got := f.state(t).Traffic.String(); got != "v1=100" {
		t.Fatalf("traffic after rollback = %s, want v1=100", got)
	}
	// The orchestrator's rollback step is then a no-op SetTraffic.
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "rollback")
}

func TestNativeRollbackFailureNeedsHuman(t *testing.T) {
	f := newFixture(t, nativeCfg, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	f.srv.FireAlarm("churn-5xx")
	f.srv.FailRollbacks()
	op, err := f.p.StartNative(ctx, f.tg, model, "v1", "v2", "native-1")
	if err != nil {
		t.Fatal(err)
	}
	st := f.wait(t, op)
	if !st.Done || !st.Failed || !st.NeedsHuman {
		t.Fatalf("status = %+v, want NeedsHuman", st)
	}
	if !strings.Contains(st.Reason, "UpdateRollbackFailed") {
		t.Fatalf("reason %q does not name the state", st.Reason)
	}
}

func TestNativeManualRollbackReturnsToStableConfig(t *testing.T) {
	f := newFixture(t, nativeCfg, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	_, cfgV1 := f.srv.EndpointStatus(f.endpoint())
	op, err := f.p.StartNative(ctx, f.tg, model, "v1", "v2", "native-1")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, op)
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "guardian-rollback")
	if _, cfg := f.srv.EndpointStatus(f.endpoint()); cfg != cfgV1 {
		t.Fatalf("rollback went to config %s, want the stable's %s", cfg, cfgV1)
	}
	if got := f.state(t).Traffic.String(); got != "v1=100" {
		t.Fatalf("traffic = %s", got)
	}
}
