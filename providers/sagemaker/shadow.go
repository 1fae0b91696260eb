package sagemaker

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// StartShadow starts a ShadowMode inference experiment: the version serving
// all traffic is the source, the candidate a shadow variant receiving a
// sample of the requests. SageMaker rebuilds the endpoint around the two, so
// warm 0% variants leave the endpoint while the shadow runs.
func (p *Provider) StartShadow(ctx context.Context, t modelplane.Target, model string, sh modelplane.Shadow, mutationID string) (modelplane.Op, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationID == "" {
		return modelplane.Op{}, invalidf("sagemaker: mutation id is required")
	}
	if sh.Percent < 1 || sh.Percent > 100 {
		return modelplane.Op{}, invalidf("sagemaker: shadow sampling %d%% is outside 1..100", sh.Percent)
	}
	ep, err := s.describe(ctx)
	if err != nil {
		return modelplane.Op{}, err
	}
	if !ep.exists {
		return modelplane.Op{}, invalidf("sagemaker: endpoint %s does not exist; nothing serves requests to mirror", s.cfg.Endpoint)
	}
	name := experimentName(ep.name, sh.Version, mutationID)
	if ep.applied(mutationID) {
		return experimentOp(opShadowStart, name), nil
	}
	source := ""
	for n, pc := range percents(ep.weights) {
		if pc == 100 {
			source = n
		}
	}
	if source == "" || ep.version(source) == "" {
		return modelplane.Op{}, invalidf("sagemaker: endpoint %s must serve one version at 100%% to run a shadow (traffic %s)", ep.name, ep.traffic())
	}
	if ep.version(source) == sh.Version {
		return modelplane.Op{}, invalidf("sagemaker: version %s already serves endpoint %s; it cannot be its own shadow", sh.Version, ep.name)
	}
	if err := ep.busy(); err != nil {
		return modelplane.Op{}, err
	}
	names, err := s.requireModels(ctx, []string{ep.version(source), sh.Version})
	if err != nil {
		return modelplane.Op{}, err
	}
	// Tag first: StopShadow and State find the experiment through the tag,
	// even when the create's reply is lost.
	tags := variantTags(sh.Version)
	tags[tagExperiment] = name
	if err := s.addTags(ctx, ep.arn, tags); err != nil {
		return modelplane.Op{}, err
	}
	infra := &types.ModelInfrastructureConfig{
		InfrastructureType: types.ModelInfrastructureTypeRealTimeInference,
		RealTimeInferenceConfig: &types.RealTimeInferenceConfig{
			InstanceType:  types.ProductionVariantInstanceType(s.cfg.InstanceType),
			InstanceCount: aws.Int32(s.cfg.InstanceCount),
		},
	}
	shadowVariant := VariantName(sh.Version)
	_, err = s.sm.CreateInferenceExperiment(ctx, &sm.CreateInferenceExperimentInput{
		Name:         aws.String(name),
		Type:         types.InferenceExperimentTypeShadowMode,
		RoleArn:      aws.String(s.cfg.RoleARN),
		EndpointName: aws.String(ep.name),
		Description:  aws.String(fmt.Sprintf("modelplane shadow of %s %s", model, sh.Version)),
		ModelVariants: []types.ModelVariantConfig{
			{ModelName: aws.String(names[ep.version(source)]), VariantName: aws.String(source), InfrastructureConfig: infra},
			{ModelName: aws.String(names[sh.Version]), VariantName: aws.String(shadowVariant), InfrastructureConfig: infra},
		},
		ShadowModeConfig: &types.ShadowModeConfig{
			SourceModelVariantName: aws.String(source),
			ShadowModelVariants:    []types.ShadowModelVariantConfig{{ShadowModelVariantName: aws.String(shadowVariant), SamplingPercentage: aws.Int32(int32(sh.Percent))}},
		},
	})
	if err != nil && !isAlreadyExists(err) {
		return modelplane.Op{}, wrap(err, "CreateInferenceExperiment", name)
	}
	return experimentOp(opShadowStart, name), s.record(ctx, ep, mutationID, nil)
}

// StopShadow completes the running experiment: promote makes the shadow
// variant the production one (the old one is removed); otherwise the shadow
// is removed and production kept. No experiment running is a no-op.
func (p *Provider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, mutationID string) (modelplane.Op, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationID == "" {
		return modelplane.Op{}, invalidf("sagemaker: mutation id is required")
	}
	ep, err := s.describe(ctx)
	if err != nil || !ep.exists {
		return modelplane.Op{}, err
	}
	name := ep.tags[tagExperiment]
	if name == "" {
		return modelplane.Op{}, nil
	}
	if ep.applied(mutationID) {
		return experimentOp(opShadowStop, name), nil
	}
	out, err := s.sm.DescribeInferenceExperiment(ctx, &sm.DescribeInferenceExperimentInput{Name: aws.String(name)})
	if err != nil {
		if isNotFound(err) {
			return modelplane.Op{}, nil
		}
		return modelplane.Op{}, wrap(err, "DescribeInferenceExperiment", name)
	}
	switch out.Status {
	case types.InferenceExperimentStatusCompleted, types.InferenceExperimentStatusCancelled:
		return modelplane.Op{}, s.record(ctx, ep, mutationID, nil)
	case types.InferenceExperimentStatusStopping:
		return experimentOp(opShadowStop, name), s.record(ctx, ep, mutationID, nil)
	}
	if out.ShadowModeConfig == nil || len(out.ShadowModeConfig.ShadowModelVariants) == 0 {
		return modelplane.Op{}, invalidf("sagemaker: experiment %s has no shadow variant", name)
	}
	source := aws.ToString(out.ShadowModeConfig.SourceModelVariantName)
	shadow := aws.ToString(out.ShadowModeConfig.ShadowModelVariants[0].ShadowModelVariantName)
	actions := map[string]types.ModelVariantAction{source: types.ModelVariantActionRetain, shadow: types.ModelVariantActionRemove}
	reason := "modelplane: shadow ended without promotion"
	if promote {
		actions = map[string]types.ModelVariantAction{source: types.ModelVariantActionRemove, shadow: types.ModelVariantActionPromote}
		reason = "modelplane: shadow promoted"
	}
	_, err = s.sm.StopInferenceExperiment(ctx, &sm.StopInferenceExperimentInput{
		Name:                aws.String(name),
		ModelVariantActions: actions,
		DesiredState:        types.InferenceExperimentStopDesiredStateCompleted,
		Reason:              aws.String(reason),
	})
	if err != nil {
		return modelplane.Op{}, wrap(err, "StopInferenceExperiment", name)
	}
	return experimentOp(opShadowStop, name), s.record(ctx, ep, mutationID, nil)
}

// activeShadow reads the experiment named by the endpoint's tag.
func (s *session) activeShadow(ctx context.Context, ep endpointView) (*modelplane.Shadow, error) {
	name := ep.tags[tagExperiment]
	if name == "" {
		return nil, nil
	}
	out, err := s.sm.DescribeInferenceExperiment(ctx, &sm.DescribeInferenceExperimentInput{Name: aws.String(name)})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, wrap(err, "DescribeInferenceExperiment", name)
	}
	switch out.Status {
	case types.InferenceExperimentStatusCompleted, types.InferenceExperimentStatusCancelled:
		return nil, nil
	}
	if out.ShadowModeConfig == nil || len(out.ShadowModeConfig.ShadowModelVariants) == 0 {
		return nil, nil
	}
	sv := out.ShadowModeConfig.ShadowModelVariants[0]
	ver := ep.version(aws.ToString(sv.ShadowModelVariantName))
	return &modelplane.Shadow{Version: ver, Percent: int(aws.ToInt32(sv.SamplingPercentage))}, nil
}
