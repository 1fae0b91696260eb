package kserve

import (
	"context"
	"fmt"
	"sort"

	"github.com/modelplane/modelplane"
)

// State reports the traffic KServe routes (status.components.predictor.traffic)
// once it has seen the latest spec; before that, the spec's intent, with Busy
// saying so. Versions are the registered ones.
func (p *Provider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	c, dc, err := p.setup(t, model)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	known, err := loadRegistry(ctx, dc, c)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	st := modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}, Versions: make([]string, 0, len(known))}
	for v := range known {
		st.Versions = append(st.Versions, v)
	}
	sort.Strings(st.Versions)
	cur, err := getISVC(ctx, dc, c)
	if err != nil || !cur.exists {
		return st, err
	}
	cur.resolve(known)
	st.Traffic, st.Busy = cur.observedTraffic()
	return st, nil
}

// intendedTraffic is the split the spec asks for.
func (o observed) intendedTraffic() modelplane.TrafficSplit {
	s := modelplane.TrafficSplit{}
	spec := o.specVersion()
	switch {
	case spec == "":
	case o.canary == nil || *o.canary >= 100:
		s[spec] = 100
	default:
		if *o.canary > 0 {
			s[spec] = int(*o.canary)
		}
		if 100-*o.canary > 0 && o.stable != "" {
			s[o.stable] += int(100 - *o.canary)
		}
	}
	return s
}

// observedTraffic is the status's traffic in versions, and why the platform
// is busy (empty when it has applied the latest spec and is Ready).
func (o observed) observedTraffic() (modelplane.TrafficSplit, string) {
	if !o.current() || len(o.traffic) == 0 {
		return o.intendedTraffic(), fmt.Sprintf("InferenceService %s: KServe has not yet applied generation %d (observed %d)", o.ref(), o.generation, o.observedGen)
	}
	revs := o.revisionVersions()
	s := modelplane.TrafficSplit{}
	for _, t := range o.traffic {
		if t.percent <= 0 {
			continue
		}
		v := revs[t.revision]
		if v == "" {
			// Not ours (someone edited the service): show it rather than hide traffic.
			v = "revision/" + t.revision
		}
		s[v] += int(t.percent)
	}
	busy := ""
	if o.ready.status != "True" {
		busy = fmt.Sprintf("InferenceService %s not ready: %s %s", o.ref(), o.ready.reason, o.ready.message)
	}
	return s, busy
}
