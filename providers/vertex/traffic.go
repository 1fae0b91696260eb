package vertex

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/modelplane/modelplane"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// endpointView is an endpoint read once and mapped to our versions.
type endpointView struct {
	name string
	ep   *aiplatformpb.Endpoint // nil: the endpoint does not exist yet
	// deployed maps our version to its DeployedModel.
	deployed map[string]*aiplatformpb.DeployedModel
	// versionOf maps a deployed model id to our version.
	versionOf map[string]string
}

func (v endpointView) percent(version string) int32 {
	if dm := v.deployed[version]; dm != nil {
		return v.ep.GetTrafficSplit()[dm.GetId()]
	}
	return 0
}

// readEndpoint does one GetEndpoint and maps deployed models to our versions.
func (p *Provider) readEndpoint(ctx context.Context, cl *clients, name string, vs map[string]registered) (endpointView, error) {
	view := endpointView{name: name, deployed: map[string]*aiplatformpb.DeployedModel{}, versionOf: map[string]string{}}
	ep, err := cl.endpoint.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: name})
	if code(err) == codes.NotFound {
		return view, nil
	}
	if err != nil {
		return view, wrap(err, "get endpoint %s", name)
	}
	view.ep = ep
	byResource := map[string]string{}
	for v, r := range vs {
		byResource[r.name()] = v
	}
	for _, dm := range ep.GetDeployedModels() {
		res := dm.GetModel()
		if i := strings.LastIndexByte(res, '@'); i >= 0 {
			if dm.GetModelVersionId() == "" {
				dm.ModelVersionId = res[i+1:]
			}
			res = res[:i]
		}
		if v, ok := byResource[res+"@"+dm.GetModelVersionId()]; ok {
			view.deployed[v] = dm
			view.versionOf[dm.GetId()] = v
		}
	}
	return view, nil
}

// current reads what Retire and State start from: the model's versions,
// and the target's endpoint seen through them.
func (p *Provider) current(ctx context.Context, t modelplane.Target, model string) (*clients, map[string]registered, string, endpointView, error) {
	c, cl, err := p.setup(ctx, t)
	if err != nil {
		return nil, nil, "", endpointView{}, err
	}
	vs, _, err := p.versions(ctx, c, cl, model)
	if err != nil {
		return nil, nil, "", endpointView{}, err
	}
	name := endpointName(c, t, model)
	view, err := p.readEndpoint(ctx, cl, name, vs)
	return cl, vs, name, view, err
}

// ensureEndpoint creates the target's endpoint under its deterministic id.
// Vertex shows the endpoint as soon as CreateEndpoint returns; should it not
// yet, the caller's retry finds it.
func (p *Provider) ensureEndpoint(ctx context.Context, c config, cl *clients, t modelplane.Target, model string, vs map[string]registered) (endpointView, error) {
	name := endpointName(c, t, model)
	view, err := p.readEndpoint(ctx, cl, name, vs)
	if err != nil || view.ep != nil {
		return view, err
	}
	_, err = cl.endpoint.CreateEndpoint(ctx, &aiplatformpb.CreateEndpointRequest{
		Parent:     c.parent(),
		EndpointId: endpointID(c, t, model),
		Endpoint: &aiplatformpb.Endpoint{
			DisplayName: truncate(model+" on "+t.Name, 128),
			Labels:      map[string]string{labelModel: labelValue(model)},
		},
	})
	if err != nil && code(err) != codes.AlreadyExists {
		return view, wrap(err, "create endpoint %s", name)
	}
	if view, err = p.readEndpoint(ctx, cl, name, vs); err != nil || view.ep != nil {
		return view, err
	}
	return view, fmt.Errorf("vertex: endpoint %s is being created; retry", name)
}

// SetTraffic makes split the endpoint's traffic. A version not yet deployed
// is deployed by DeployModel (a long-running operation, returned as the Op)
// with the whole split in the same call; when every version is deployed the
// split is one synchronous UpdateEndpoint (the zero Op). The mutation id
// joins the ring in the endpoint's labels, in the same UpdateEndpoint when
// there is one.
func (p *Provider) SetTraffic(ctx context.Context, t modelplane.Target, model string, split modelplane.TrafficSplit, mutationID string) (modelplane.Op, error) {
	if mutationID == "" {
		return modelplane.Op{}, invalid("mutation id is required")
	}
	if err := split.Validate(); err != nil {
		return modelplane.Op{}, invalid("traffic split %s for %s: %v", split, model, err)
	}
	c, cl, err := p.setup(ctx, t)
	if err != nil {
		return modelplane.Op{}, err
	}
	vs, _, err := p.versions(ctx, c, cl, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	for _, v := range sortedKeys(split) {
		if _, ok := vs[v]; !ok {
			return modelplane.Op{}, invalid("version %s of %s is not registered in %s", v, model, modelName(c, model))
		}
	}
	view, err := p.ensureEndpoint(ctx, c, cl, t, model, vs)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationApplied(view.ep.GetLabels(), mutationID) {
		return modelplane.Op{}, nil
	}
	var missing []string
	for _, v := range sortedKeys(split) {
		if view.deployed[v] == nil {
			missing = append(missing, v)
		}
	}
	switch len(missing) {
	case 0:
		return modelplane.Op{}, p.updateSplit(ctx, cl, view, split, mutationID)
	case 1:
		return p.deploy(ctx, c, cl, t, view, vs[missing[0]], model, split, mutationID)
	default:
		return modelplane.Op{}, invalid("split %s deploys %d versions (%s) on %s; Vertex AI deploys one per operation", split, len(missing), strings.Join(missing, ", "), view.name)
	}
}

// updateSplit sets traffic and records the mutation in one UpdateEndpoint.
// The etag makes the read-modify-write of the labels safe against a
// concurrent writer: Vertex refuses a stale etag and the retry re-reads.
func (p *Provider) updateSplit(ctx context.Context, cl *clients, view endpointView, split modelplane.TrafficSplit, mutationID string) error {
	ts := map[string]int32{}
	for v, pct := range split {
		if pct > 0 {
			ts[view.deployed[v].GetId()] = int32(pct)
		}
	}
	_, err := cl.endpoint.UpdateEndpoint(ctx, &aiplatformpb.UpdateEndpointRequest{
		Endpoint: &aiplatformpb.Endpoint{
			Name:         view.name,
			TrafficSplit: ts,
			Labels:       withMutation(view.ep.GetLabels(), mutationID),
			Etag:         view.ep.GetEtag(),
		},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic_split", "labels"}},
	})
	return wrap(err, "set traffic %s on endpoint %s", split, view.name)
}

// deploy starts DeployModel for r with the whole split ("0" is the model
// being deployed) and then records the mutation id. The deployed model id
// is deterministic: if an earlier attempt's reply was lost, Vertex refuses
// the duplicate and this attempt waits (retryably) for that deployment
// rather than deploying the version twice.
func (p *Provider) deploy(ctx context.Context, c config, cl *clients, t modelplane.Target, view endpointView, r registered, model string, split modelplane.TrafficSplit, mutationID string) (modelplane.Op, error) {
	id := deployedModelID(view.name, model, r.version)
	ts := map[string]int32{}
	for v, pct := range split {
		if pct <= 0 {
			continue
		}
		if v == r.version {
			ts["0"] = int32(pct)
		} else {
			ts[view.deployed[v].GetId()] = int32(pct)
		}
	}
	op, err := cl.endpoint.DeployModel(ctx, &aiplatformpb.DeployModelRequest{
		Endpoint: view.name,
		DeployedModel: &aiplatformpb.DeployedModel{
			Id:             id,
			Model:          r.name(),
			DisplayName:    truncate(model+" "+r.version, 128),
			ServiceAccount: c.serviceAccount,
			PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{DedicatedResources: &aiplatformpb.DedicatedResources{
				MachineSpec:     &aiplatformpb.MachineSpec{MachineType: c.machineType},
				MinReplicaCount: c.minReplicas,
				MaxReplicaCount: c.maxReplicas,
			}},
		},
		TrafficSplit: ts,
	})
	if code(err) == codes.AlreadyExists {
		return modelplane.Op{}, fmt.Errorf("vertex: deployment of %s (deployed model %s) on endpoint %s, started by an earlier attempt, is still running; retry: %s", r.version, id, view.name, message(err))
	}
	if err != nil {
		return modelplane.Op{}, wrap(err, "deploy %s (%s) on endpoint %s with traffic %s", r.version, r.name(), view.name, split)
	}
	result := modelplane.Op{ID: op.Name(), What: fmt.Sprintf("deploy %s %s on endpoint %s", model, r.version, view.name)}
	// Record the mutation on a fresh read: the deployment may have changed the etag.
	fresh, err := p.readEndpoint(ctx, cl, view.name, nil)
	if err == nil && fresh.ep != nil {
		_, err = cl.endpoint.UpdateEndpoint(ctx, &aiplatformpb.UpdateEndpointRequest{
			Endpoint:   &aiplatformpb.Endpoint{Name: view.name, Labels: withMutation(fresh.ep.GetLabels(), mutationID), Etag: fresh.ep.GetEtag()},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
		})
		err = wrap(err, "record mutation %s on endpoint %s", mutationID, view.name)
	}
	if err != nil {
		// A retry finds the deployment running (refused duplicate) or done
		// (then the split is applied and recorded by UpdateEndpoint).
		return modelplane.Op{}, fmt.Errorf("%w (the deployment started: operation %s)", err, op.Name())
	}
	return result, nil
}

// Retire undeploys an idle version from the target's endpoint and drops its
// registration mark for the target; the version stays in the Model Registry.
func (p *Provider) Retire(ctx context.Context, t modelplane.Target, model, version string) (modelplane.Op, error) {
	cl, vs, name, view, err := p.current(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if pct := view.percent(version); pct > 0 {
		return modelplane.Op{}, invalid("version %s of %s serves %d%% of endpoint %s; move its traffic first", version, model, pct, name)
	}
	tl := targetLabel(name)
	if r, ok := vs[version]; ok && r.model.GetLabels()[tl] != "" {
		labels := maps.Clone(r.model.GetLabels())
		delete(labels, tl)
		if err := p.updateLabels(ctx, cl, r, labels); err != nil {
			return modelplane.Op{}, err
		}
	}
	dm := view.deployed[version]
	if dm == nil {
		return modelplane.Op{}, nil
	}
	op, err := cl.endpoint.UndeployModel(ctx, &aiplatformpb.UndeployModelRequest{Endpoint: name, DeployedModelId: dm.GetId()})
	if err != nil {
		return modelplane.Op{}, wrap(err, "undeploy %s (deployed model %s) from endpoint %s", version, dm.GetId(), name)
	}
	return modelplane.Op{ID: op.Name(), What: fmt.Sprintf("undeploy %s %s from endpoint %s", model, version, name)}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
