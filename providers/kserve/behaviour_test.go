package kserve

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

func TestServerSideApplyRecordsModelplaneAsOwner(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1", "v2")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	e.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m2")
	u := e.isvc(t)
	var owned string
	for _, mf := range u.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			owned = string(mf.FieldsV1.Raw)
		}
	}
	for _, f := range []string{`"f:canaryTrafficPercent"`, `"f:storageUri"`, `"f:modelplane.io/mutations"`} {
		if !strings.Contains(owned, f) {
			t.Errorf("apply entry of manager %q does not own %s: %s", FieldManager, f, owned)
		}
	}
	// Someone edits a field we own; the next apply takes it back (force).
	patch := []byte(`{"spec":{"predictor":{"canaryTrafficPercent":77}}}`)
	if _, err := e.cluster.Dynamic.Resource(InferenceServices).Namespace(e.ns).Patch(ctx, e.Model, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	e.set(t, modelplane.TrafficSplit{"v1": 80, "v2": 20}, "m3")
	if got := nested(e.isvc(t), "spec", "predictor", "canaryTrafficPercent"); got != int64(20) {
		t.Fatalf("canaryTrafficPercent = %v after a forced apply, want 20", got)
	}
}

func TestSchemaRejectsBadCanaryTypeAsInvalid(t *testing.T) {
	e := newKEnv(t)
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": "bad", "namespace": e.ns},
		"spec": map[string]any{"predictor": map[string]any{
			"canaryTrafficPercent": "ten",
			"model":                map[string]any{"modelFormat": map[string]any{"name": "sklearn"}, "storageUri": "s3://x"},
		}},
	}}
	_, err := e.cluster.Dynamic.Resource(InferenceServices).Namespace(e.ns).Apply(ctx, "bad", bad, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err == nil {
		t.Fatal("the CRD schema accepted a string canaryTrafficPercent")
	}
	got := apiError("apply InferenceService bad", err)
	if !errors.Is(got, modelplane.ErrInvalid) || !strings.Contains(got.Error(), "canaryTrafficPercent") {
		t.Fatalf("apply: apiError = %v, want ErrInvalid quoting the server's message", got)
	}
	// A merge patch meets the CRD's validation: 422 Invalid.
	good := bad.DeepCopy()
	_ = unstructured.SetNestedField(good.Object, int64(10), "spec", "predictor", "canaryTrafficPercent")
	if _, err := e.cluster.Dynamic.Resource(InferenceServices).Namespace(e.ns).Create(ctx, good, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"predictor":{"canaryTrafficPercent":"ten"}}}`)
	_, err = e.cluster.Dynamic.Resource(InferenceServices).Namespace(e.ns).Patch(ctx, "bad", types.MergePatchType, patch, metav1.PatchOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("merge patch with a string canaryTrafficPercent: %v, want 422", err)
	}
	if got := apiError("patch", err); !errors.Is(got, modelplane.ErrInvalid) {
		t.Fatalf("patch: apiError = %v, want ErrInvalid", got)
	}
}

func TestCanaryStepsThenPromote(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1", "v2")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	u := e.isvc(t)
	if _, has := u.Object["spec"].(map[string]any)["predictor"].(map[string]any)["canaryTrafficPercent"]; has {
		t.Fatal("first deployment sets canaryTrafficPercent")
	}
	if uri := nested(u, "spec", "predictor", "model", "storageUri"); uri != "gs://models/fraud/v1" {
		t.Fatalf("storageUri = %v", uri)
	}
	for _, w := range []int{10, 50} {
		e.set(t, modelplane.TrafficSplit{"v1": 100 - w, "v2": w}, fmt.Sprintf("step-%d", w))
		u = e.isvc(t)
		if got := nested(u, "spec", "predictor", "canaryTrafficPercent"); got != int64(w) {
			t.Fatalf("canaryTrafficPercent = %v, want %d", got, w)
		}
		if uri := nested(u, "spec", "predictor", "model", "storageUri"); uri != "gs://models/fraud/v2" {
			t.Fatalf("canary storageUri = %v", uri)
		}
		if a := u.GetAnnotations(); a[AnnStable] != "v1" || a[AnnCandidate] != "v2" {
			t.Fatalf("annotations = %v", a)
		}
		if st := e.state(t); st.Traffic.String() != (modelplane.TrafficSplit{"v1": 100 - w, "v2": w}).String() || st.Busy != "" {
			t.Fatalf("state at %d%% = %+v", w, st)
		}
	}
	// Moving the canary 10 → 50 changed no template: still two revisions.
	if e.ctrl.Revisions(e.Model) != 2 {
		t.Fatalf("revisions created = %d, want 2", e.ctrl.Revisions(e.Model))
	}
	e.set(t, modelplane.TrafficSplit{"v2": 100}, "promote")
	u = e.isvc(t)
	if got := nested(u, "spec", "predictor", "canaryTrafficPercent"); got != nil {
		t.Fatalf("promotion left canaryTrafficPercent = %v", got)
	}
	if a := u.GetAnnotations(); a[AnnStable] != "v2" || a[AnnCandidate] != "" {
		t.Fatalf("annotations after promotion = %v", a)
	}
	if got := nested(u, "status", "components", "predictor", "previousRolledoutRevision"); got != "fraud-predictor-00001" {
		t.Fatalf("previousRolledoutRevision = %v", got)
	}
	if st := e.state(t); st.Traffic.String() != "v2=100" {
		t.Fatalf("state after promotion = %+v", st)
	}
	// The old stable can go now.
	if _, err := e.p.Retire(ctx, e.Target, e.Model, "v1"); err != nil {
		t.Fatalf("Retire(v1) after promotion: %v", err)
	}
}

func TestRollbackPinsTheRolledOutRevision(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1", "v2")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	e.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "canary")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "rollback")
	u := e.isvc(t)
	if got := nested(u, "spec", "predictor", "canaryTrafficPercent"); got != int64(0) {
		t.Fatalf("rollback canaryTrafficPercent = %v, want 0", got)
	}
	if st := e.state(t); st.Traffic.String() != "v1=100" {
		t.Fatalf("state after rollback = %+v", st)
	}
	if _, err := e.p.Retire(ctx, e.Target, e.Model, "v2"); err != nil {
		t.Fatalf("Retire(rolled-back candidate): %v", err)
	}
	// A direct switch to a third version replaces the spec.
	e.register(t, "v3")
	e.set(t, modelplane.TrafficSplit{"v3": 100}, "direct")
	if st := e.state(t); st.Traffic.String() != "v3=100" {
		t.Fatalf("state after direct switch = %+v", st)
	}
}

func TestSplitsKServeCannotServeAreInvalid(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1", "v2", "v3")
	if _, err := e.p.SetTraffic(ctx, e.Target, e.Model, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "x"); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("first deployment as a split: %v, want ErrInvalid", err)
	}
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	for _, split := range []modelplane.TrafficSplit{{"v2": 50, "v3": 50}, {"v1": 40, "v2": 30, "v3": 30}} {
		if _, err := e.p.SetTraffic(ctx, e.Target, e.Model, split, "bad"+split.String()); !errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", split, err)
		}
	}
}

func TestPollWaitsUntilStatusCatchesUp(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1")
	op, err := e.p.SetTraffic(ctx, e.Target, e.Model, modelplane.TrafficSplit{"v1": 100}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if want := e.ns + "/fraud@1"; op.ID != want {
		t.Fatalf("op = %q, want %q", op.ID, want)
	}
	poll := func() modelplane.OpStatus {
		st, err := e.p.Poll(ctx, e.Target, op)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := poll(); st.Done {
		t.Fatal("done before KServe observed the generation")
	}
	if st := e.state(t); st.Busy == "" || st.Traffic.String() != "v1=100" {
		t.Fatalf("state before the controller ran = %+v, want busy with the intended split", st)
	}
	e.ctrl.Advance(t) // observed, revision not ready
	if st := poll(); st.Done {
		t.Fatal("done while Ready is Unknown")
	}
	e.ctrl.Advance(t)
	if st := poll(); !st.Done || st.Failed {
		t.Fatalf("poll after ready = %+v", st)
	}
}

func TestFailedRevisionIsReportedAsFailed(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1")
	if _, err := e.p.RegisterVersion(ctx, e.Target, modelplane.Version{Model: e.Model, Version: "v2", ArtifactURI: "gs://models/fail/v2"}); err != nil {
		t.Fatal(err)
	}
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "first")
	op, err := e.p.SetTraffic(ctx, e.Target, e.Model, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "canary")
	if err != nil {
		t.Fatal(err)
	}
	e.ctrl.Advance(t)
	e.ctrl.Advance(t)
	st, err := e.p.Poll(ctx, e.Target, op)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Done || !st.Failed || !strings.Contains(st.Reason, "could not be loaded") {
		t.Fatalf("poll of a failed revision = %+v", st)
	}
	if s := e.state(t); s.Traffic.String() != "v1=100" || !strings.Contains(s.Busy, "RevisionFailed") {
		t.Fatalf("state with a failed canary = %+v", s)
	}
	// Rolling back replaces the failed spec (a 0% pin would stay not Ready).
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "rollback")
	u := e.isvc(t)
	if uri, c := nested(u, "spec", "predictor", "model", "storageUri"), nested(u, "spec", "predictor", "canaryTrafficPercent"); uri != "gs://models/fraud/v1" || c != nil {
		t.Fatalf("rollback after a failed canary: storageUri %v, canaryTrafficPercent %v", uri, c)
	}
	if s := e.state(t); s.Traffic.String() != "v1=100" || s.Busy != "" {
		t.Fatalf("state after rollback = %+v", s)
	}
}

func TestLateReplayWritesNothing(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1", "v2")
	e.set(t, modelplane.TrafficSplit{"v1": 100}, "a")
	e.set(t, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "b")
	before := e.isvc(t).GetResourceVersion()
	if _, err := e.p.SetTraffic(ctx, e.Target, e.Model, modelplane.TrafficSplit{"v1": 100}, "a"); err != nil {
		t.Fatal(err)
	}
	if after := e.isvc(t).GetResourceVersion(); after != before {
		t.Fatalf("a replayed mutation wrote the InferenceService (resourceVersion %s → %s)", before, after)
	}
	// The ring is bounded.
	for i := 0; i < ringSize+8; i++ {
		split := modelplane.TrafficSplit{"v1": 50 + i%2*10, "v2": 50 - i%2*10}
		if _, err := e.p.SetTraffic(ctx, e.Target, e.Model, split, "r"+string(rune('A'+i))); err != nil {
			t.Fatal(err)
		}
	}
	ring := strings.Split(e.isvc(t).GetAnnotations()[AnnMutations], ",")
	if len(ring) != ringSize || ring[len(ring)-1] != digest("r"+string(rune('A'+ringSize+7))) {
		t.Fatalf("ring has %d entries (want %d), last %s", len(ring), ringSize, ring[len(ring)-1])
	}
}

func TestRegisteringAnotherArtifactUnderAVersionIsInvalid(t *testing.T) {
	e := newKEnv(t)
	e.register(t, "v1+build.7")
	_, err := e.p.RegisterVersion(ctx, e.Target, modelplane.Version{Model: e.Model, Version: "v1+build.7", ArtifactURI: "gs://elsewhere"})
	if !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("re-register with another URI: %v, want ErrInvalid", err)
	}
	if st := e.state(t); strings.Join(st.Versions, ",") != "v1+build.7" {
		t.Fatalf("versions = %v", st.Versions)
	}
}

// The production path: the client comes from the target's kubeconfig and context.
func TestClientFromTargetKubeconfig(t *testing.T) {
	e := newKEnv(t)
	rc := e.cluster.Config
	kc := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + rc.Host + `
    certificate-authority-data: ` + b64(rc.CAData) + `
users:
- name: admin
  user:
    token: ` + rc.BearerToken + `
contexts:
- name: other
  context: {cluster: test, user: nobody}
- name: test
  context: {cluster: test, user: admin}
current-context: other
`
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	p := New(Options{})
	tg := e.Target
	tg.Config = map[string]string{KeyNamespace: e.ns, KeyModelFormat: "sklearn", KeyKubeconfig: path, KeyContext: "test"}
	if _, err := p.RegisterVersion(ctx, tg, modelplane.Version{Model: "m", Version: "v1", ArtifactURI: "s3://m/v1"}); err != nil {
		t.Fatalf("RegisterVersion via kubeconfig: %v", err)
	}
	tg.Config[KeyContext] = "missing"
	if _, err := New(Options{}).State(ctx, tg, "m"); err == nil || !strings.Contains(err.Error(), "config.context") {
		t.Fatalf("unknown context: %v, want an error naming config.context", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
