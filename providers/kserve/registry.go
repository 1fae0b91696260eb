package kserve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/modelplane/modelplane"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// The registered versions of a model live in a ConfigMap next to its
// InferenceService: KServe itself only knows the storageUri it serves now.

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func registryName(c config) string { return "modelplane-" + c.name }

// registered is one ConfigMap entry.
type registered struct {
	Version    string `json:"version"`
	StorageURI string `json:"storageUri"`
}

var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)

// entryKey is the version itself where a ConfigMap key may be that (our
// versions may contain '+', keys may not).
func entryKey(version string) string {
	if configMapKey.MatchString(version) {
		return version
	}
	sum := sha256.Sum256([]byte(version))
	return "v-" + hex.EncodeToString(sum[:8])
}

// loadRegistry returns version → storageUri (empty when nothing is registered).
func loadRegistry(ctx context.Context, dc dynamic.Interface, c config) (map[string]string, error) {
	cm, err := dc.Resource(configMaps).Namespace(c.namespace).Get(ctx, registryName(c), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, apiError(fmt.Sprintf("get ConfigMap %s/%s", c.namespace, registryName(c)), err)
	}
	return registryEntries(cm), nil
}

func registryEntries(cm *unstructured.Unstructured) map[string]string {
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	out := make(map[string]string, len(data))
	for _, v := range data {
		var r registered
		if json.Unmarshal([]byte(v), &r) == nil && r.Version != "" {
			out[r.Version] = r.StorageURI
		}
	}
	return out
}

// register adds version → uri. The same pair again is success; the same
// version with another artifact is refused (versions are immutable).
func register(ctx context.Context, dc dynamic.Interface, c config, model, version, uri string) error {
	res := dc.Resource(configMaps).Namespace(c.namespace)
	name := registryName(c)
	what := fmt.Sprintf("register version %s in ConfigMap %s/%s", version, c.namespace, name)
	val, _ := json.Marshal(registered{Version: version, StorageURI: uri})
	for attempt := 0; ; attempt++ {
		cm, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{
					"name": name, "namespace": c.namespace,
					"labels":      map[string]any{labelManagedBy: FieldManager, labelISVC: c.name},
					"annotations": map[string]any{annModel: model},
				},
				"data": map[string]any{entryKey(version): string(val)},
			}}
			_, err = res.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) && attempt == 0 {
				continue // a concurrent attempt created it: add to theirs
			}
			return apiError(what, err)
		}
		if err != nil {
			return apiError(what, err)
		}
		if have, ok := registryEntries(cm)[version]; ok {
			if have != uri {
				return invalid("version %s of model %s is registered in %s/%s with storageUri %q, not %q", version, model, c.namespace, name, have, uri)
			}
			return nil
		}
		patch, _ := json.Marshal(map[string]any{"data": map[string]any{entryKey(version): string(val)}})
		_, err = res.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return apiError(what, err)
	}
}

// unregister removes a version (absent already is success).
func unregister(ctx context.Context, dc dynamic.Interface, c config, version string) error {
	patch, _ := json.Marshal(map[string]any{"data": map[string]any{entryKey(version): nil}})
	_, err := dc.Resource(configMaps).Namespace(c.namespace).Patch(ctx, registryName(c), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return apiError(fmt.Sprintf("retire version %s from ConfigMap %s/%s", version, c.namespace, registryName(c)), err)
}

// RegisterVersion records version → storageUri in the model's ConfigMap.
// KServe has no warm standby for a version without traffic, so nothing is
// deployed until SetTraffic names it; the zero Op says there is nothing to wait for.
func (p *Provider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	c, dc, err := p.setup(t, v.Model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if v.Version == "" || v.ArtifactURI == "" {
		return modelplane.Op{}, invalid("version %q of model %s needs a version and an artifact URI (the storageUri)", v.Version, v.Model)
	}
	return modelplane.Op{}, register(ctx, dc, c, v.Model, v.Version, v.ArtifactURI)
}
