package vertextest

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// vmodel is a Model Registry model: its versions, numbered from 1.
type vmodel struct {
	name     string
	creating bool // the first upload is still running: the id is taken, nothing lists yet
	versions []*aiplatformpb.Model
}

var (
	parentRe   = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+$`)
	modelIDRe  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,62}$`)
	aliasRe    = regexp.MustCompile(`^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]$`)
	labelKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValRe = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

func validLabels(labels map[string]string) error {
	if len(labels) > 64 {
		return errf(codes.InvalidArgument, "at most 64 labels, got %d", len(labels))
	}
	for k, v := range labels {
		if !labelKeyRe.MatchString(k) || !labelValRe.MatchString(v) {
			return errf(codes.InvalidArgument, "invalid label %q=%q: keys and values are at most 63 characters of [a-z0-9_-]", k, v)
		}
	}
	return nil
}

// version resolves "…/models/ID", "…/models/ID@N" or "…/models/ID@alias"
// (no suffix: the version holding "default"). The caller holds s.mu.
func (s *Server) version(name string) (*vmodel, *aiplatformpb.Model, error) {
	base, ref, _ := strings.Cut(name, "@")
	m, ok := s.models[base]
	if !ok || m.creating {
		return nil, nil, errf(codes.NotFound, "model %q not found", base)
	}
	if ref == "" {
		ref = "default"
	}
	for _, v := range m.versions {
		if v.VersionId == ref || slices.Contains(v.VersionAliases, ref) {
			return m, v, nil
		}
	}
	return nil, nil, errf(codes.NotFound, "model version %q not found", name)
}

type modelService struct {
	aiplatformpb.UnimplementedModelServiceServer
	s *Server
}

// UploadModel creates a model (model_id or a generated id) with version 1
// aliased "default", or a new version of parent_model. The version exists
// once the operation finishes (assumed); the first upload's model id is
// taken from the start.
func (m *modelService) UploadModel(ctx context.Context, req *aiplatformpb.UploadModelRequest) (*longrunningpb.Operation, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !parentRe.MatchString(req.GetParent()) {
		return nil, errf(codes.InvalidArgument, "invalid parent %q", req.GetParent())
	}
	in := req.GetModel()
	switch {
	case in.GetDisplayName() == "":
		return nil, errf(codes.InvalidArgument, "model.display_name is required")
	case in.GetContainerSpec().GetImageUri() == "":
		return nil, errf(codes.InvalidArgument, "model.container_spec.image_uri is required for a custom model")
	case req.GetParentModel() != "" && req.GetModelId() != "":
		return nil, errf(codes.InvalidArgument, "model_id and parent_model are exclusive")
	}
	if err := validLabels(in.GetLabels()); err != nil {
		return nil, err
	}
	var vm *vmodel
	if req.GetParentModel() != "" {
		var ok bool
		if vm, ok = s.models[req.GetParentModel()]; !ok || vm.creating {
			return nil, errf(codes.NotFound, "parent model %q not found", req.GetParentModel())
		}
	} else {
		id := req.GetModelId()
		if id == "" {
			id = s.nextID()
		} else if !modelIDRe.MatchString(id) {
			return nil, errf(codes.InvalidArgument, "invalid model_id %q", id)
		}
		name := req.GetParent() + "/models/" + id
		if _, ok := s.models[name]; ok {
			return nil, errf(codes.AlreadyExists, "model %q already exists", name)
		}
		vm = &vmodel{name: name, creating: true}
		s.models[name] = vm
	}
	version := proto.Clone(in).(*aiplatformpb.Model)
	apply := func() proto.Message {
		n := 1
		for _, v := range vm.versions {
			if i, _ := strconv.Atoi(v.VersionId); i >= n {
				n = i + 1
			}
		}
		version.Name, version.VersionId = vm.name, strconv.Itoa(n)
		version.VersionAliases = nil
		if n == 1 {
			version.VersionAliases = []string{"default"}
		}
		version.CreateTime, version.VersionCreateTime = timestamppb.Now(), timestamppb.Now()
		vm.versions = append(vm.versions, version)
		vm.creating = false
		return &aiplatformpb.UploadModelResponse{Model: vm.name, ModelVersionId: version.VersionId}
	}
	undo := func() {
		if vm.creating {
			delete(s.models, vm.name)
		}
	}
	return s.startOp(vm.name, "UploadModel", &aiplatformpb.UploadModelOperationMetadata{}, apply, undo)
}

func (m *modelService) GetModel(ctx context.Context, req *aiplatformpb.GetModelRequest) (*aiplatformpb.Model, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.version(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(v).(*aiplatformpb.Model), nil
}

// ListModelVersions returns every version in one page.
func (m *modelService) ListModelVersions(ctx context.Context, req *aiplatformpb.ListModelVersionsRequest) (*aiplatformpb.ListModelVersionsResponse, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.models[req.GetName()]
	if !ok || vm.creating {
		return nil, errf(codes.NotFound, "model %q not found", req.GetName())
	}
	resp := &aiplatformpb.ListModelVersionsResponse{}
	for _, v := range vm.versions {
		resp.Models = append(resp.Models, proto.Clone(v).(*aiplatformpb.Model))
	}
	return resp, nil
}

// UpdateModel supports the labels, description and version_description paths.
func (m *modelService) UpdateModel(ctx context.Context, req *aiplatformpb.UpdateModelRequest) (*aiplatformpb.Model, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.version(req.GetModel().GetName())
	if err != nil {
		return nil, err
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, errf(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "labels":
			if err := validLabels(req.GetModel().GetLabels()); err != nil {
				return nil, err
			}
		case "description", "version_description":
		default:
			return nil, errf(codes.InvalidArgument, "update_mask path %q is not supported by the stand-in", p)
		}
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "labels":
			v.Labels = req.GetModel().GetLabels()
		case "description":
			v.Description = req.GetModel().GetDescription()
		case "version_description":
			v.VersionDescription = req.GetModel().GetVersionDescription()
		}
	}
	v.UpdateTime = timestamppb.Now()
	return proto.Clone(v).(*aiplatformpb.Model), nil
}

// MergeVersionAliases adds aliases (moving one another version holds, as
// Vertex documents) and removes "-alias" ones. "default" cannot be removed:
// one version always holds it. Removing an alias the version does not hold
// is a no-op (assumed).
func (m *modelService) MergeVersionAliases(ctx context.Context, req *aiplatformpb.MergeVersionAliasesRequest) (*aiplatformpb.Model, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ref, _ := strings.Cut(req.GetName(), "@")
	if _, err := strconv.Atoi(ref); err != nil {
		return nil, errf(codes.InvalidArgument, "name %q must name a version id explicitly (…@1234)", req.GetName())
	}
	vm, v, err := s.version(req.GetName())
	if err != nil {
		return nil, err
	}
	if len(req.GetVersionAliases()) == 0 {
		return nil, errf(codes.InvalidArgument, "version_aliases is required")
	}
	for _, a := range req.GetVersionAliases() {
		if !aliasRe.MatchString(strings.TrimPrefix(a, "-")) {
			return nil, errf(codes.InvalidArgument, "alias %q must match [a-z][a-zA-Z0-9-]{0,126}[a-z-0-9]", a)
		}
		if a == "-default" {
			return nil, errf(codes.FailedPrecondition, "the default alias cannot be removed; move it to another version instead")
		}
	}
	for _, a := range req.GetVersionAliases() {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			v.VersionAliases = slices.DeleteFunc(v.VersionAliases, func(x string) bool { return x == name })
			continue
		}
		for _, other := range vm.versions {
			other.VersionAliases = slices.DeleteFunc(other.VersionAliases, func(x string) bool { return x == a })
		}
		v.VersionAliases = append(v.VersionAliases, a)
	}
	v.VersionUpdateTime = timestamppb.Now()
	return proto.Clone(v).(*aiplatformpb.Model), nil
}

// Aliases reports the aliases of a model version ("…/models/ID@N"), for tests.
func (s *Server) Aliases(version string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.version(version)
	if err != nil {
		return nil
	}
	return slices.Sorted(slices.Values(v.VersionAliases))
}

// ModelVersions lists a model's versions (clones), for tests.
func (s *Server) ModelVersions(model string) []*aiplatformpb.Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*aiplatformpb.Model
	if vm, ok := s.models[model]; ok {
		for _, v := range vm.versions {
			out = append(out, proto.Clone(v).(*aiplatformpb.Model))
		}
	}
	return out
}

// ModelNames lists the models' resource names, for tests.
func (s *Server) ModelNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.models))
}
