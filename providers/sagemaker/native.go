package sagemaker

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// StartNative hands the whole canary to SageMaker: one UpdateEndpoint to the
// candidate's config with a blue/green traffic-shifting policy and the
// target's CloudWatch alarms for auto-rollback. Poll tells success from a
// silent rollback (back InService on the old config with a FailureReason)
// and from a stuck one (UpdateRollbackFailed).
func (p *Provider) StartNative(ctx context.Context, t modelplane.Target, model, stable, candidate, mutationID string) (modelplane.Op, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationID == "" {
		return modelplane.Op{}, invalidf("sagemaker: mutation id is required")
	}
	if candidate == "" || candidate == stable {
		return modelplane.Op{}, invalidf("sagemaker: native rollout needs a candidate other than the stable version %q", stable)
	}
	ep, err := s.describe(ctx)
	if err != nil {
		return modelplane.Op{}, err
	}
	if !ep.exists {
		return modelplane.Op{}, invalidf("sagemaker: endpoint %s does not exist; the first deployment of %s is a plain SetTraffic", s.cfg.Endpoint, model)
	}
	desired := map[string]int{candidate: 100}
	names, err := s.requireModels(ctx, []string{candidate})
	if err != nil {
		return modelplane.Op{}, err
	}
	config := endpointConfigName(ep.name, s.cfg, names, desired)
	if ep.applied(mutationID) {
		old := ep.tags[tagPreviousConfig]
		return nativeOp(ep.name, config, old), nil
	}
	return s.switchConfig(ctx, ep, config, names, desired, mutationID, s.deploymentConfig())
}

func (s *session) deploymentConfig() *types.DeploymentConfig {
	step := &types.CapacitySize{Type: types.CapacitySizeTypeCapacityPercent, Value: aws.Int32(s.cfg.StepPercent)}
	routing := &types.TrafficRoutingConfig{
		Type:                  types.TrafficRoutingConfigTypeCanary,
		WaitIntervalInSeconds: aws.Int32(int32(s.cfg.Wait.Seconds())),
		CanarySize:            step,
	}
	if s.cfg.NativePolicy == "linear" {
		routing.Type = types.TrafficRoutingConfigTypeLinear
		routing.CanarySize = nil
		routing.LinearStepSize = step
	}
	dc := &types.DeploymentConfig{BlueGreenUpdatePolicy: &types.BlueGreenUpdatePolicy{TrafficRoutingConfiguration: routing}}
	if len(s.cfg.Alarms) > 0 {
		ar := &types.AutoRollbackConfig{}
		for _, a := range s.cfg.Alarms {
			ar.Alarms = append(ar.Alarms, types.Alarm{AlarmName: aws.String(a)})
		}
		dc.AutoRollbackConfiguration = ar
	}
	return dc
}
