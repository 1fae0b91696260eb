package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// --- rollout ---

func (w *promotion) nextMutation() string {
	w.mutSeq++
	return fmt.Sprintf("%s/m%d", w.p.ID, w.mutSeq)
}

func (w *promotion) deployment(ctx workflow.Context, candidate string) *modelplane.Deployment {
	return &modelplane.Deployment{Model: w.p.Model, Target: w.p.Target, Stable: w.stable, PreviousStable: w.before.PreviousStable, Candidate: candidate, Traffic: w.p.Traffic, UpdatedAt: workflow.Now(ctx).UTC()}
}

// mark mirrors a stage into the registries that keep the version (runs
// that await operations only). A failure is audited and returned: most
// callers go on, but the champion move is a saga step.
func (w *promotion) mark(ctx workflow.Context, stage, previous, note string) error {
	if !w.ops {
		return nil
	}
	c := modelplane.StageChange{Model: w.p.Model, Version: w.p.Version, Stage: stage, Previous: previous, PromotionID: w.p.ID, Note: note, Evidence: w.evidence()}
	stager, err := w.markVersion(ctx, c)
	switch {
	case err != nil:
		w.audit.add(ctx, w.record(modelplane.AuditRegistryMirrorFailed, "system", stage, map[string]any{"error": errText(err)}))
	case stager:
		w.audit.add(ctx, w.record(modelplane.AuditRegistryMarked, "system", stage, map[string]any{"previous": previous}))
	}
	return err
}

// evidence is what registries record beside a stage (MLflow tags).
func (w *promotion) evidence() map[string]string {
	ev := map[string]string{"modelplane.promotion_id": w.p.ID, "modelplane.target": w.p.Target}
	if w.p.Validation != nil {
		ev["modelplane.validation"] = map[bool]string{true: "passed", false: "failed"}[w.p.Validation.Passed]
	}
	if who := w.approvers(); len(who) > 0 {
		ev["modelplane.approvers"] = strings.Join(who, ",")
	}
	return ev
}

// approvers are who approved, in order.
func (w *promotion) approvers() []string {
	var who []string
	for _, a := range w.p.Approvals {
		if a.Decision == "approve" {
			who = append(who, a.Approver)
		}
	}
	return who
}

func (w *promotion) setTraffic(ctx workflow.Context, split modelplane.TrafficSplit, note string) error {
	in := activities.TrafficInput{Model: w.p.Model, Target: w.p.Target, Split: split, MutationID: w.nextMutation()}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.SetTraffic, in); err != nil {
		return err
	}
	w.p.Traffic = split
	w.audit.add(ctx, w.record(modelplane.AuditTraffic, "system", split.String(), map[string]any{"mutation_id": in.MutationID, "note": note}))
	w.flush(ctx, w.deployment(ctx, w.p.Version))
	return nil
}

// bake waits d unless something asks to stop; it reports whether to go on.
func (w *promotion) bake(ctx workflow.Context, d time.Duration) bool {
	if w.abort != nil {
		return false
	}
	_, _ = workflow.AwaitWithTimeout(ctx, d, func() bool { return w.abort != nil })
	return w.abort == nil
}

// rollout moves traffic by strategy; false means stop and roll back (w.abort says why).
func (w *promotion) rollout(ctx workflow.Context) bool {
	s := w.p.Strategy
	typ := s.Type
	if w.stable == "" && typ != modelplane.StrategyDirect {
		// Nothing serves yet: there is no stable side to split or compare with.
		w.audit.add(ctx, w.record(modelplane.AuditStrategyChanged, "system", modelplane.StrategyDirect, map[string]any{"requested": typ, "why": "first deployment on this target"}))
		typ = modelplane.StrategyDirect
	}
	if typ == modelplane.StrategyShadow {
		if !w.shadow(ctx, s.Then == modelplane.StrategyDirect) {
			return false
		}
		typ = s.Then
	}
	if w.native && (typ == modelplane.StrategyCanary || typ == modelplane.StrategyBlueGreen) {
		return w.nativeRollout(ctx, typ)
	}
	var err error
	switch typ {
	case modelplane.StrategyDirect:
		w.stage(ctx, modelplane.StageDirect, "")
		err = w.setTraffic(ctx, modelplane.TrafficSplit{w.p.Version: 100}, "direct")
	case modelplane.StrategyCanary:
		w.stage(ctx, modelplane.StageCanary, fmt.Sprintf("steps %v, bake %s", s.Steps, s.Bake))
		for _, weight := range s.Steps {
			split := modelplane.TrafficSplit{w.p.Version: weight}
			if weight < 100 {
				split[w.stable] = 100 - weight
			}
			if w.gov {
				// Each step is a transition: a closed change window stops it.
				if d, ok := w.authorize(ctx, "promotion.step", systemCaller, map[string]any{"weight": weight}); !ok {
					w.abort = &abort{Cause: modelplane.CausePolicy, Actor: "system", Reason: fmt.Sprintf("policy stopped canary step %d%%: %s", weight, d.Reason())}
					return false
				}
			}
			if err = w.setTraffic(ctx, split, fmt.Sprintf("canary step %d%%", weight)); err != nil {
				break
			}
			if !w.bake(ctx, s.Bake.D()) || !w.analyze(ctx, fmt.Sprintf("canary %d%%", weight), s.Bake) {
				return false
			}
		}
	case modelplane.StrategyBlueGreen:
		w.stage(ctx, modelplane.StageBlueGreen, "")
		var ready bool
		ref := activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}
		if err := workflow.ExecuteActivity(withActivity(ctx, 10), acts.Ready, ref).Get(ctx, &ready); err != nil || !ready {
			w.abort = &abort{Cause: modelplane.CauseAnalysis, Actor: "system", Reason: fmt.Sprintf("green version %s is not ready on %s", w.p.Version, w.p.Target)}
			return false
		}
		if err = w.setTraffic(ctx, modelplane.TrafficSplit{w.p.Version: 100}, "blue/green switch; "+w.stable+" kept warm"); err == nil {
			if !w.bake(ctx, s.Bake.D()) || !w.analyze(ctx, "bluegreen", s.Bake) {
				return false
			}
		}
	}
	if err != nil {
		// The activity gave up (invalid request or retries exhausted): try to put things back.
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "traffic change failed: " + errText(err)}
		return false
	}
	return true
}

// nativeRollout lets the platform run the canary with its own alarm-driven
// rollback, waits for it, then judges the result like any other step.
func (w *promotion) nativeRollout(ctx workflow.Context, typ string) bool {
	w.stage(ctx, modelplane.StageCanary, "the platform runs the "+typ+" itself (rollout: native), with its alarm rollback")
	in := activities.NativeInput{Model: w.p.Model, Target: w.p.Target, Stable: w.stable, Candidate: w.p.Version, MutationID: w.nextMutation()}
	var op modelplane.Op
	if err := workflow.ExecuteActivity(withActivity(ctx, 0), acts.StartNative, in).Get(ctx, &op); err != nil {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record(modelplane.AuditNativeRolloutStarted, "system", typ, map[string]any{"mutation_id": in.MutationID, "operation": op.ID}))
	w.flush(ctx, nil)
	st, err := awaitOp(ctx, w.p.Target, op)
	switch {
	case err != nil:
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + errText(err)}
		return false
	case st.NeedsHuman:
		w.abort = &abort{Cause: modelplane.CausePlatformStuck, Actor: "platform", Reason: opFailed{st}.Error()}
		return false
	case st.RolledBack:
		// Traffic is back on the stable version already; say why, in the platform's words.
		w.abort = &abort{Cause: modelplane.CausePlatformRollback, Actor: "platform", Reason: opFailed{st}.Error()}
		return false
	case st.Failed:
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "native rollout: " + opFailed{st}.Error()}
		return false
	}
	w.p.Traffic = modelplane.TrafficSplit{w.p.Version: 100}
	w.audit.add(ctx, w.record(modelplane.AuditTraffic, "platform", w.p.Traffic.String(), map[string]any{"mutation_id": in.MutationID, "note": "native rollout finished"}))
	w.flush(ctx, w.deployment(ctx, w.p.Version))
	return w.bake(ctx, w.p.Strategy.Bake.D()) && w.analyze(ctx, "native "+typ, w.p.Strategy.Bake)
}

// shadow mirrors requests to the candidate and compares it with the stable
// version; promote asks the platform to make the shadow serve when it stops.
func (w *promotion) shadow(ctx workflow.Context, promote bool) bool {
	s := w.p.Strategy
	w.stage(ctx, modelplane.StageShadow, fmt.Sprintf("mirroring %d%% for %s", s.ShadowPercent, s.Bake))
	start := activities.ShadowInput{Model: w.p.Model, Target: w.p.Target, Shadow: &modelplane.Shadow{Version: w.p.Version, Percent: s.ShadowPercent}, MutationID: w.nextMutation()}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.Shadow, start); err != nil {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "start shadow: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record(modelplane.AuditShadowStarted, "system", fmt.Sprintf("%d%%", s.ShadowPercent), map[string]any{"mutation_id": start.MutationID}))
	ok := w.bake(ctx, s.Bake.D()) && w.analyze(ctx, "shadow", s.Bake)
	stop := activities.ShadowInput{Model: w.p.Model, Target: w.p.Target, MutationID: w.nextMutation(), Promote: ok && promote && w.ops}
	if err := mutate(ctx, withActivity(ctx, 0), w.ops, w.p.Target, acts.Shadow, stop); err != nil && ok {
		w.abort = &abort{Cause: modelplane.CauseProvider, Actor: "system", Reason: "stop shadow: " + errText(err)}
		return false
	}
	w.audit.add(ctx, w.record(modelplane.AuditShadowStopped, "system", "", map[string]any{"mutation_id": stop.MutationID}))
	return ok
}
