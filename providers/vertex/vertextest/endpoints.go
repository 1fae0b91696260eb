package vertextest

import (
	"context"
	"fmt"
	"maps"
	"path"
	"regexp"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// vendpoint is an endpoint plus the deployed model ids that operations
// have reserved (deploying) or are removing (undeploying).
type vendpoint struct {
	ep          *aiplatformpb.Endpoint
	etag        int
	deploying   map[string]bool
	undeploying map[string]bool
}

func (e *vendpoint) touch() {
	e.etag++
	e.ep.Etag = fmt.Sprintf("etag-%d", e.etag)
	e.ep.UpdateTime = timestamppb.Now()
}

func (e *vendpoint) deployed(id string) *aiplatformpb.DeployedModel {
	for _, dm := range e.ep.DeployedModels {
		if dm.Id == id {
			return dm
		}
	}
	return nil
}

var (
	endpointIDRe = regexp.MustCompile(`^([1-9][0-9]{0,8}|[a-z]([a-z0-9-]{0,61}[a-z0-9])?)$`)
	deployedIDRe = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// validSplit checks a traffic split like the service: percentages sum to
// 100 (or the split is empty when nothing may serve) over known ids.
func validSplit(split map[string]int32, known func(id string) bool, emptyOK bool) error {
	if len(split) == 0 && emptyOK {
		return nil
	}
	sum := int32(0)
	for id, pct := range split {
		if !known(id) {
			return errf(codes.InvalidArgument, "traffic_split names deployed model %q, which is not deployed on the endpoint", id)
		}
		if pct < 0 || pct > 100 {
			return errf(codes.InvalidArgument, "traffic_split[%q] = %d is not a percentage", id, pct)
		}
		sum += pct
	}
	if sum != 100 {
		return errf(codes.InvalidArgument, "traffic_split must sum to 100, got %d", sum)
	}
	return nil
}

type endpointService struct {
	aiplatformpb.UnimplementedEndpointServiceServer
	s *Server
}

// CreateEndpoint: the endpoint is readable as soon as the call returns; the
// operation finishes later (assumed).
func (e *endpointService) CreateEndpoint(ctx context.Context, req *aiplatformpb.CreateEndpointRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !parentRe.MatchString(req.GetParent()) {
		return nil, errf(codes.InvalidArgument, "invalid parent %q", req.GetParent())
	}
	if req.GetEndpoint().GetDisplayName() == "" {
		return nil, errf(codes.InvalidArgument, "endpoint.display_name is required")
	}
	if err := validLabels(req.GetEndpoint().GetLabels()); err != nil {
		return nil, err
	}
	id := req.GetEndpointId()
	if id == "" {
		id = s.nextID()
	} else if !endpointIDRe.MatchString(id) {
		return nil, errf(codes.InvalidArgument, "invalid endpoint_id %q", id)
	}
	name := req.GetParent() + "/endpoints/" + id
	if _, ok := s.endpoints[name]; ok {
		return nil, errf(codes.AlreadyExists, "endpoint %q already exists", name)
	}
	ep := proto.Clone(req.GetEndpoint()).(*aiplatformpb.Endpoint)
	ep.Name, ep.CreateTime = name, timestamppb.Now()
	ep.DeployedModels, ep.TrafficSplit = nil, map[string]int32{}
	ve := &vendpoint{ep: ep, deploying: map[string]bool{}, undeploying: map[string]bool{}}
	ve.touch()
	s.endpoints[name] = ve
	apply := func() proto.Message { return proto.Clone(ve.ep) }
	undo := func() { delete(s.endpoints, name) }
	return s.startOp(name, "CreateEndpoint", &aiplatformpb.CreateEndpointOperationMetadata{}, apply, undo)
}

func (s *Server) endpoint(name string) (*vendpoint, error) {
	ve, ok := s.endpoints[name]
	if !ok {
		return nil, errf(codes.NotFound, "endpoint %q not found", name)
	}
	return ve, nil
}

func (e *endpointService) GetEndpoint(ctx context.Context, req *aiplatformpb.GetEndpointRequest) (*aiplatformpb.Endpoint, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ve, err := s.endpoint(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(ve.ep).(*aiplatformpb.Endpoint), nil
}

// UpdateEndpoint is synchronous. A stale etag is refused with Aborted
// (assumed code); label updates are allowed while operations run (assumed).
func (e *endpointService) UpdateEndpoint(ctx context.Context, req *aiplatformpb.UpdateEndpointRequest) (*aiplatformpb.Endpoint, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	in := req.GetEndpoint()
	ve, err := s.endpoint(in.GetName())
	if err != nil {
		return nil, err
	}
	if in.GetEtag() != "" && in.GetEtag() != ve.ep.Etag {
		return nil, errf(codes.Aborted, "etag %q of endpoint %q is stale (now %q)", in.GetEtag(), in.GetName(), ve.ep.Etag)
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, errf(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range paths {
		switch p {
		case "traffic_split":
			known := func(id string) bool { return ve.deployed(id) != nil && !ve.undeploying[id] }
			if err := validSplit(in.GetTrafficSplit(), known, len(ve.ep.DeployedModels) == 0); err != nil {
				return nil, err
			}
		case "labels":
			if err := validLabels(in.GetLabels()); err != nil {
				return nil, err
			}
		case "display_name", "description":
		default:
			return nil, errf(codes.InvalidArgument, "update_mask path %q is not supported by the stand-in", p)
		}
	}
	for _, p := range paths {
		switch p {
		case "traffic_split":
			ve.ep.TrafficSplit = maps.Clone(in.GetTrafficSplit())
		case "labels":
			ve.ep.Labels = maps.Clone(in.GetLabels())
		case "display_name":
			ve.ep.DisplayName = in.GetDisplayName()
		case "description":
			ve.ep.Description = in.GetDescription()
		}
	}
	ve.touch()
	return proto.Clone(ve.ep).(*aiplatformpb.Endpoint), nil
}

// DeployModel checks the model version, the resources and the split ("0" is
// the model being deployed) when called; the deployed model appears, with
// the split, when the operation finishes. A deployed model id in use or
// being deployed is refused with AlreadyExists (assumed code).
func (e *endpointService) DeployModel(ctx context.Context, req *aiplatformpb.DeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ve, err := s.endpoint(req.GetEndpoint())
	if err != nil {
		return nil, err
	}
	in := req.GetDeployedModel()
	vm, version, err := s.version(in.GetModel())
	if err != nil {
		return nil, err
	}
	res := in.GetDedicatedResources()
	switch {
	case res.GetMachineSpec().GetMachineType() == "":
		return nil, errf(codes.InvalidArgument, "deployed_model.dedicated_resources.machine_spec.machine_type is required")
	case res.GetMinReplicaCount() < 1 || res.GetMaxReplicaCount() < res.GetMinReplicaCount() && res.GetMaxReplicaCount() != 0:
		return nil, errf(codes.InvalidArgument, "invalid replica counts min=%d max=%d", res.GetMinReplicaCount(), res.GetMaxReplicaCount())
	}
	id := in.GetId()
	if id == "" {
		id = s.nextID()
	} else if !deployedIDRe.MatchString(id) {
		return nil, errf(codes.InvalidArgument, "deployed_model.id %q must be 1-10 digits", id)
	}
	if ve.deployed(id) != nil || ve.deploying[id] {
		return nil, errf(codes.AlreadyExists, "deployed model %q already exists on endpoint %q", id, req.GetEndpoint())
	}
	known := func(k string) bool { return k == "0" || (ve.deployed(k) != nil && !ve.undeploying[k]) }
	split := req.GetTrafficSplit()
	if err := validSplit(split, known, false); err != nil {
		return nil, err
	}
	ve.deploying[id] = true
	dm := proto.Clone(in).(*aiplatformpb.DeployedModel)
	dm.Id, dm.Model, dm.ModelVersionId = id, vm.name, version.VersionId
	epID := path.Base(ve.ep.Name)
	apply := func() proto.Message {
		delete(ve.deploying, id)
		dm.CreateTime = timestamppb.Now()
		ve.ep.DeployedModels = append(ve.ep.DeployedModels, dm)
		ts := map[string]int32{}
		for k, pct := range split {
			if k == "0" {
				k = id
			}
			if ve.deployed(k) != nil && pct > 0 {
				ts[k] = pct
			}
		}
		ve.ep.TrafficSplit = ts
		ve.touch()
		s.deployedAs[[2]string{epID, id}] = deployedFrom{displayName: version.DisplayName, description: version.VersionDescription}
		return &aiplatformpb.DeployModelResponse{DeployedModel: proto.Clone(dm).(*aiplatformpb.DeployedModel)}
	}
	undo := func() { delete(ve.deploying, id) }
	return s.startOp(ve.ep.Name, "DeployModel", &aiplatformpb.DeployModelOperationMetadata{}, apply, undo)
}

// UndeployModel refuses a model that still has traffic unless the request
// gives the split without it. A model already being undeployed is refused
// with Aborted (assumed).
func (e *endpointService) UndeployModel(ctx context.Context, req *aiplatformpb.UndeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ve, err := s.endpoint(req.GetEndpoint())
	if err != nil {
		return nil, err
	}
	id := req.GetDeployedModelId()
	if ve.deployed(id) == nil {
		return nil, errf(codes.NotFound, "deployed model %q not found on endpoint %q", id, req.GetEndpoint())
	}
	if ve.undeploying[id] {
		return nil, errf(codes.Aborted, "deployed model %q is already being undeployed", id)
	}
	split := req.GetTrafficSplit()
	if len(split) > 0 {
		if _, ok := split[id]; ok {
			return nil, errf(codes.InvalidArgument, "traffic_split must not name the model being undeployed")
		}
		known := func(k string) bool { return ve.deployed(k) != nil && !ve.undeploying[k] }
		if err := validSplit(split, known, false); err != nil {
			return nil, err
		}
	} else if pct := ve.ep.TrafficSplit[id]; pct > 0 && len(ve.ep.DeployedModels) > 1 {
		return nil, errf(codes.FailedPrecondition, "deployed model %q receives %d%% of the traffic of endpoint %q; update the traffic split first", id, pct, req.GetEndpoint())
	}
	ve.undeploying[id] = true
	apply := func() proto.Message {
		delete(ve.undeploying, id)
		ve.ep.DeployedModels = slicesDelete(ve.ep.DeployedModels, id)
		if len(split) > 0 {
			ve.ep.TrafficSplit = maps.Clone(split)
		}
		delete(ve.ep.TrafficSplit, id)
		ve.touch()
		return &aiplatformpb.UndeployModelResponse{}
	}
	undo := func() { delete(ve.undeploying, id) }
	return s.startOp(ve.ep.Name, "UndeployModel", &aiplatformpb.UndeployModelOperationMetadata{}, apply, undo)
}

func slicesDelete(dms []*aiplatformpb.DeployedModel, id string) []*aiplatformpb.DeployedModel {
	var out []*aiplatformpb.DeployedModel
	for _, dm := range dms {
		if dm.Id != id {
			out = append(out, dm)
		}
	}
	return out
}

// Endpoint returns a copy of an endpoint (nil if absent), for tests.
func (s *Server) Endpoint(name string) *aiplatformpb.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ve, ok := s.endpoints[name]; ok {
		return proto.Clone(ve.ep).(*aiplatformpb.Endpoint)
	}
	return nil
}

// Endpoints lists endpoint names, for tests.
func (s *Server) Endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.endpoints {
		out = append(out, name)
	}
	return out
}
