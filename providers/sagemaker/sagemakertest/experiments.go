package sagemakertest

import (
	"fmt"
	"time"
)

type experiment struct {
	Name, Arn, Endpoint, Status, Reason string
	Source, Shadow                      variant
	Sampling                            int32
	Created                             time.Time
	actions                             map[string]string
	left                                int
}

type modelVariantConfig struct {
	ModelName, VariantName string
	InfrastructureConfig   struct {
		InfrastructureType      string
		RealTimeInferenceConfig struct {
			InstanceType  string
			InstanceCount int32
		}
	}
}

func (s *Server) createExperiment(in struct {
	Name, Type, RoleArn, EndpointName string
	ModelVariants                     []modelVariantConfig
	ShadowModeConfig                  struct {
		SourceModelVariantName string
		ShadowModelVariants    []struct {
			ShadowModelVariantName string
			SamplingPercentage     int32
		}
	}
}) (any, *apiError) {
	if x := s.experiments[in.Name]; x != nil {
		return nil, &apiError{400, "ResourceInUse", fmt.Sprintf("Inference experiment %s already exists.", x.Arn)}
	}
	if in.Type != "ShadowMode" || in.RoleArn == "" {
		return nil, validation("Type must be ShadowMode and RoleArn is required")
	}
	e, err := s.endpoint(in.EndpointName)
	if err != nil {
		return nil, err
	}
	if e.Status != "InService" {
		return nil, validation("Cannot start an inference experiment on endpoint %s in status %s.", e.Name, e.Status)
	}
	for _, x := range s.experiments {
		if x.Endpoint == e.Name && x.Status != "Completed" && x.Status != "Cancelled" {
			return nil, validation("Endpoint %s already has an active inference experiment %s.", e.Name, x.Name)
		}
	}
	smc := in.ShadowModeConfig
	if len(smc.ShadowModelVariants) != 1 {
		return nil, validation("ShadowModeConfig needs exactly one shadow variant")
	}
	sv := smc.ShadowModelVariants[0]
	if sv.SamplingPercentage < 1 || sv.SamplingPercentage > 100 {
		return nil, validation("SamplingPercentage must be from 1 to 100")
	}
	byName := map[string]modelVariantConfig{}
	for _, mv := range in.ModelVariants {
		if s.models[mv.ModelName] == nil {
			return nil, notFound("model", s.arn("model", mv.ModelName))
		}
		byName[mv.VariantName] = mv
	}
	src, ok1 := byName[smc.SourceModelVariantName]
	sh, ok2 := byName[sv.ShadowModelVariantName]
	if !ok1 || !ok2 || src.VariantName == sh.VariantName {
		return nil, validation("ModelVariants must list the source and the shadow variant")
	}
	live := false
	for _, v := range e.Variants {
		live = live || (v.Name == src.VariantName && v.Model == src.ModelName)
	}
	if !live {
		return nil, validation("Source variant %s with model %s is not a production variant of endpoint %s.", src.VariantName, src.ModelName, e.Name)
	}
	toVariant := func(m modelVariantConfig) variant {
		rt := m.InfrastructureConfig.RealTimeInferenceConfig
		return variant{Name: m.VariantName, Model: m.ModelName, InstanceType: rt.InstanceType, Count: rt.InstanceCount, Weight: 1, Desired: 1}
	}
	x := &experiment{Name: in.Name, Arn: s.arn("inference-experiment", in.Name), Endpoint: e.Name, Status: "Creating",
		Source: toVariant(src), Shadow: toVariant(sh), Sampling: sv.SamplingPercentage, Created: time.Now(), left: s.settle}
	s.experiments[x.Name] = x
	return map[string]string{"InferenceExperimentArn": x.Arn}, nil
}

// step moves an experiment one describe further; reaching Running puts the
// shadow on the endpoint, reaching Completed applies the variant actions.
func (s *Server) step(x *experiment) {
	switch x.Status {
	case "Creating", "Stopping":
	default:
		return
	}
	x.left--
	if x.left > 0 {
		return
	}
	e := s.endpoints[x.Endpoint]
	if x.Status == "Creating" {
		x.Status = "Running"
		if e != nil {
			e.Variants = []variant{x.Source}
			sh := x.Shadow
			sh.Sampling = x.Sampling
			e.Shadows = []variant{sh}
		}
		return
	}
	x.Status = "Completed"
	if e == nil {
		return
	}
	e.Shadows = nil
	switch {
	case x.actions[x.Shadow.Name] == "Promote":
		e.Variants = []variant{x.Shadow}
	case x.actions[x.Source.Name] == "Remove":
		e.Variants = nil
	default:
		e.Variants = []variant{x.Source}
	}
}

func (s *Server) describeExperiment(in struct{ Name string }) (any, *apiError) {
	x := s.experiments[in.Name]
	if x == nil {
		return nil, notFound("inference experiment", in.Name)
	}
	s.step(x)
	out := map[string]any{
		"Name": x.Name, "Arn": x.Arn, "Type": "ShadowMode", "Status": x.Status, "CreationTime": epoch(x.Created),
		"EndpointMetadata": map[string]any{"EndpointName": x.Endpoint},
		"ShadowModeConfig": map[string]any{
			"SourceModelVariantName": x.Source.Name,
			"ShadowModelVariants":    []map[string]any{{"ShadowModelVariantName": x.Shadow.Name, "SamplingPercentage": x.Sampling}},
		},
	}
	if x.Reason != "" {
		out["StatusReason"] = x.Reason
	}
	return out, nil
}

func (s *Server) stopExperiment(in struct {
	Name                string
	ModelVariantActions map[string]string
	DesiredState        string
	Reason              string
}) (any, *apiError) {
	x := s.experiments[in.Name]
	if x == nil {
		return nil, notFound("inference experiment", in.Name)
	}
	if x.Status != "Running" {
		return nil, validation("Cannot stop inference experiment %s in status %s.", x.Name, x.Status)
	}
	for v, a := range in.ModelVariantActions {
		if v != x.Source.Name && v != x.Shadow.Name {
			return nil, validation("Variant %s is not part of inference experiment %s.", v, x.Name)
		}
		if a != "Promote" && a != "Remove" && a != "Retain" {
			return nil, validation("invalid ModelVariantAction %q", a)
		}
	}
	if in.ModelVariantActions[x.Shadow.Name] == "Promote" && in.ModelVariantActions[x.Source.Name] != "Remove" {
		return nil, validation("Promoting the shadow variant requires removing the source variant.")
	}
	x.actions = in.ModelVariantActions
	x.Status, x.Reason, x.left = "Stopping", in.Reason, s.settle
	if in.DesiredState == "Cancelled" {
		x.actions = map[string]string{x.Source.Name: "Retain", x.Shadow.Name: "Remove"}
	}
	return map[string]string{"InferenceExperimentArn": x.Arn}, nil
}

func (s *Server) startPipeline(in struct {
	PipelineName, ClientRequestToken string
	PipelineParameters               []struct{ Name, Value string }
}) (any, *apiError) {
	if n := len(in.ClientRequestToken); n < 32 || n > 128 {
		return nil, validation("ClientRequestToken must be 32 to 128 characters, got %d", n)
	}
	for _, x := range s.executions {
		if x.Token == in.ClientRequestToken && x.Pipeline == in.PipelineName {
			return map[string]string{"PipelineExecutionArn": x.ARN}, nil
		}
	}
	x := Execution{
		ARN:        fmt.Sprintf("arn:aws:sagemaker:%s:%s:pipeline/%s/execution/%d", Region, Account, in.PipelineName, len(s.executions)+1),
		Pipeline:   in.PipelineName,
		Token:      in.ClientRequestToken,
		Parameters: map[string]string{},
	}
	for _, p := range in.PipelineParameters {
		x.Parameters[p.Name] = p.Value
	}
	s.executions = append(s.executions, x)
	return map[string]string{"PipelineExecutionArn": x.ARN}, nil
}
