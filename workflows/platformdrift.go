package workflows

import (
	"fmt"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// reconcile compares what the platform serves with what modelplane applied
// there, reports a difference once when it appears and once when it goes,
// and in correct mode restores what was applied. A promotion that holds the
// target is never fought: its drift is reported, only after a second look in
// a row (its own moves can be a moment ahead of the stored deployment).
func (g *guardian) reconcile(ctx workflow.Context, st activities.GuardianState) {
	now := workflow.Now(ctx).UTC()
	var c activities.PlatformCheck
	ref := activities.VersionRef{Model: g.in.Model, Target: g.in.Target}
	if err := workflow.ExecuteActivity(withActivity(ctx, 3), acts.CheckPlatform, ref).Get(ctx, &c); err != nil {
		c = activities.PlatformCheck{Status: modelplane.SyncUnknown, Reason: errText(err)}
	}
	prev := modelplane.PlatformSync{Status: modelplane.InSync}
	if g.in.Sync != nil {
		prev = *g.in.Sync
	}
	if c.Status == modelplane.SyncUnknown {
		// The last known comparison stands; the view says why this one failed.
		v := prev
		v.Status, v.Reason, v.CheckedAt = modelplane.SyncUnknown, c.Reason, now
		g.view.Platform = &v
		return
	}
	key := modelplane.DiffKey(c.Status, c.Diffs)
	if key == modelplane.DiffKey(prev.Status, prev.Diffs) {
		prev.CheckedAt = now
		g.in.Sync, g.in.Suspect, g.in.SuspectSince = &prev, "", nil
		g.show()
		if c.Status != modelplane.InSync && st.Drift == modelplane.DriftCorrect && !st.Busy {
			g.correct(ctx, c) // changed by hand again, or the last correction failed
		}
		return
	}
	if st.Busy && c.Status != modelplane.InSync && g.in.Suspect != key {
		g.in.Suspect, g.in.SuspectSince = key, &now
		return
	}
	seen := now
	if g.in.Suspect == key && g.in.SuspectSince != nil {
		seen = *g.in.SuspectSince
	}
	g.in.Suspect, g.in.SuspectSince = "", nil
	next := modelplane.PlatformSync{Status: c.Status, Diffs: c.Diffs, CheckedAt: now}
	details := map[string]any{"mode": st.Drift}
	if c.Status == modelplane.InSync {
		details["was"] = prev.Diffs
		if prev.FirstSeen != nil {
			details["first_seen"] = *prev.FirstSeen
			details["lasted_seconds"] = now.Sub(*prev.FirstSeen).Seconds()
		}
		g.in.Corrections = 0
	} else {
		first := seen
		if prev.Status != modelplane.InSync && prev.FirstSeen != nil {
			first = *prev.FirstSeen
		}
		next.FirstSeen = &first
		details["diffs"], details["first_seen"] = c.Diffs, first
		if st.Busy {
			details["promotion_running"] = true
		}
	}
	g.in.Sync = &next
	g.show()
	g.add(ctx, modelplane.AuditPlatformDrift, "guardian", string(c.Status), details)
	g.flush(ctx, nil)
	if c.Status == modelplane.InSync || st.Drift != modelplane.DriftCorrect {
		return
	}
	if st.Busy {
		g.add(ctx, modelplane.AuditDriftCorrection, "guardian", modelplane.CorrectionVetoed,
			map[string]any{"why": "a promotion of this model on this target is running: it owns traffic", "diffs": c.Diffs})
		g.flush(ctx, nil)
		return
	}
	g.in.Corrections = 0
	g.correct(ctx, c)
}

// show puts the last known comparison in the status query's view.
func (g *guardian) show() {
	v := *g.in.Sync
	g.view.Platform = &v
}

// correct restores what was applied: versions that should serve are
// deployed again, an unapplied mirror stopped, the split set back. Each
// mutation has its own id, so a retried activity changes nothing twice.
func (g *guardian) correct(ctx workflow.Context, c activities.PlatformCheck) {
	actx := withActivity(ctx, 0)
	var err error
	for _, v := range c.Undeployed {
		if err = mutate(ctx, actx, g.ops, g.in.Target, acts.Register, activities.VersionRef{Model: g.in.Model, Version: v, Target: g.in.Target}); err != nil {
			break
		}
	}
	if err == nil && c.Shadow {
		g.in.MutSeq++
		err = mutate(ctx, actx, g.ops, g.in.Target, acts.Shadow, activities.ShadowInput{Model: g.in.Model, Target: g.in.Target,
			MutationID: fmt.Sprintf("%s/g%d", GuardianWorkflowID(g.in.Model, g.in.Target), g.in.MutSeq)})
	}
	mutation := ""
	if err == nil {
		g.in.MutSeq++
		mutation = fmt.Sprintf("%s/g%d", GuardianWorkflowID(g.in.Model, g.in.Target), g.in.MutSeq)
		err = mutate(ctx, actx, g.ops, g.in.Target, acts.SetTraffic, activities.TrafficInput{Model: g.in.Model, Target: g.in.Target, Split: c.Applied, MutationID: mutation})
	}
	if err != nil {
		// Said once per drift; later attempts retry quietly each check.
		g.in.Corrections++
		if g.in.Corrections == 1 {
			g.add(ctx, modelplane.AuditDriftCorrection, "guardian", modelplane.CorrectionFailed, map[string]any{"diffs": c.Diffs, "error": errText(err)})
			g.flush(ctx, nil)
		}
		return
	}
	g.in.Corrections = 0
	g.add(ctx, modelplane.AuditDriftCorrection, "guardian", modelplane.CorrectionApplied,
		map[string]any{"restored": c.Applied.String(), "diffs": c.Diffs, "mutation_id": mutation})
	g.flush(ctx, nil)
}
