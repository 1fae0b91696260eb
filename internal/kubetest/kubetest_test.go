package kubetest

import (
	"context"
	"os"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func isvc(ns, name string, canary any) *unstructured.Unstructured {
	pred := map[string]any{"model": map[string]any{
		"modelFormat": map[string]any{"name": "sklearn"}, "storageUri": "s3://m/v1",
	}}
	if canary != nil {
		pred["canaryTrafficPercent"] = canary
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"predictor": pred},
	}}
}

// The server is real: it stores InferenceServices and validates them
// against the CRD's schema.
func TestClusterServesInferenceServicesWithSchema(t *testing.T) {
	c := Start(t)
	ns := c.Namespace(t)
	ctx := context.Background()
	res := c.Dynamic.Resource(InferenceServices).Namespace(ns)

	got, err := res.Create(ctx, isvc(ns, "ok", int64(10)), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got.GetGeneration() != 1 {
		t.Fatalf("generation = %d, want 1", got.GetGeneration())
	}
	_, err = res.Create(ctx, isvc(ns, "bad", "ten"), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("string canaryTrafficPercent: err = %v, want 422 Invalid", err)
	}
}

// Two tests share one server, each in its own namespace.
func TestNamespacesAreSeparate(t *testing.T) {
	c := Start(t)
	a, b := c.Namespace(t), c.Namespace(t)
	if a == b {
		t.Fatalf("namespaces repeat: %s", a)
	}
	if Start(t) != c {
		t.Fatal("Start started a second cluster")
	}
	ctx := context.Background()
	if _, err := c.Dynamic.Resource(InferenceServices).Namespace(a).Create(ctx, isvc(a, "x", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := c.Dynamic.Resource(InferenceServices).Namespace(b).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("namespace %s sees %d objects of %s", b, len(l.Items), a)
	}
}
