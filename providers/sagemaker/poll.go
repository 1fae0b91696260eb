package sagemaker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// Op IDs, "|"-separated (SageMaker names never contain "|"):
//
//	ep|<endpoint>|<config>|<variant>=<weight>,…   endpoint InService on config with these weights (none: any)
//	native|<endpoint>|<new config>|<old config>   blue/green update with auto-rollback
//	shadow-start|<experiment>                     experiment Running
//	shadow-stop|<experiment>                      experiment Completed
const (
	opEndpoint    = "ep"
	opNative      = "native"
	opShadowStart = "shadow-start"
	opShadowStop  = "shadow-stop"
)

func endpointOp(endpoint, config string, weights map[string]int) modelplane.Op {
	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(weights[k])
	}
	what := fmt.Sprintf("endpoint %s on %s", endpoint, config)
	if len(parts) > 0 {
		what += " with weights " + strings.Join(parts, ",")
	}
	return modelplane.Op{ID: strings.Join([]string{opEndpoint, endpoint, config, strings.Join(parts, ",")}, "|"), What: what}
}

func nativeOp(endpoint, newConfig, oldConfig string) modelplane.Op {
	return modelplane.Op{
		ID:   strings.Join([]string{opNative, endpoint, newConfig, oldConfig}, "|"),
		What: fmt.Sprintf("blue/green update of endpoint %s from %s to %s", endpoint, oldConfig, newConfig),
	}
}

func experimentOp(kind, name string) modelplane.Op {
	what := "shadow experiment " + name + " running"
	if kind == opShadowStop {
		what = "shadow experiment " + name + " stopped"
	}
	return modelplane.Op{ID: kind + "|" + name, What: what}
}

// Poll makes one Describe call and reads the outcome from it.
func (p *Provider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}, nil
	}
	parts := strings.Split(op.ID, "|")
	bad := invalidf("sagemaker: %q is not an operation of this provider", op.ID)
	// Poll only needs the region: the op names the resource.
	region := strings.TrimSpace(t.Config[KeyRegion])
	if region == "" {
		return modelplane.OpStatus{}, field(KeyRegion, "required (e.g. us-east-1)")
	}
	c, err := p.client(ctx, region)
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	switch parts[0] {
	case opEndpoint, opNative:
		if len(parts) != 4 {
			return modelplane.OpStatus{}, bad
		}
		out, err := c.sm.DescribeEndpoint(ctx, &sm.DescribeEndpointInput{EndpointName: aws.String(parts[1])})
		if err != nil {
			if isNotFound(err) {
				return modelplane.OpStatus{Done: true, Failed: true, Reason: fmt.Sprintf("endpoint %s does not exist", parts[1])}, nil
			}
			return modelplane.OpStatus{}, wrap(err, "DescribeEndpoint", parts[1])
		}
		if parts[0] == opNative {
			return nativeStatus(out, parts[2], parts[3]), nil
		}
		return endpointStatus(out, parts[2], parts[3]), nil
	case opShadowStart, opShadowStop:
		if len(parts) != 2 {
			return modelplane.OpStatus{}, bad
		}
		out, err := c.sm.DescribeInferenceExperiment(ctx, &sm.DescribeInferenceExperimentInput{Name: aws.String(parts[1])})
		if err != nil {
			return modelplane.OpStatus{}, wrap(err, "DescribeInferenceExperiment", parts[1])
		}
		return experimentStatus(out, parts[0] == opShadowStop), nil
	}
	return modelplane.OpStatus{}, bad
}

// settled handles the statuses every endpoint operation shares; ok=false
// means InService and the caller decides.
func settled(out *sm.DescribeEndpointOutput) (modelplane.OpStatus, bool) {
	reason := aws.ToString(out.FailureReason)
	switch out.EndpointStatus {
	case types.EndpointStatusInService:
		return modelplane.OpStatus{}, false
	case types.EndpointStatusUpdateRollbackFailed:
		return modelplane.OpStatus{Done: true, Failed: true, NeedsHuman: true,
			Reason: fmt.Sprintf("endpoint %s is UpdateRollbackFailed: %s", aws.ToString(out.EndpointName), reason)}, true
	case types.EndpointStatusFailed, types.EndpointStatusOutOfService, types.EndpointStatusDeleting:
		return modelplane.OpStatus{Done: true, Failed: true,
			Reason: fmt.Sprintf("endpoint %s is %s: %s", aws.ToString(out.EndpointName), out.EndpointStatus, reason)}, true
	}
	return modelplane.OpStatus{}, true // Creating, Updating, SystemUpdating, RollingBack
}

func endpointStatus(out *sm.DescribeEndpointOutput, config, weights string) modelplane.OpStatus {
	if st, ok := settled(out); ok {
		return st
	}
	name := aws.ToString(out.EndpointName)
	if got := aws.ToString(out.EndpointConfigName); got != config {
		if r := aws.ToString(out.FailureReason); r != "" {
			return modelplane.OpStatus{Done: true, Failed: true, RolledBack: true,
				Reason: fmt.Sprintf("SageMaker rolled endpoint %s back to %s: %s", name, got, r)}
		}
		return modelplane.OpStatus{Done: true, Failed: true,
			Reason: fmt.Sprintf("endpoint %s serves config %s, not %s (changed outside this operation)", name, got, config)}
	}
	if weights == "" {
		return modelplane.OpStatus{Done: true}
	}
	cur := map[string]float32{}
	for _, pv := range out.ProductionVariants {
		cur[aws.ToString(pv.VariantName)] = aws.ToFloat32(pv.CurrentWeight)
	}
	want := map[string]int{}
	for _, kv := range strings.Split(weights, ",") {
		k, v, _ := strings.Cut(kv, "=")
		want[k], _ = strconv.Atoi(v)
	}
	if got := percents(cur); !samePercents(got, want) {
		return modelplane.OpStatus{Done: true, Failed: true,
			Reason: fmt.Sprintf("endpoint %s is InService with weights %v, not %s (changed outside this operation)", name, got, weights)}
	}
	return modelplane.OpStatus{Done: true}
}

// nativeStatus: InService on the new config is success; InService on any
// other config after the update is SageMaker's silent alarm rollback.
func nativeStatus(out *sm.DescribeEndpointOutput, newConfig, oldConfig string) modelplane.OpStatus {
	if st, ok := settled(out); ok {
		return st
	}
	got := aws.ToString(out.EndpointConfigName)
	if got == newConfig {
		return modelplane.OpStatus{Done: true}
	}
	reason := aws.ToString(out.FailureReason)
	if reason == "" {
		reason = "no reason given"
	}
	return modelplane.OpStatus{Done: true, Failed: true, RolledBack: true,
		Reason: fmt.Sprintf("SageMaker rolled endpoint %s back to %s (wanted %s, was %s): %s", aws.ToString(out.EndpointName), got, newConfig, oldConfig, reason)}
}

func experimentStatus(out *sm.DescribeInferenceExperimentOutput, stopping bool) modelplane.OpStatus {
	reason := aws.ToString(out.StatusReason)
	switch out.Status {
	case types.InferenceExperimentStatusRunning:
		if !stopping {
			return modelplane.OpStatus{Done: true}
		}
	case types.InferenceExperimentStatusCompleted, types.InferenceExperimentStatusCancelled:
		if stopping {
			return modelplane.OpStatus{Done: true}
		}
		return modelplane.OpStatus{Done: true, Failed: true, Reason: fmt.Sprintf("shadow experiment %s is %s: %s", aws.ToString(out.Name), out.Status, reason)}
	}
	return modelplane.OpStatus{}
}
