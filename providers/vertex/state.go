package vertex

import (
	"context"
	"slices"

	"github.com/modelplane/modelplane"
)

// State reports the endpoint's split and the versions usable on the target:
// those deployed plus those registered for it (SetTraffic deploys them).
func (p *Provider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	_, vs, name, view, err := p.current(ctx, t, model)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	st := modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}}
	tl := targetLabel(name)
	for v, r := range vs {
		if r.model.GetLabels()[tl] != "" || view.deployed[v] != nil {
			st.Versions = append(st.Versions, v)
		}
	}
	slices.Sort(st.Versions)
	for id, pct := range view.ep.GetTrafficSplit() {
		if pct <= 0 {
			continue
		}
		if v, ok := view.versionOf[id]; ok {
			st.Traffic[v] = int(pct)
		} else {
			st.Traffic["deployed-model/"+id] = int(pct) // not ours: shown, never guessed
		}
	}
	return st, nil
}
