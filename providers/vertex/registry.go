package vertex

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/modelplane/modelplane"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// registered is a Vertex model version carrying one of our versions.
type registered struct {
	version string
	model   *aiplatformpb.Model
}

// name is the version's resource name, models/ID@N.
func (r registered) name() string { return r.model.GetName() + "@" + r.model.GetVersionId() }

func (r registered) hasAlias(a string) bool { return slices.Contains(r.model.GetVersionAliases(), a) }

// ourVersion reads our version name back: the version description holds it
// verbatim, the label (lookup key) guards against an edited description.
func ourVersion(m *aiplatformpb.Model) string {
	lv := m.GetLabels()[labelVersion]
	if d := m.GetVersionDescription(); d != "" && labelValue(d) == lv {
		return d
	}
	return lv
}

// versions lists the model's versions carrying our labels, keyed by our
// version. exists is false when the Vertex model does not exist yet. Should
// a version have been uploaded twice, the lowest Vertex version id wins, so
// every call picks the same one.
func (p *Provider) versions(ctx context.Context, c config, cl *clients, model string) (vs map[string]registered, exists bool, err error) {
	vs = map[string]registered{}
	it := cl.model.ListModelVersions(ctx, &aiplatformpb.ListModelVersionsRequest{Name: modelName(c, model)})
	for {
		m, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return vs, true, nil
		}
		if code(err) == codes.NotFound {
			return vs, false, nil
		}
		if err != nil {
			return nil, false, wrap(err, "list versions of model %s", modelName(c, model))
		}
		if m.GetLabels()[labelModel] != labelValue(model) || m.GetLabels()[labelVersion] == "" {
			continue // not one of ours
		}
		v := ourVersion(m)
		if prev, ok := vs[v]; ok && versionNumber(prev.model) < versionNumber(m) {
			continue
		}
		vs[v] = registered{version: v, model: m}
	}
}

func versionNumber(m *aiplatformpb.Model) int {
	n, err := strconv.Atoi(m.GetVersionId())
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return n
}

// RegisterVersion uploads the version to the Model Registry (the first one
// creates the model under a deterministic id, later ones are new versions of
// it) and marks it registered for this target's endpoint. Deployment waits
// for the first SetTraffic that names the version. A version uploaded
// before is reused: the zero Op.
func (p *Provider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	c, cl, err := p.setup(ctx, t)
	if err != nil {
		return modelplane.Op{}, err
	}
	if v.ArtifactURI == "" {
		return modelplane.Op{}, invalid("version %s of %s has no artifact URI", v.Version, v.Model)
	}
	if v.Version == "" || v.Model == "" {
		return modelplane.Op{}, invalid("model and version names are required")
	}
	if c.servingImage == "" {
		return modelplane.Op{}, configError(KeyServingImage, "is required to upload a version (the serving container image)")
	}
	tl := targetLabel(endpointName(c, t, v.Model))
	vs, exists, err := p.versions(ctx, c, cl, v.Model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if r, ok := vs[v.Version]; ok {
		if r.model.GetLabels()[tl] != "" {
			return modelplane.Op{}, nil
		}
		labels := maps.Clone(r.model.GetLabels())
		labels[tl] = "registered"
		return modelplane.Op{}, p.updateLabels(ctx, cl, r, labels)
	}
	req := &aiplatformpb.UploadModelRequest{
		Parent: c.parent(),
		Model: &aiplatformpb.Model{
			DisplayName:        v.Model,
			VersionDescription: v.Version,
			ArtifactUri:        v.ArtifactURI,
			ContainerSpec:      &aiplatformpb.ModelContainerSpec{ImageUri: c.servingImage},
			Labels: map[string]string{
				labelModel:   labelValue(v.Model),
				labelVersion: labelValue(v.Version),
				tl:           "registered",
			},
		},
	}
	if exists {
		req.ParentModel = modelName(c, v.Model)
	} else {
		req.ModelId = modelID(c, v.Model)
	}
	op, err := cl.model.UploadModel(ctx, req)
	if err != nil {
		if !exists && code(err) == codes.AlreadyExists {
			// The model id is taken but lists no versions yet: an earlier
			// attempt's upload is still running. Retry until it shows.
			return modelplane.Op{}, errors.New("vertex: model " + modelName(c, v.Model) + " is being created by an earlier upload; retry: " + message(err))
		}
		return modelplane.Op{}, wrap(err, "upload version %s to %s", v.Version, modelName(c, v.Model))
	}
	return modelplane.Op{ID: op.Name(), What: "upload " + v.Model + " " + v.Version + " to the Vertex AI Model Registry"}, nil
}

func (p *Provider) updateLabels(ctx context.Context, cl *clients, r registered, labels map[string]string) error {
	_, err := cl.model.UpdateModel(ctx, &aiplatformpb.UpdateModelRequest{
		Model:      &aiplatformpb.Model{Name: r.name(), Labels: labels},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	})
	return wrap(err, "update labels of model version %s", r.name())
}
