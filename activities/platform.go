package activities

import (
	"context"
	"slices"
	"time"

	"github.com/modelplane/modelplane"
)

// PlatformCheck compares what a platform serves for a model with what
// modelplane last applied there.
type PlatformCheck struct {
	Status modelplane.SyncStatus
	Diffs  []modelplane.FieldDiff
	// Reason says why the status is unknown.
	Reason string
	// Applied is the split to restore; Undeployed lists versions in it the
	// platform no longer has; Shadow says a mirror runs that nobody applied.
	Applied    modelplane.TrafficSplit
	Undeployed []string
	Shadow     bool
}

// CheckPlatform reads the platform (one State call) and compares it with
// the stored deployment, minus the target's ignored fields.
func (a *Activities) CheckPlatform(ctx context.Context, in VersionRef) (PlatformCheck, error) {
	d, found, err := a.Store.GetDeployment(ctx, in.Model, in.Target)
	if err != nil {
		return PlatformCheck{}, err
	}
	if !found || len(d.Traffic) == 0 {
		return PlatformCheck{Status: modelplane.InSync}, nil // nothing applied, nothing to differ from
	}
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return PlatformCheck{}, err
	}
	start := time.Now()
	st, err := p.State(ctx, t, in.Model)
	a.timed(t, "state", start, err)
	if err != nil {
		// Unreadable is a status, not a failure of the check: the guardian
		// keeps the last known comparison and says why this one is unknown.
		return PlatformCheck{Status: modelplane.SyncUnknown, Reason: err.Error()}, nil
	}
	if st.Busy != "" {
		return PlatformCheck{Status: modelplane.SyncUnknown, Reason: "the platform is applying a change (" + st.Busy + ")"}, nil
	}
	c := PlatformCheck{Applied: d.Traffic, Shadow: st.Shadow != nil}
	c.Status, c.Diffs = modelplane.CompareServed(d, st, t.Drift)
	for v, w := range d.Traffic {
		if w > 0 && !slices.Contains(st.Versions, v) {
			c.Undeployed = append(c.Undeployed, v)
		}
	}
	slices.Sort(c.Undeployed)
	return c, nil
}
