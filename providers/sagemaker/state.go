package sagemaker

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// State reports traffic by version, the versions deployable on the target
// (on the endpoint or registered as SageMaker Models), the running shadow
// experiment and, while an update runs, the endpoint's status.
func (p *Provider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	s, err := p.session(ctx, t, model)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	v, err := s.describe(ctx)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	st := modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}}
	registered, err := s.registeredVersions(ctx)
	if err != nil {
		return st, err
	}
	versions := registered
	if v.exists {
		st.Traffic = v.traffic()
		if v.status != types.EndpointStatusInService {
			st.Busy = string(v.status)
		}
		versions = append(versions, v.variantVersions()...)
		for _, n := range v.shadows {
			if ver := v.version(n); ver != "" {
				versions = append(versions, ver)
			}
		}
		if st.Shadow, err = s.activeShadow(ctx, v); err != nil {
			return st, err
		}
	}
	slices.Sort(versions)
	st.Versions = slices.Compact(versions)
	return st, nil
}
