package kserve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelplane/modelplane"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// ringSize bounds AnnMutations. A workflow polls each change before the
// next, so a zombie attempt replays one of the last few ids, not the 33rd.
const ringSize = 32

// digest shortens a mutation id for the ring: 48 bits make an accidental
// match between two ids of one InferenceService negligible.
func digest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

func (o observed) applied(mutationID string) bool {
	return slices.Contains(o.mutations, digest(mutationID))
}

func (o observed) ringWith(mutationID string) string {
	r := append(slices.Clone(o.mutations), digest(mutationID))
	if len(r) > ringSize {
		r = r[len(r)-ringSize:]
	}
	return strings.Join(r, ",")
}

// applyISVC writes the whole of modelplane's intent with server-side apply.
// Fields modelplane applied before and leaves out now (canaryTrafficPercent
// on promotion, the candidate annotation) are removed by the server. The
// resourceVersion read before makes the write conditional: a concurrent
// writer turns it into a 409 Conflict, which the caller retries, so the
// mutation ring is never lost to a race.
func applyISVC(ctx context.Context, dc dynamic.Interface, c config, model string, cur observed, d desired, storageURI, mutationID string) (modelplane.Op, error) {
	revs, _ := json.Marshal(cur.learnedRevisions())
	ann := map[string]any{
		annModel:     model,
		AnnStable:    d.stable,
		AnnRevisions: string(revs),
		AnnMutations: cur.ringWith(mutationID),
	}
	if d.spec != d.stable {
		ann[AnnCandidate] = d.spec
	}
	meta := map[string]any{
		"name": c.name, "namespace": c.namespace,
		"labels":      map[string]any{labelManagedBy: FieldManager},
		"annotations": ann,
	}
	if cur.exists {
		meta["resourceVersion"] = cur.resourceVersion
	}
	mdl := map[string]any{
		"modelFormat": map[string]any{"name": c.modelFormat},
		"storageUri":  storageURI,
	}
	if c.runtime != "" {
		mdl["runtime"] = c.runtime
	}
	pred := map[string]any{
		"model":       mdl,
		"annotations": map[string]any{AnnVersion: d.spec},
	}
	if c.serviceAccount != "" {
		pred["serviceAccountName"] = c.serviceAccount
	}
	if d.canary != nil {
		pred["canaryTrafficPercent"] = *d.canary
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
		"metadata": meta,
		"spec":     map[string]any{"predictor": pred},
	}}
	what := describe(d)
	got, err := dc.Resource(InferenceServices).Namespace(c.namespace).Apply(ctx, c.name, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return modelplane.Op{}, apiError(fmt.Sprintf("apply InferenceService %s/%s (%s)", c.namespace, c.name, what), err)
	}
	return opFor(c.namespace, c.name, got.GetGeneration(), what), nil
}

func describe(d desired) string {
	switch {
	case d.canary == nil:
		return d.spec + " takes all traffic"
	case *d.canary == 0:
		return "roll back to " + d.stable
	}
	return fmt.Sprintf("canary %s at %d%% beside %s", d.spec, *d.canary, d.stable)
}
