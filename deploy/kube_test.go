package deploy_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane/internal/kubetest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// TestMain stops the kube-apiserver if a test started one.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// TestHelmServerDryRun sends every rendered object to a real kube-apiserver
// (internal/kubetest) with dryRun=All and fieldValidation=Strict: the
// server's own defaulting, validation and admission, nothing persisted. The
// ServiceMonitor CRD is installed first so its objects are validated too.
// Integration only (make test-integration sets MODELPLANE_REQUIRE_KUBE=1).
func TestHelmServerDryRun(t *testing.T) {
	if os.Getenv("MODELPLANE_REQUIRE_KUBE") != "1" {
		t.Skip("integration test: set MODELPLANE_REQUIRE_KUBE=1 (make test-integration) after hack/ensure-kube.sh")
	}
	helm := tool(t, "helm")
	crdPath := tool(t, smCRDFile)
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The ServiceMonitor CRD, as the Prometheus Operator installs it.
	crd := decodeUnstructured(t, mustRead(t, crdPath))
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := c.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceMonitor CRD: %v", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	smKind := schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}
	for {
		mapper.Reset()
		if _, err := mapper.RESTMapping(smKind, "v1"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("ServiceMonitor CRD never served")
		case <-time.After(200 * time.Millisecond):
		}
	}

	create := func(doc string) error {
		obj := decodeUnstructured(t, []byte(doc))
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return err
		}
		obj.SetNamespace(ns)
		_, err = c.Dynamic.Resource(m.Resource).Namespace(ns).Create(ctx, obj,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
		return err
	}
	var full string
	for name, args := range valueSets {
		t.Run(name, func(t *testing.T) {
			text, err := run(t, helmEnv(t), helm, append([]string{"template", release, chartDir, "--namespace", ns}, args...)...)
			if err != nil {
				t.Fatal(text)
			}
			if name == "full" {
				full = text
			}
			n := 0
			for _, doc := range yamlDocSep.Split(text, -1) {
				if strings.TrimSpace(stripComments(doc)) == "" {
					continue
				}
				n++
				if err := create(doc); err != nil {
					t.Errorf("the API server rejects:\n%s\n%v", firstLine(strings.TrimSpace(stripComments(doc))), err)
				}
			}
			t.Logf("%d objects accepted (dry run, strict)", n)
		})
	}

	// Negative controls: the server must refuse broken copies.
	docOf := func(kind, name string) string {
		for _, doc := range yamlDocSep.Split(full, -1) {
			if strings.Contains(doc, "kind: "+kind+"\n") && strings.Contains(doc, "name: "+name+"\n") {
				return doc
			}
		}
		t.Fatalf("no %s %s rendered", kind, name)
		return ""
	}
	for name, c := range map[string]struct{ kind, name, old, new, want string }{
		"unknown field":         {"Deployment", fullname + "-api", "readinessProbe:", "readynessProbe:", "unknown field"},
		"port out of range":     {"Service", fullname + "-api", "port: 8080", "port: 80800", "Invalid value"},
		"monitor unknown field": {"ServiceMonitor", fullname + "-worker", "scrapeTimeout:", "scrapeTimeoutSeconds:", "unknown field"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			err := create(mustReplace(t, docOf(c.kind, c.name), c.old, c.new))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("the API server accepted a broken %s (err %v), want %q", c.kind, err, c.want)
			}
		})
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeUnstructured(t testing.TB, doc []byte) *unstructured.Unstructured {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return obj
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
