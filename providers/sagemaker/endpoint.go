package sagemaker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// Endpoint tags hold what DescribeEndpoint does not: which version each
// variant serves, the mutation ids already applied (a ring of short
// digests), the config served before the last update, and the running
// shadow experiment. They live on the endpoint, so a restarted worker sees them.
const (
	tagMutations      = "modelplane:mutations"
	tagVariantPrefix  = "modelplane:variant:"
	tagPreviousConfig = "modelplane:previous-config"
	tagExperiment     = "modelplane:experiment"

	// ringSize digests of 12 hex characters, ":"-separated, fit a 256-character tag value.
	ringSize = 19
)

// endpointView is one DescribeEndpoint plus the endpoint's tags.
type endpointView struct {
	exists  bool
	name    string
	arn     string
	status  types.EndpointStatus
	config  string
	pending string // config an update in flight moves to
	failure string
	// weights are the production variants' current (and desired) weights.
	weights map[string]float32
	desired map[string]float32
	shadows []string
	tags    map[string]string
}

func (s *session) describe(ctx context.Context) (endpointView, error) {
	v := endpointView{name: s.cfg.Endpoint, weights: map[string]float32{}, desired: map[string]float32{}, tags: map[string]string{}}
	out, err := s.sm.DescribeEndpoint(ctx, &sm.DescribeEndpointInput{EndpointName: aws.String(s.cfg.Endpoint)})
	if err != nil {
		if isNotFound(err) {
			return v, nil
		}
		return v, wrap(err, "DescribeEndpoint", s.cfg.Endpoint)
	}
	v.fill(out)
	tags, err := s.sm.ListTags(ctx, &sm.ListTagsInput{ResourceArn: out.EndpointArn})
	if err != nil {
		return v, wrap(err, "ListTags", s.cfg.Endpoint)
	}
	for _, t := range tags.Tags {
		v.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return v, nil
}

func (v *endpointView) fill(out *sm.DescribeEndpointOutput) {
	v.exists = true
	v.arn = aws.ToString(out.EndpointArn)
	v.status = out.EndpointStatus
	v.config = aws.ToString(out.EndpointConfigName)
	v.failure = aws.ToString(out.FailureReason)
	if out.PendingDeploymentSummary != nil {
		v.pending = aws.ToString(out.PendingDeploymentSummary.EndpointConfigName)
	}
	for _, pv := range out.ProductionVariants {
		n := aws.ToString(pv.VariantName)
		v.weights[n] = aws.ToFloat32(pv.CurrentWeight)
		v.desired[n] = aws.ToFloat32(pv.DesiredWeight)
		if pv.DesiredWeight == nil {
			v.desired[n] = v.weights[n]
		}
	}
	for _, sv := range out.ShadowProductionVariants {
		v.shadows = append(v.shadows, aws.ToString(sv.VariantName))
	}
}

// version maps a variant back to the version it serves ("" if unknown).
func (v endpointView) version(variant string) string {
	if s, ok := v.tags[tagVariantPrefix+variant]; ok {
		return fromTagValue(s)
	}
	return ""
}

// variantVersions lists the production variants' versions, sorted.
func (v endpointView) variantVersions() []string {
	var out []string
	for n := range v.weights {
		if ver := v.version(n); ver != "" {
			out = append(out, ver)
		}
	}
	sort.Strings(out)
	return out
}

// percents turns relative weights into whole percent summing to 100
// (largest remainder), keyed by variant.
func percents(w map[string]float32) map[string]int {
	var sum float64
	for _, x := range w {
		sum += float64(x)
	}
	out := map[string]int{}
	if sum <= 0 {
		for n := range w {
			out[n] = 0
		}
		return out
	}
	type rem struct {
		name string
		frac float64
	}
	var rems []rem
	total := 0
	for n, x := range w {
		exact := float64(x) / sum * 100
		out[n] = int(math.Floor(exact))
		total += out[n]
		rems = append(rems, rem{n, exact - math.Floor(exact)})
	}
	sort.Slice(rems, func(i, j int) bool {
		if rems[i].frac != rems[j].frac {
			return rems[i].frac > rems[j].frac
		}
		return rems[i].name < rems[j].name
	})
	for i := 0; total < 100 && i < len(rems); i++ {
		out[rems[i].name]++
		total++
	}
	return out
}

// traffic is the live split by version (versions with 0% left out).
func (v endpointView) traffic() modelplane.TrafficSplit {
	split := modelplane.TrafficSplit{}
	for n, pc := range percents(v.weights) {
		if pc > 0 {
			ver := v.version(n)
			if ver == "" {
				ver = "variant:" + n // a variant someone added outside modelplane
			}
			split[ver] = pc
		}
	}
	return split
}

func (v endpointView) ring() []string {
	if s := v.tags[tagMutations]; s != "" {
		return strings.Split(s, ":")
	}
	return nil
}

func (v endpointView) applied(mutationID string) bool {
	return slices.Contains(v.ring(), mutationDigest(mutationID))
}

// busy reports an endpoint that cannot take a change now: transient states
// are retryable errors, states only an operator can leave are ErrInvalid.
func (v endpointView) busy() error {
	switch v.status {
	case types.EndpointStatusInService:
		return nil
	case types.EndpointStatusFailed, types.EndpointStatusUpdateRollbackFailed, types.EndpointStatusOutOfService, types.EndpointStatusDeleting:
		return invalidf("sagemaker: endpoint %s is %s: %s", v.name, v.status, v.failure)
	}
	return fmt.Errorf("sagemaker: endpoint %s is %s; retry when it is InService", v.name, v.status)
}

// record adds a mutation id to the ring (and any extra tags) after the change was made.
func (s *session) record(ctx context.Context, v endpointView, mutationID string, extra map[string]string) error {
	tags := map[string]string{}
	for k, val := range extra {
		tags[k] = val
	}
	if mutationID != "" {
		ring := append(v.ring(), mutationDigest(mutationID))
		if len(ring) > ringSize {
			ring = ring[len(ring)-ringSize:]
		}
		tags[tagMutations] = strings.Join(ring, ":")
	}
	return s.addTags(ctx, v.arn, tags)
}

func (s *session) addTags(ctx context.Context, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	_, err := s.sm.AddTags(ctx, &sm.AddTagsInput{ResourceArn: aws.String(arn), Tags: toTags(tags)})
	return wrap(err, "AddTags", s.cfg.Endpoint)
}

func toTags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func variantTags(versions ...string) map[string]string {
	m := map[string]string{}
	for _, v := range versions {
		m[tagVariantPrefix+VariantName(v)] = tagValue(v)
	}
	return m
}
