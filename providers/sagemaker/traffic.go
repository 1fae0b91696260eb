package sagemaker

import (
	"context"
	"maps"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// SetTraffic moves the live split. A change of weights alone is an
// UpdateEndpointWeightsAndCapacities (no new fleet); a change in the set of
// variants is an UpdateEndpoint to the deterministic config for that set
// (blue/green); the first call creates the endpoint. In steps mode versions
// already on the endpoint stay as 0% variants (warm, for a quick rollback)
// until Retire; in native mode the endpoint holds exactly the split's
// versions, so SetTraffic{stable:100} is an UpdateEndpoint back to the
// stable's config.
func (p *Provider) SetTraffic(ctx context.Context, t modelplane.Target, model string, split modelplane.TrafficSplit, mutationID string) (modelplane.Op, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationID == "" {
		return modelplane.Op{}, invalidf("sagemaker: mutation id is required")
	}
	if err := split.Validate(); err != nil {
		return modelplane.Op{}, invalidf("sagemaker: endpoint %s: %v", s.cfg.Endpoint, err)
	}
	ep, err := s.describe(ctx)
	if err != nil {
		return modelplane.Op{}, err
	}
	if ep.exists && ep.applied(mutationID) {
		// Applied before (a retry after a lost reply, or a zombie attempt
		// replayed late): change nothing, just wait for whatever the
		// endpoint is doing.
		config := ep.config
		if ep.pending != "" {
			config = ep.pending
		}
		return endpointOp(ep.name, config, nil), nil
	}
	if len(ep.shadows) > 0 {
		return modelplane.Op{}, invalidf("sagemaker: endpoint %s runs a shadow experiment; stop it before moving traffic", ep.name)
	}
	desired := map[string]int{}
	if !s.cfg.Native {
		for _, v := range ep.variantVersions() {
			desired[v] = 0
		}
	}
	for v, w := range split {
		if w > 0 || !s.cfg.Native {
			desired[v] = w
		}
	}
	names, err := s.requireModels(ctx, sortedKeys(desired))
	if err != nil {
		return modelplane.Op{}, err
	}
	byVariant := variantWeights(desired)
	config := endpointConfigName(ep.name, s.cfg, names, desired)

	if !ep.exists {
		if err := s.createConfig(ctx, config, names, desired); err != nil {
			return modelplane.Op{}, err
		}
		tags := variantTags(sortedKeys(desired)...)
		tags[tagMutations] = mutationDigest(mutationID)
		_, err := s.sm.CreateEndpoint(ctx, &sm.CreateEndpointInput{
			EndpointName:       aws.String(ep.name),
			EndpointConfigName: aws.String(config),
			Tags:               toTags(tags),
		})
		if err != nil && !isAlreadyExists(err) {
			return modelplane.Op{}, wrap(err, "CreateEndpoint", ep.name)
		}
		return endpointOp(ep.name, config, byVariant), nil
	}

	// While a config change is in flight the variants shown are the old
	// ones: only a weights change may be judged against them.
	sameSet := ep.pending == "" && slices.Equal(sortedKeys(desired), ep.variantVersions()) && len(ep.weights) == len(desired)
	if sameSet {
		if samePercents(percents(ep.desired), byVariant) {
			// Already asked for (an earlier attempt whose reply was lost, or a
			// no-op): record the id and wait for the endpoint.
			if err := s.record(ctx, ep, mutationID, nil); err != nil {
				return modelplane.Op{}, err
			}
			if ep.status == types.EndpointStatusInService && samePercents(percents(ep.weights), byVariant) {
				return modelplane.Op{}, nil
			}
			return endpointOp(ep.name, ep.config, byVariant), nil
		}
		if err := ep.busy(); err != nil {
			return modelplane.Op{}, err
		}
		var dw []types.DesiredWeightAndCapacity
		for _, v := range sortedKeys(desired) {
			dw = append(dw, types.DesiredWeightAndCapacity{VariantName: aws.String(VariantName(v)), DesiredWeight: aws.Float32(float32(desired[v]))})
		}
		_, err := s.sm.UpdateEndpointWeightsAndCapacities(ctx, &sm.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName:                aws.String(ep.name),
			DesiredWeightsAndCapacities: dw,
		})
		if err != nil {
			return modelplane.Op{}, wrap(err, "UpdateEndpointWeightsAndCapacities", ep.name)
		}
		if err := s.record(ctx, ep, mutationID, nil); err != nil {
			return modelplane.Op{}, err
		}
		return endpointOp(ep.name, ep.config, byVariant), nil
	}
	return s.switchConfig(ctx, ep, config, names, desired, mutationID, nil)
}

// switchConfig moves the endpoint to another config (blue/green). A retry
// that finds the update already under way (or done) just waits for it.
func (s *session) switchConfig(ctx context.Context, ep endpointView, config string, names map[string]string, desired map[string]int, mutationID string, dc *types.DeploymentConfig) (modelplane.Op, error) {
	byVariant := variantWeights(desired)
	op := endpointOp(ep.name, config, byVariant)
	if dc != nil {
		op = nativeOp(ep.name, config, ep.config)
	}
	if ep.pending == config || (ep.config == config && ep.status == types.EndpointStatusInService) {
		return op, s.record(ctx, ep, mutationID, nil)
	}
	if err := ep.busy(); err != nil {
		return modelplane.Op{}, err
	}
	if err := s.createConfig(ctx, config, names, desired); err != nil {
		return modelplane.Op{}, err
	}
	// The variant → version tags go first: State must read the new variants
	// as soon as they appear.
	if err := s.addTags(ctx, ep.arn, variantTags(sortedKeys(desired)...)); err != nil {
		return modelplane.Op{}, err
	}
	_, err := s.sm.UpdateEndpoint(ctx, &sm.UpdateEndpointInput{
		EndpointName:       aws.String(ep.name),
		EndpointConfigName: aws.String(config),
		DeploymentConfig:   dc,
	})
	if err != nil {
		return modelplane.Op{}, wrap(err, "UpdateEndpoint", ep.name+" to "+config)
	}
	// DescribeEndpoint forgets the config served before; keep it for a manual rollback.
	return op, s.record(ctx, ep, mutationID, map[string]string{tagPreviousConfig: ep.config})
}

// createConfig creates an endpoint config; configs are immutable and named
// by their content, so "already exists" is the same config.
func (s *session) createConfig(ctx context.Context, name string, models map[string]string, weights map[string]int) error {
	var pvs []types.ProductionVariant
	for _, v := range sortedKeys(weights) {
		pvs = append(pvs, types.ProductionVariant{
			VariantName:          aws.String(VariantName(v)),
			ModelName:            aws.String(models[v]),
			InstanceType:         types.ProductionVariantInstanceType(s.cfg.InstanceType),
			InitialInstanceCount: aws.Int32(s.cfg.InstanceCount),
			InitialVariantWeight: aws.Float32(float32(weights[v])),
		})
	}
	_, err := s.sm.CreateEndpointConfig(ctx, &sm.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: pvs,
		Tags:               []types.Tag{{Key: aws.String(tagModel), Value: aws.String(tagValue(s.model))}},
	})
	if err != nil && !isAlreadyExists(err) {
		return wrap(err, "CreateEndpointConfig", name)
	}
	return nil
}

// Retire takes an idle version off the endpoint (UpdateEndpoint to the
// config without it) and deletes its SageMaker Model; the model package
// stays in the registry, so SetTraffic can bring the version back.
func (p *Provider) Retire(ctx context.Context, t modelplane.Target, model, version string) (modelplane.Op, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	ep, err := s.describe(ctx)
	if err != nil {
		return modelplane.Op{}, err
	}
	variant := VariantName(version)
	var op modelplane.Op
	if ep.exists {
		if slices.Contains(ep.shadows, variant) {
			return op, invalidf("sagemaker: version %s is the running shadow on endpoint %s; stop the shadow first", version, ep.name)
		}
		pc := percents(ep.weights)
		if _, on := ep.weights[variant]; on {
			if pc[variant] > 0 || percents(ep.desired)[variant] > 0 {
				return op, invalidf("sagemaker: version %s still serves %d%% on endpoint %s", version, pc[variant], ep.name)
			}
			remaining := map[string]int{}
			for n, w := range pc {
				if n != variant {
					remaining[ep.version(n)] = w
				}
			}
			if len(remaining) == 0 || hasKey(remaining, "") {
				return op, invalidf("sagemaker: endpoint %s has variants modelplane does not know; retire %s by hand", ep.name, version)
			}
			names, err := s.requireModels(ctx, sortedKeys(remaining))
			if err != nil {
				return op, err
			}
			config := endpointConfigName(ep.name, s.cfg, names, remaining)
			if op, err = s.switchConfig(ctx, ep, config, names, remaining, "", nil); err != nil {
				return op, err
			}
		}
	}
	// Endpoints hold at most 50 tags: forget the retired variant's mapping.
	if key := tagVariantPrefix + variant; ep.exists && ep.tags[key] != "" {
		if _, err := s.sm.DeleteTags(ctx, &sm.DeleteTagsInput{ResourceArn: aws.String(ep.arn), TagKeys: []string{key}}); err != nil {
			return op, wrap(err, "DeleteTags", ep.name)
		}
	}
	name := modelName(t.Name, model, version)
	if _, err := s.sm.DeleteModel(ctx, &sm.DeleteModelInput{ModelName: aws.String(name)}); err != nil && !isNotFound(err) {
		return op, wrap(err, "DeleteModel", name)
	}
	return op, nil
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func sortedKeys(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}

// variantWeights re-keys a split by variant name.
func variantWeights(split map[string]int) map[string]int {
	out := map[string]int{}
	for v, w := range split {
		out[VariantName(v)] = w
	}
	return out
}

func samePercents(got, want map[string]int) bool {
	for n, w := range want {
		if got[n] != w {
			return false
		}
	}
	for n, w := range got {
		if _, ok := want[n]; !ok && w != 0 {
			return false
		}
	}
	return true
}
