package sagemakertest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

type tag struct{ Key, Value string }

type group struct {
	Name, Arn string
	next      int
}

type modelPackage struct {
	Arn, Group, Description, Approval, ApprovalDescription string
	Version                                                int
	Metadata                                               map[string]string
	Spec                                                   map[string]any
	Created                                                time.Time
}

type model struct {
	Name, Arn, Role, Package string
	Created                  time.Time
	Tags                     map[string]string
}

func (s *Server) createGroup(in struct{ ModelPackageGroupName string }) (any, *apiError) {
	if in.ModelPackageGroupName == "" {
		return nil, validation("ModelPackageGroupName is required")
	}
	if g := s.groups[in.ModelPackageGroupName]; g != nil {
		return nil, validation("Model Package Group already exists: %s", g.Arn)
	}
	g := &group{Name: in.ModelPackageGroupName, Arn: s.arn("model-package-group", in.ModelPackageGroupName)}
	s.groups[g.Name] = g
	return map[string]string{"ModelPackageGroupArn": g.Arn}, nil
}

func (s *Server) createPackage(in struct {
	ModelPackageGroupName      string
	ModelPackageDescription    string
	ClientToken                string
	ModelApprovalStatus        string
	InferenceSpecification     map[string]any
	CustomerMetadataProperties map[string]string
}) (any, *apiError) {
	if arn, ok := s.tokens[in.ClientToken]; ok && in.ClientToken != "" {
		return map[string]string{"ModelPackageArn": arn}, nil
	}
	g := s.groups[in.ModelPackageGroupName]
	if g == nil {
		return nil, validation("Model Package Group %s does not exist.", in.ModelPackageGroupName)
	}
	if in.InferenceSpecification == nil {
		return nil, validation("InferenceSpecification is required for a versioned model package")
	}
	switch in.ModelApprovalStatus {
	case "", "PendingManualApproval", "Approved", "Rejected":
	default:
		return nil, validation("invalid ModelApprovalStatus %q", in.ModelApprovalStatus)
	}
	g.next++
	p := &modelPackage{
		Arn:         fmt.Sprintf("arn:aws:sagemaker:%s:%s:model-package/%s/%d", Region, Account, strings.ToLower(g.Name), g.next),
		Group:       g.Name,
		Version:     g.next,
		Description: in.ModelPackageDescription,
		Approval:    or(in.ModelApprovalStatus, "PendingManualApproval"),
		Metadata:    map[string]string{},
		Spec:        in.InferenceSpecification,
		Created:     time.Now(),
	}
	for k, v := range in.CustomerMetadataProperties {
		p.Metadata[k] = v
	}
	s.packages[p.Arn] = p
	if in.ClientToken != "" {
		s.tokens[in.ClientToken] = p.Arn
	}
	return map[string]string{"ModelPackageArn": p.Arn}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) packageSummary(p *modelPackage) map[string]any {
	return map[string]any{
		"ModelPackageArn":         p.Arn,
		"ModelPackageGroupName":   p.Group,
		"ModelPackageVersion":     p.Version,
		"ModelPackageDescription": p.Description,
		"ModelPackageStatus":      "Completed",
		"ModelApprovalStatus":     p.Approval,
		"CreationTime":            epoch(p.Created),
	}
}

func (s *Server) listPackages(in struct{ ModelPackageGroupName string }) (any, *apiError) {
	var list []map[string]any
	for _, p := range s.sortedPackages() {
		if in.ModelPackageGroupName == "" || p.Group == in.ModelPackageGroupName {
			list = append(list, s.packageSummary(p))
		}
	}
	return map[string]any{"ModelPackageSummaryList": list}, nil
}

func (s *Server) sortedPackages() []*modelPackage {
	var out []*modelPackage
	for _, p := range s.packages {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Arn < out[j].Arn })
	return out
}

func (s *Server) findPackage(name string) *modelPackage {
	if p := s.packages[name]; p != nil {
		return p
	}
	return nil
}

func (s *Server) describePackage(in struct{ ModelPackageName string }) (any, *apiError) {
	p := s.findPackage(in.ModelPackageName)
	if p == nil {
		return nil, notFound("model package", in.ModelPackageName)
	}
	out := s.packageSummary(p)
	out["CustomerMetadataProperties"] = p.Metadata
	out["InferenceSpecification"] = p.Spec
	if p.ApprovalDescription != "" {
		out["ApprovalDescription"] = p.ApprovalDescription
	}
	return out, nil
}

func (s *Server) updatePackage(in struct {
	ModelPackageArn            string
	ModelApprovalStatus        string
	ApprovalDescription        string
	CustomerMetadataProperties map[string]string
}) (any, *apiError) {
	p := s.findPackage(in.ModelPackageArn)
	if p == nil {
		return nil, notFound("model package", in.ModelPackageArn)
	}
	switch in.ModelApprovalStatus {
	case "":
	case "PendingManualApproval", "Approved", "Rejected":
		p.Approval = in.ModelApprovalStatus
	default:
		return nil, validation("invalid ModelApprovalStatus %q", in.ModelApprovalStatus)
	}
	if in.ApprovalDescription != "" {
		p.ApprovalDescription = in.ApprovalDescription
	}
	for k, v := range in.CustomerMetadataProperties {
		p.Metadata[k] = v
	}
	return map[string]string{"ModelPackageArn": p.Arn}, nil
}

// Package reports a model package's approval status, description and metadata.
func (s *Server) Package(group, description string) (approval, approvalDescription string, metadata map[string]string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.packages {
		if p.Group == group && p.Description == description {
			md := map[string]string{}
			for k, v := range p.Metadata {
				md[k] = v
			}
			return p.Approval, p.ApprovalDescription, md, true
		}
	}
	return "", "", nil, false
}

// Packages counts the model packages in a group.
func (s *Server) Packages(group string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.packages {
		if p.Group == group {
			n++
		}
	}
	return n
}

func (s *Server) createModel(in struct {
	ModelName        string
	ExecutionRoleArn string
	PrimaryContainer struct{ ModelPackageName, Image, ModelDataUrl string }
	Tags             []tag
}) (any, *apiError) {
	if in.ModelName == "" || in.ExecutionRoleArn == "" {
		return nil, validation("ModelName and ExecutionRoleArn are required")
	}
	if m := s.models[in.ModelName]; m != nil {
		return nil, validation("Cannot create already existing model %q.", m.Arn)
	}
	if pk := in.PrimaryContainer.ModelPackageName; pk != "" && s.findPackage(pk) == nil {
		return nil, notFound("model package", pk)
	}
	if in.PrimaryContainer.ModelPackageName == "" && in.PrimaryContainer.Image == "" {
		return nil, validation("the container needs an Image or a ModelPackageName")
	}
	m := &model{Name: in.ModelName, Arn: s.arn("model", in.ModelName), Role: in.ExecutionRoleArn, Package: in.PrimaryContainer.ModelPackageName, Created: time.Now(), Tags: map[string]string{}}
	for _, t := range in.Tags {
		m.Tags[t.Key] = t.Value
	}
	s.models[m.Name] = m
	return map[string]string{"ModelArn": m.Arn}, nil
}

func (s *Server) describeModel(in struct{ ModelName string }) (any, *apiError) {
	m := s.models[in.ModelName]
	if m == nil {
		return nil, notFound("model", s.arn("model", in.ModelName))
	}
	return map[string]any{
		"ModelName": m.Name, "ModelArn": m.Arn, "ExecutionRoleArn": m.Role, "CreationTime": epoch(m.Created),
		"PrimaryContainer": map[string]string{"ModelPackageName": m.Package},
	}, nil
}

func (s *Server) deleteModel(in struct{ ModelName string }) (any, *apiError) {
	if s.models[in.ModelName] == nil {
		return nil, notFound("model", s.arn("model", in.ModelName))
	}
	delete(s.models, in.ModelName)
	return nil, nil
}

func (s *Server) listModels(in struct{ NameContains string }) (any, *apiError) {
	var names []string
	for n := range s.models {
		if strings.Contains(strings.ToLower(n), strings.ToLower(in.NameContains)) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	list := []map[string]any{}
	for _, n := range names {
		m := s.models[n]
		list = append(list, map[string]any{"ModelName": m.Name, "ModelArn": m.Arn, "CreationTime": epoch(m.Created)})
	}
	return map[string]any{"Models": list}, nil
}

// Models lists the SageMaker Model names.
func (s *Server) Models() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// tagsOf finds the tag map of a resource by ARN.
func (s *Server) tagsOf(arn string) (map[string]string, *apiError) {
	for _, m := range s.models {
		if m.Arn == arn {
			return m.Tags, nil
		}
	}
	for _, e := range s.endpoints {
		if e.Arn == arn {
			return e.Tags, nil
		}
	}
	for _, c := range s.configs {
		if c.Arn == arn {
			return c.Tags, nil
		}
	}
	return nil, notFound("resource", arn)
}

func (s *Server) addTags(in struct {
	ResourceArn string
	Tags        []tag
}) (any, *apiError) {
	tags, err := s.tagsOf(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	n := len(tags)
	for _, t := range in.Tags {
		if _, ok := tags[t.Key]; !ok {
			n++
		}
		if len(t.Key) > 128 || len(t.Value) > 256 {
			return nil, validation("tag %q is too long", t.Key)
		}
	}
	if n > 50 {
		return nil, validation("resource %s would have %d tags; the limit is 50", in.ResourceArn, n)
	}
	for _, t := range in.Tags {
		tags[t.Key] = t.Value
	}
	return map[string]any{"Tags": in.Tags}, nil
}

func (s *Server) listTags(in struct{ ResourceArn string }) (any, *apiError) {
	tags, err := s.tagsOf(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := []tag{}
	for _, k := range keys {
		list = append(list, tag{k, tags[k]})
	}
	return map[string]any{"Tags": list}, nil
}

func (s *Server) deleteTags(in struct {
	ResourceArn string
	TagKeys     []string
}) (any, *apiError) {
	tags, err := s.tagsOf(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		delete(tags, k)
	}
	return nil, nil
}
