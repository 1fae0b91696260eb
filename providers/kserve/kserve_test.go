package kserve

import (
	"context"
	"os"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/kubetest"
	"github.com/modelplane/modelplane/providers/kserve/kservetest"
	"github.com/modelplane/modelplane/providers/providertest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// kenv is one test's namespace on the shared apiserver, a provider and the
// fake KServe controller for it.
type kenv struct {
	providertest.Env
	cluster *kubetest.Cluster
	ctrl    *kservetest.Controller
	p       *Provider
	ns      string
}

func newKEnv(t *testing.T) kenv {
	t.Helper()
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	ctrl := kservetest.New(c.Dynamic, ns)
	p := New(Options{RestConfig: c.Config})
	return kenv{
		Env: providertest.Env{
			Provider: p,
			Target: modelplane.Target{Name: "kube", Provider: Name, Config: map[string]string{
				KeyNamespace: ns, KeyModelFormat: "sklearn",
			}},
			Model:   "fraud",
			Advance: ctrl.Advance,
		},
		cluster: c, ctrl: ctrl, p: p, ns: ns,
	}
}

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env { return newKEnv(t).Env })
}

var ctx = context.Background()

func (e kenv) register(t *testing.T, versions ...string) {
	t.Helper()
	for _, v := range versions {
		_, err := e.p.RegisterVersion(ctx, e.Target, modelplane.Version{Model: e.Model, Version: v, ArtifactURI: "gs://models/" + e.Model + "/" + v})
		if err != nil {
			t.Fatalf("RegisterVersion(%s): %v", v, err)
		}
	}
}

// set changes traffic and waits for the fake controller to roll it out.
func (e kenv) set(t *testing.T, split modelplane.TrafficSplit, id string) modelplane.Op {
	t.Helper()
	op, err := e.p.SetTraffic(ctx, e.Target, e.Model, split, id)
	if err != nil {
		t.Fatalf("SetTraffic(%s): %v", split, err)
	}
	providertest.Settle(t, e.Env, op)
	return op
}

func (e kenv) isvc(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u, err := e.cluster.Dynamic.Resource(InferenceServices).Namespace(e.ns).Get(ctx, e.Model, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e kenv) state(t *testing.T) modelplane.EndpointState {
	t.Helper()
	st, err := e.p.State(ctx, e.Target, e.Model)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func nested(u *unstructured.Unstructured, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	return v
}
