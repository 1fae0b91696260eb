// Package kservetest plays the KServe controller against a real
// kube-apiserver (no controller runs in tests): it writes InferenceService
// status the way KServe does in serverless mode.
package kservetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// inferenceServices is KServe's resource (kept here so the provider's own
// tests can import this package).
var inferenceServices = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// Controller plays the KServe controller (serverless mode) for one
// namespace by writing the status subresource, since no controller runs
// against the test apiserver. Each generation takes two steps:
//
//  1. the controller observes it: status.observedGeneration catches up and,
//     if the predictor's template changed, a new revision is created;
//     Ready is Unknown while it starts;
//  2. the revision is ready (Ready True, traffic from canaryTrafficPercent)
//     or, if its storageUri contains "fail", failed (Ready False,
//     RevisionFailed) with traffic left where it was.
type Controller struct {
	dc dynamic.Interface
	ns string

	mu sync.Mutex
	// per InferenceService: template of the latest revision and a counter.
	template map[string]string
	count    map[string]int
}

// New plays the controller for namespace ns.
func New(dc dynamic.Interface, ns string) *Controller {
	return &Controller{dc: dc, ns: ns, template: map[string]string{}, count: map[string]int{}}
}

// Advance is providertest.Env.Advance: one controller step.
func (f *Controller) Advance(t *testing.T) {
	t.Helper()
	if err := f.Step(context.Background()); err != nil {
		t.Fatalf("fake KServe: %v", err)
	}
}

// Step moves every InferenceService in the namespace one step on.
func (f *Controller) Step(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	list, err := f.dc.Resource(inferenceServices).Namespace(f.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for i := range list.Items {
		if err := f.step(ctx, &list.Items[i]); err != nil {
			return fmt.Errorf("%s: %w", list.Items[i].GetName(), err)
		}
	}
	return nil
}

// Run steps every interval until ctx ends, as a controller in the
// background does while a workflow polls; failures go to logf.
func (f *Controller) Run(ctx context.Context, interval time.Duration, logf func(string, ...any)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := f.Step(ctx); err != nil && ctx.Err() == nil {
				logf("fake KServe: %v", err)
			}
		}
	}
}

func cond(typ, status, reason, msg string) map[string]any {
	c := map[string]any{"type": typ, "status": status, "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	if reason != "" {
		c["reason"] = reason
	}
	if msg != "" {
		c["message"] = msg
	}
	return c
}

func (f *Controller) step(ctx context.Context, u *unstructured.Unstructured) error {
	name, gen := u.GetName(), u.GetGeneration()
	obsGen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	pred, _, _ := unstructured.NestedMap(u.Object, "status", "components", "predictor")
	if pred == nil {
		pred = map[string]any{}
	}
	ready := ""
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m := c.(map[string]any); m["type"] == "Ready" {
			ready, _ = m["status"].(string)
		}
	}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec", "predictor")
	canary, hasCanary, _ := unstructured.NestedInt64(u.Object, "spec", "predictor", "canaryTrafficPercent")
	delete(spec, "canaryTrafficPercent")
	tplJSON, _ := json.Marshal(spec)
	uri, _, _ := unstructured.NestedString(u.Object, "spec", "predictor", "model", "storageUri")

	switch {
	case obsGen < gen: // step 1
		if f.template[name] != string(tplJSON) {
			f.template[name] = string(tplJSON)
			f.count[name]++
			pred["latestCreatedRevision"] = fmt.Sprintf("%s-predictor-%05d", name, f.count[name])
		}
		conds = []any{cond("PredictorReady", "Unknown", "Deploying", ""), cond("Ready", "Unknown", "Deploying", "")}
		obsGen = gen
	case ready == "Unknown": // step 2
		created, _ := pred["latestCreatedRevision"].(string)
		if strings.Contains(uri, "fail") {
			msg := fmt.Sprintf("Revision %q failed with message: model %s could not be loaded.", created, uri)
			conds = []any{cond("PredictorReady", "False", "RevisionFailed", msg), cond("Ready", "False", "RevisionFailed", msg)}
			break
		}
		pred["latestReadyRevision"] = created
		rolled, _ := pred["latestRolledoutRevision"].(string)
		if !hasCanary || rolled == "" || rolled == created || canary >= 100 {
			if rolled != created {
				if rolled != "" {
					pred["previousRolledoutRevision"] = rolled
				}
				pred["latestRolledoutRevision"] = created
			}
			pred["traffic"] = []any{map[string]any{"revisionName": created, "latestRevision": true, "percent": int64(100)}}
		} else {
			pred["traffic"] = []any{
				map[string]any{"revisionName": created, "latestRevision": true, "percent": canary, "tag": "latest"},
				map[string]any{"revisionName": rolled, "latestRevision": false, "percent": 100 - canary, "tag": "prev"},
			}
		}
		conds = []any{cond("PredictorReady", "True", "", ""), cond("Ready", "True", "", "")}
	default:
		return nil // settled
	}
	status := map[string]any{
		"observedGeneration": obsGen,
		"conditions":         conds,
		"components":         map[string]any{"predictor": pred},
	}
	u.Object["status"] = status
	_, err := f.dc.Resource(inferenceServices).Namespace(f.ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	return err
}

// Revisions reports how many revisions the controller created for an InferenceService.
func (f *Controller) Revisions(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[name]
}
