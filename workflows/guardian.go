package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// GuardianInput is the guardian's state, carried across continue-as-new.
type GuardianInput struct {
	Model    string `json:"model"`
	Target   string `json:"target"`
	Stable   string `json:"stable,omitempty"`
	Previous string `json:"previous,omitempty"`
	// Counters keep mutation ids and audit keys unique across runs.
	MutSeq   int `json:"mut_seq,omitempty"`
	AuditSeq int `json:"audit_seq,omitempty"`
	Failures int `json:"failures,omitempty"`
	// Pending carries signals that arrived while the run was closing.
	Pending []GuardianEvent `json:"pending,omitempty"`
	// Sync is the last known comparison of the platform with what was
	// applied; Suspect a drift seen once while a promotion ran; Corrections
	// counts failed corrections of the current drift.
	Sync         *modelplane.PlatformSync `json:"sync,omitempty"`
	Suspect      string                   `json:"suspect,omitempty"`
	SuspectSince *time.Time               `json:"suspect_since,omitempty"`
	Corrections  int                      `json:"corrections,omitempty"`
}

// GuardianUpdate is sent by a successful promotion.
type GuardianUpdate struct {
	Stable      string `json:"stable"`
	Previous    string `json:"previous"`
	PromotionID string `json:"promotion_id"`
}

// GuardianEvent is one signal the guardian handles.
type GuardianEvent struct {
	Promoted *GuardianUpdate         `json:"promoted,omitempty"`
	Drift    *modelplane.DriftSignal `json:"drift,omitempty"`
	Rollback *RollbackRequest        `json:"rollback,omitempty"`
}

// GuardianView is what the status query returns.
type GuardianView struct {
	GuardianInput
	LastHealth *modelplane.Health `json:"last_health,omitempty"`
	LastCheck  time.Time          `json:"last_check"`
	// Platform is the last comparison with what the platform serves
	// (unknown, with the reason, when it could not be read).
	Platform *modelplane.PlatformSync `json:"platform,omitempty"`
}

// turnsPerRun bounds history growth; the SDK's suggestion can end a run sooner.
const turnsPerRun = 200

// DeploymentGuardian watches a model on a target after a promotion: on drift
// or failing health it returns traffic to the previous stable version (kept
// warm for this) and asks for retraining. It lives forever, in runs of
// bounded history (continue-as-new).
func DeploymentGuardian(ctx workflow.Context, in GuardianInput) error {
	g := &guardian{in: in, audit: auditLog{prefix: GuardianWorkflowID(in.Model, in.Target), n: in.AuditSeq}}
	g.view.GuardianInput = in
	g.ops = awaitsOps(ctx)
	if err := workflow.SetQueryHandlerWithOptions(ctx, Status, func() (GuardianView, error) { g.view.GuardianInput = g.in; return g.view, nil },
		workflow.QueryHandlerOptions{Description: "Stable and previous version, last health check"}); err != nil {
		return err
	}
	promotedCh := workflow.GetSignalChannelWithOptions(ctx, Promoted, workflow.SignalChannelOptions{Description: "Sent by a successful promotion: {stable, previous, promotion_id}"})
	driftCh := workflow.GetSignalChannelWithOptions(ctx, Drift, workflow.SignalChannelOptions{Description: `Drift detected: {"metric": "psi", "score": 0.4, "source": "monitor"} — rolls back to the previous version and requests retraining`})
	rollbackCh := workflow.GetSignalChannelWithOptions(ctx, Rollback, workflow.SignalChannelOptions{Description: `Roll back to the previous version now: {"actor": "your-name", "reason": "why"}`})

	events := append([]GuardianEvent(nil), in.Pending...)
	g.in.Pending = nil
	receive := func(sel workflow.Selector) {
		sel.AddReceive(promotedCh, func(c workflow.ReceiveChannel, _ bool) {
			var u GuardianUpdate
			c.Receive(ctx, &u)
			events = append(events, GuardianEvent{Promoted: &u})
		})
		sel.AddReceive(driftCh, func(c workflow.ReceiveChannel, _ bool) {
			var d modelplane.DriftSignal
			c.Receive(ctx, &d)
			events = append(events, GuardianEvent{Drift: &d})
		})
		sel.AddReceive(rollbackCh, func(c workflow.ReceiveChannel, _ bool) {
			var r RollbackRequest
			c.Receive(ctx, &r)
			events = append(events, GuardianEvent{Rollback: &r})
		})
	}
	g.details(ctx)

	for turn := 0; ; turn++ {
		for len(events) > 0 {
			e := events[0]
			events = events[1:]
			g.handle(ctx, e)
		}
		if turn >= turnsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Drain what already arrived so no signal is lost between runs.
			for {
				sel := workflow.NewSelector(ctx)
				receive(sel)
				sel.AddDefault(func() {})
				before := len(events)
				sel.Select(ctx)
				if len(events) == before {
					break
				}
			}
			next := g.in
			next.AuditSeq = g.audit.n
			next.Pending = events
			return workflow.NewContinueAsNewError(ctx, DeploymentGuardian, next)
		}

		st, ctxErr := g.context(ctx)
		if ctxErr != nil {
			st.Interval = modelplane.Duration(modelplane.DefaultGuardInterval)
		}
		timerCtx, cancel := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(timerCtx, st.Interval.D())
		sel := workflow.NewSelector(ctx)
		fired := false
		sel.AddFuture(timer, func(workflow.Future) { fired = true })
		receive(sel)
		sel.Select(ctx)
		cancel()
		if fired && !st.Busy && g.in.Stable != "" {
			g.check(ctx, st)
		}
		if fired && ctxErr == nil && g.in.Stable != "" && workflow.GetVersion(ctx, "platform-drift", workflow.DefaultVersion, 1) == 1 {
			g.reconcile(ctx, st)
		}
	}
}

type guardian struct {
	in    GuardianInput
	audit auditLog
	view  GuardianView
	ops   bool // awaits platform operations, mirrors stages (provider-operations)
}

func (g *guardian) add(ctx workflow.Context, action modelplane.AuditAction, actor, decision string, details map[string]any) {
	// The record concerns the version that was serving: the one rolled back
	// from, when there is one.
	version := g.in.Stable
	if from, ok := details["from"].(string); ok && from != "" {
		version = from
	}
	g.audit.add(ctx, modelplane.AuditRecord{Actor: actor, Action: action, Subject: g.in.Model + " on " + g.in.Target,
		Model: g.in.Model, Version: version, Target: g.in.Target, Decision: decision, Details: details})
}

func (g *guardian) flush(ctx workflow.Context, dep *modelplane.Deployment) {
	in := activities.ProgressInput{Deployment: dep, Audit: g.audit.take()}
	if err := workflow.ExecuteActivity(withActivity(ctx, 20), acts.RecordProgress, in).Get(ctx, nil); err != nil {
		g.audit.pending = append(in.Audit, g.audit.pending...)
	} else if events := eventsOf(in.Audit); len(events) > 0 && publishing(ctx) {
		if err := workflow.ExecuteActivity(withPublish(ctx), acts.Publish, activities.PublishInput{Events: events}).Get(ctx, nil); err != nil {
			logger(ctx, "", g.in.Model, g.in.Target).Error("event delivery gave up", "error", err)
		}
	}
	g.details(ctx)
}

func (g *guardian) details(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("### Guarding %s on %s\n\n**Stable:** %s · **Previous (kept warm for rollback):** %s\n\n"+
		"Send a Signal → `rollback` with `{\"actor\": \"your-name\", \"reason\": \"...\"}` to return to the previous version now.\n",
		g.in.Model, g.in.Target, nonEmpty(g.in.Stable, "none"), nonEmpty(g.in.Previous, "none")))
}

func (g *guardian) ref() activities.VersionRef {
	return activities.VersionRef{Model: g.in.Model, Version: g.in.Stable, Target: g.in.Target}
}

// context reads the target's settings and whether a promotion owns the pair now.
func (g *guardian) context(ctx workflow.Context) (activities.GuardianState, error) {
	var st activities.GuardianState
	err := workflow.ExecuteActivity(withActivity(ctx, 5), acts.GuardianContext, g.ref()).Get(ctx, &st)
	return st, err
}

func (g *guardian) handle(ctx workflow.Context, e GuardianEvent) {
	if e.Drift != nil || e.Rollback != nil {
		if st, err := g.context(ctx); err == nil && st.Busy {
			// A running promotion moves traffic; two writers would fight. The
			// promotion has its own analysis and rollback.
			g.add(ctx, modelplane.AuditRollbackDeferred, "system", "skipped", map[string]any{"why": "a promotion of this model on this target is running", "drift": e.Drift, "rollback": e.Rollback})
			g.flush(ctx, nil)
			return
		}
	}
	switch {
	case e.Promoted != nil:
		g.in.Stable, g.in.Previous, g.in.Failures = e.Promoted.Stable, e.Promoted.Previous, 0
		g.add(ctx, modelplane.AuditGuardianWatching, "system", e.Promoted.Stable, map[string]any{"previous": e.Promoted.Previous, "promotion_id": e.Promoted.PromotionID})
		g.flush(ctx, nil)
	case e.Drift != nil:
		d := e.Drift
		if d.Version != "" && d.Version != g.in.Stable {
			g.add(ctx, modelplane.AuditDriftIgnored, nonEmpty(d.Source, "drift-signal"), "ignored", map[string]any{"version": d.Version, "stable": g.in.Stable})
			g.flush(ctx, nil)
			return
		}
		g.rollback(ctx, modelplane.CauseDrift, nonEmpty(d.Source, "drift-signal"), fmt.Sprintf("drift after promotion: %s=%g from %s", d.Metric, d.Score, nonEmpty(d.Source, "unknown")), d)
	case e.Rollback != nil:
		g.rollback(ctx, modelplane.CauseManual, e.Rollback.Actor, "manual rollback by "+e.Rollback.Actor+": "+nonEmpty(e.Rollback.Reason, "no reason given"), nil)
	}
}

// check measures the stable version against the target's thresholds and,
// when the target has them, its metric checks.
func (g *guardian) check(ctx workflow.Context, st activities.GuardianState) {
	var h modelplane.Health
	in := activities.HealthInput{VersionRef: g.ref(), Window: st.Interval}
	g.view.LastCheck = workflow.Now(ctx).UTC()
	phase, msg := modelplane.PhaseError, ""
	if err := workflow.ExecuteActivity(withActivity(ctx, 3), acts.Health, in).Get(ctx, &h); err == nil {
		g.view.LastHealth = &h
		phase, msg = modelplane.Evaluate(h, st.Analysis.Thresholds)
	}
	var drift *modelplane.DriftSignal
	if st.Analysis.MaxDrift != nil && !h.NoData && h.Drift > *st.Analysis.MaxDrift {
		drift = &modelplane.DriftSignal{Model: g.in.Model, Target: g.in.Target, Version: g.in.Stable, Metric: "drift", Score: h.Drift, Source: "guardian"}
	}
	if len(st.Analysis.Checks) > 0 && workflow.GetVersion(ctx, "guardian-metric-checks", workflow.DefaultVersion, 1) == 1 {
		phases := []string{phase}
		var bad []string
		if phase != modelplane.PhaseSuccessful && msg != "" {
			bad = append(bad, msg)
		}
		vars := modelplane.QueryVars{Model: g.in.Model, Version: g.in.Stable, Target: g.in.Target, Window: modelplane.PromDuration(st.Interval.D())}
		for _, c := range st.Analysis.Checks {
			p, m, res := measureCheck(ctx, g.in.Target, c, vars)
			phases = append(phases, p)
			if p == modelplane.PhaseFailed {
				bad = append(bad, m)
				if c.Drift && drift == nil {
					drift = &modelplane.DriftSignal{Model: g.in.Model, Target: g.in.Target, Version: g.in.Stable, Metric: c.Name, Score: res.Value, Source: "guardian"}
				}
			}
		}
		phase, msg = modelplane.Worst(phases...), strings.Join(bad, "; ")
	}
	if phase != modelplane.PhaseFailed {
		// Errors and missing data are not evidence against a serving version.
		g.in.Failures = 0
		return
	}
	g.in.Failures++
	limit := 0
	if st.Analysis.FailureLimit != nil {
		limit = *st.Analysis.FailureLimit
	}
	if limit >= 0 && g.in.Failures > limit {
		cause := modelplane.CauseHealth
		if drift != nil {
			cause = modelplane.CauseDrift
		}
		g.rollback(ctx, cause, "guardian", "health check failed after promotion: "+msg, drift)
	}
}

// rollback returns traffic to the previous stable version, traffic first.
func (g *guardian) rollback(ctx workflow.Context, cause modelplane.RollbackCause, actor, reason string, d *modelplane.DriftSignal) {
	bad := g.in.Stable
	if g.in.Previous == "" || bad == "" {
		g.add(ctx, modelplane.AuditRollback, actor, "impossible", map[string]any{"cause": cause, "reason": reason, "why": "no previous version kept"})
	} else {
		g.in.MutSeq++
		in := activities.TrafficInput{Model: g.in.Model, Target: g.in.Target, Split: modelplane.TrafficSplit{g.in.Previous: 100},
			MutationID: fmt.Sprintf("%s/g%d", GuardianWorkflowID(g.in.Model, g.in.Target), g.in.MutSeq)}
		if err := mutate(ctx, withActivity(ctx, 0), g.ops, g.in.Target, acts.SetTraffic, in); err != nil {
			g.add(ctx, modelplane.AuditRollback, actor, "failed", map[string]any{"cause": cause, "reason": reason, "error": errText(err)})
			g.flush(ctx, nil)
			return
		}
		g.in.Stable, g.in.Previous, g.in.Failures = g.in.Previous, "", 0
		g.add(ctx, modelplane.AuditRollback, actor, "rolled_back", map[string]any{"cause": cause, "reason": reason, "from": bad, "to": g.in.Stable, "mutation_id": in.MutationID})
		g.flush(ctx, &modelplane.Deployment{Model: g.in.Model, Target: g.in.Target, Stable: g.in.Stable, Traffic: in.Split, UpdatedAt: workflow.Now(ctx).UTC()})
		if g.ops {
			c := modelplane.StageChange{Model: g.in.Model, Version: bad, Stage: modelplane.VersionRolledBack, Previous: g.in.Stable, Note: reason}
			if stager, err := markVersion(ctx, g.in.Target, c); err != nil {
				g.add(ctx, modelplane.AuditRegistryMirrorFailed, "system", c.Stage, map[string]any{"version": bad, "error": errText(err)})
			} else if stager {
				g.add(ctx, modelplane.AuditRegistryMarked, "system", c.Stage, map[string]any{"version": bad, "previous": g.in.Stable})
			}
		}
	}
	if cause == "drift" {
		g.in.MutSeq++
		rin := activities.RetrainInput{EventID: fmt.Sprintf("%s/retrain/%d", GuardianWorkflowID(g.in.Model, g.in.Target), g.in.MutSeq),
			Model: g.in.Model, Target: g.in.Target, Version: bad, Reason: reason, Drift: d}
		decision, details := requestRetrain(ctx, rin)
		g.add(ctx, modelplane.AuditRetrain, "system", decision, details)
	}
	g.flush(ctx, nil)
}
