package kserve

import (
	"sort"

	"github.com/modelplane/modelplane"
)

// desired is the spec modelplane wants: the version in the spec, the
// version of the rolled-out revision, and the canary percentage (nil: the
// spec's revision takes all traffic once ready).
type desired struct {
	spec, stable string
	canary       *int64
}

func pct(n int) *int64 { v := int64(n); return &v }

// planTraffic maps a split onto KServe's model: an InferenceService splits
// traffic between its last rolled-out revision and the revision of its
// current spec, nothing else.
//
//	{X:100}, first deployment      → spec X
//	{X:100}, X in the spec         → promote: drop canaryTrafficPercent
//	{X:100}, X rolled out          → roll back: canaryTrafficPercent 0; but
//	                                  if the spec's revision failed, spec X
//	                                  (a failed latest revision keeps the
//	                                  service not Ready even at 0%)
//	{X:100}, any other X           → spec X, all traffic once ready
//	{S:100-p, C:p}, S rolled out   → spec C, canaryTrafficPercent p
func planTraffic(cur observed, split modelplane.TrafficSplit, known map[string]string) (desired, error) {
	if err := split.Validate(); err != nil {
		return desired{}, invalid("traffic split %s for %s: %v", split, cur.ref(), err)
	}
	var serving []string
	for v, p := range split {
		if _, ok := known[v]; !ok {
			return desired{}, invalid("traffic split %s names version %s, which is not registered for %s", split, v, cur.ref())
		}
		if p > 0 {
			serving = append(serving, v)
		}
	}
	sort.Strings(serving)
	switch len(serving) {
	case 1:
		x := serving[0]
		switch {
		case !cur.exists, x == cur.specVersion():
			return desired{spec: x, stable: x}, nil
		case x == cur.stable && !cur.failed():
			return desired{spec: cur.specVersion(), stable: x, canary: pct(0)}, nil
		}
		return desired{spec: x, stable: x}, nil
	case 2:
		if !cur.exists || cur.stable == "" {
			return desired{}, invalid("traffic split %s for %s: the first deployment sends 100%% to one version", split, cur.ref())
		}
		a, b := serving[0], serving[1]
		switch cur.stable {
		case a:
			return desired{spec: b, stable: a, canary: pct(split[b])}, nil
		case b:
			return desired{spec: a, stable: b, canary: pct(split[a])}, nil
		}
		return desired{}, invalid("traffic split %s for %s: KServe splits between the rolled-out version (%s) and one canary, and %s names neither", split, cur.ref(), cur.stable, split)
	}
	return desired{}, invalid("traffic split %s for %s: KServe serves at most two versions (rolled-out and canary)", split, cur.ref())
}
