package kserve

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// InferenceServices is the KServe resource the provider writes.
var InferenceServices = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// Labels and annotations modelplane writes.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelISVC      = "modelplane.io/inferenceservice"
	annModel       = "modelplane.io/model"
	// AnnStable is the version of the last rolled-out revision.
	AnnStable = "modelplane.io/stable-version"
	// AnnCandidate is the version in the spec while it is not (yet) rolled
	// out: a canary, or one rolled back to 0%.
	AnnCandidate = "modelplane.io/candidate-version"
	// AnnRevisions maps Knative revision names to our versions (JSON).
	AnnRevisions = "modelplane.io/revisions"
	// AnnMutations is the ring of applied mutation-id digests.
	AnnMutations = "modelplane.io/mutations"
	// AnnVersion on spec.predictor.annotations gives every version a pod
	// template (so a revision) of its own, even two versions of one artifact.
	AnnVersion = "modelplane.io/version"
)

// observed is what one GET of an InferenceService says.
type observed struct {
	exists          bool
	name, namespace string
	resourceVersion string
	generation      int64
	observedGen     int64

	stable, candidate string
	canary            *int64
	revisions         map[string]string
	mutations         []string

	// specURI and specAnn are the predictor's storageUri and version
	// annotation. served is the version that storageUri holds by the
	// registry, once resolve ran (State): someone may have edited the spec
	// by hand, and then the annotations above no longer say what it runs.
	specURI, specAnn string
	served           string
	resolved         bool

	ready                              condition
	latestCreated, latestReady         string
	latestRolledout, previousRolledout string
	traffic                            []trafficTarget
}

type condition struct{ status, reason, message string }

type trafficTarget struct {
	revision string
	latest   bool
	percent  int64
	tag      string
}

// specVersion is the version the spec's storageUri holds.
func (o observed) specVersion() string {
	if o.candidate != "" {
		return o.candidate
	}
	return o.stable
}

// current: the controller has seen the latest spec.
func (o observed) current() bool { return o.exists && o.observedGen >= o.generation }

// ref names the object for messages.
func (o observed) ref() string { return o.namespace + "/" + o.name }

func getISVC(ctx context.Context, dc dynamic.Interface, c config) (observed, error) {
	u, err := dc.Resource(InferenceServices).Namespace(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// A missing CRD is also NotFound; the first write reports it.
		return observed{name: c.name, namespace: c.namespace}, nil
	}
	if err != nil {
		return observed{}, apiError(fmt.Sprintf("get InferenceService %s/%s", c.namespace, c.name), err)
	}
	return parseISVC(u), nil
}

func parseISVC(u *unstructured.Unstructured) observed {
	o := observed{
		exists: true, name: u.GetName(), namespace: u.GetNamespace(),
		resourceVersion: u.GetResourceVersion(), generation: u.GetGeneration(),
	}
	ann := u.GetAnnotations()
	o.stable, o.candidate = ann[AnnStable], ann[AnnCandidate]
	o.revisions = map[string]string{}
	_ = json.Unmarshal([]byte(ann[AnnRevisions]), &o.revisions)
	if s := ann[AnnMutations]; s != "" {
		o.mutations = strings.Split(s, ",")
	}
	if v, ok, _ := unstructured.NestedInt64(u.Object, "spec", "predictor", "canaryTrafficPercent"); ok {
		o.canary = &v
	}
	o.specURI, _, _ = unstructured.NestedString(u.Object, "spec", "predictor", "model", "storageUri")
	o.specAnn, _, _ = unstructured.NestedString(u.Object, "spec", "predictor", "annotations", AnnVersion)
	o.observedGen, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			o.ready = condition{status: str(m["status"]), reason: str(m["reason"]), message: str(m["message"])}
		}
	}
	pred, _, _ := unstructured.NestedMap(u.Object, "status", "components", "predictor")
	o.latestCreated, o.latestReady = str(pred["latestCreatedRevision"]), str(pred["latestReadyRevision"])
	o.latestRolledout, o.previousRolledout = str(pred["latestRolledoutRevision"]), str(pred["previousRolledoutRevision"])
	tr, _ := pred["traffic"].([]any)
	for _, x := range tr {
		m, _ := x.(map[string]any)
		t := trafficTarget{revision: str(m["revisionName"]), tag: str(m["tag"])}
		t.latest, _ = m["latestRevision"].(bool)
		switch p := m["percent"].(type) {
		case int64:
			t.percent = p
		case float64:
			t.percent = int64(p)
		}
		o.traffic = append(o.traffic, t)
	}
	return o
}

func str(v any) string { s, _ := v.(string); return s }

// revisionVersions maps revision names to versions: what was learned before
// (AnnRevisions), the revision of the current spec once the controller has
// seen it, and, for a revision learned nowhere, the rolled-out one is the
// stable version.
func (o observed) revisionVersions() map[string]string {
	m := make(map[string]string, len(o.revisions)+2)
	for r, v := range o.revisions {
		m[r] = v
	}
	if o.latestRolledout != "" && m[o.latestRolledout] == "" && o.stable != "" {
		m[o.latestRolledout] = o.stable
	}
	spec := o.specVersion()
	if o.resolved {
		spec = o.served // "" leaves a hand-made revision unattributed
	}
	if o.current() && o.latestCreated != "" && spec != "" {
		m[o.latestCreated] = spec
	}
	return m
}

// resolve finds the version the spec's storageUri holds in the registry
// (version → storageUri): the version annotation's, the annotations'
// version, or else the first registered one with that artifact.
func (o *observed) resolve(known map[string]string) {
	if o.specURI == "" {
		return
	}
	o.resolved = true
	for _, v := range []string{o.specAnn, o.specVersion()} {
		if v != "" && known[v] == o.specURI {
			o.served = v
			return
		}
	}
	names := make([]string, 0, len(known))
	for v := range known {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		if known[v] == o.specURI {
			o.served = v
			return
		}
	}
}

// learnedRevisions is what to store in AnnRevisions: the mapping for every
// revision the status still names (so the annotation stays small).
func (o observed) learnedRevisions() map[string]string {
	all := o.revisionVersions()
	keep := map[string]string{}
	names := []string{o.latestCreated, o.latestReady, o.latestRolledout, o.previousRolledout}
	for _, t := range o.traffic {
		names = append(names, t.revision)
	}
	for _, n := range names {
		if v := all[n]; n != "" && v != "" {
			keep[n] = v
		}
	}
	return keep
}

// versionRevisions lists the revisions known to run version, sorted.
func (o observed) versionRevisions(version string) []string {
	var out []string
	for r, v := range o.revisionVersions() {
		if v == version {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}
