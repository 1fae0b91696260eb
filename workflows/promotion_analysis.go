package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"go.temporal.io/sdk/workflow"
)

// analyze measures the candidate (and, in shadow, the stable version for
// comparison) and applies the analysis run. It returns whether to go on.
func (w *promotion) analyze(ctx workflow.Context, step string, window modelplane.Duration) bool {
	for {
		var h modelplane.Health
		phase, msg := "", ""
		in := activities.HealthInput{VersionRef: activities.VersionRef{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target}, Window: window}
		if err := workflow.ExecuteActivity(withActivity(ctx, 3), acts.Health, in).Get(ctx, &h); err != nil {
			phase, msg = modelplane.PhaseError, errText(err)
		} else {
			phase, msg = modelplane.Evaluate(h, w.p.Analysis.Thresholds)
			if step == "shadow" && w.stable != "" && phase == modelplane.PhaseSuccessful {
				var sh modelplane.Health
				in.Version = w.stable
				if workflow.ExecuteActivity(withActivity(ctx, 3), acts.Health, in).Get(ctx, &sh) == nil && !sh.NoData {
					msg = fmt.Sprintf("candidate error_rate %.4g / p99 %.4gms vs stable %.4g / %.4gms", h.ErrorRate, h.LatencyP99Ms, sh.ErrorRate, sh.LatencyP99Ms)
				}
			}
		}
		w.p.AnalysisResults = append(w.p.AnalysisResults, modelplane.AnalysisResult{Step: step, Version: w.p.Version, Phase: phase, Health: h, Message: msg, At: workflow.Now(ctx).UTC()})
		w.audit.add(ctx, w.record(modelplane.AuditAnalysis, "system", phase, map[string]any{"step": step, "message": msg}))
		if len(w.p.Analysis.Checks) > 0 && workflow.GetVersion(ctx, "metric-checks", workflow.DefaultVersion, 1) == 1 {
			var bad []string
			phase, bad = w.metricChecks(ctx, step, window, phase)
			if len(bad) > 0 {
				msg = strings.Join(bad, "; ")
			}
			if w.abort != nil {
				// Stopped while waiting between measurements (drift, manual): keep that cause.
				return false
			}
		}
		switch w.run.Add(phase) {
		case modelplane.PhaseFailed:
			w.abort = &abort{Cause: modelplane.CauseAnalysis, Actor: "system", Reason: fmt.Sprintf("analysis failed at %s: %s", step, msg)}
			return false
		case modelplane.PhaseInconclusive:
			return w.awaitDecision(ctx, step, msg)
		}
		w.flush(ctx, nil)
		if phase != modelplane.PhaseError {
			return w.abort == nil
		}
		// Argo retries errored measurements after a short pause.
		if !w.bake(ctx, 10*time.Second) {
			return false
		}
	}
}

// metricChecks measures every check (Count times, Interval apart) and returns
// the worst phase together with the provider's, plus what was not healthy.
func (w *promotion) metricChecks(ctx workflow.Context, step string, window modelplane.Duration, health string) (string, []string) {
	phases := []string{health}
	var bad []string
	vars := modelplane.QueryVars{Model: w.p.Model, Version: w.p.Version, Target: w.p.Target, Window: modelplane.PromDuration(window.D())}
	for _, c := range w.p.Analysis.Checks {
		count, interval := c.Count, c.Interval.D()
		if count <= 0 {
			count = 1
		}
		if interval <= 0 {
			interval = 10 * time.Second
		}
		for i := 0; i < count; i++ {
			if i > 0 && !w.bake(ctx, interval) {
				return modelplane.Worst(phases...), bad // w.abort says why; the caller stops
			}
			phase, msg, res := measureCheck(ctx, w.p.Target, c, vars)
			r := modelplane.AnalysisResult{Step: step, Version: w.p.Version, Check: c.Name, Query: res.Query, Phase: phase, Message: msg, At: workflow.Now(ctx).UTC()}
			if phase != modelplane.PhaseError && !res.Empty {
				v := res.Value
				r.Value = &v
			}
			w.p.AnalysisResults = append(w.p.AnalysisResults, r)
			w.audit.add(ctx, w.record(modelplane.AuditAnalysis, "system", phase, map[string]any{"step": step, "check": c.Name, "query": res.Query, "message": msg}))
			phases = append(phases, phase)
			if phase != modelplane.PhaseSuccessful {
				bad = append(bad, msg)
			}
		}
	}
	return modelplane.Worst(phases...), bad
}

func (w *promotion) awaitDecision(ctx workflow.Context, step, msg string) bool {
	prev := w.p.Stage
	w.decision = nil
	w.stage(ctx, modelplane.StageAwaitingDecision, fmt.Sprintf("inconclusive at %s (%s): promote or rollback?", step, msg))
	timeout := w.p.Analysis.DecisionTimeout.D()
	ok, _ := workflow.AwaitWithTimeout(ctx, timeout, func() bool { return w.decision != nil || w.abort != nil })
	if w.abort != nil {
		return false
	}
	if !ok {
		w.abort = &abort{Cause: modelplane.CauseDecisionTimeout, Actor: "system", Reason: fmt.Sprintf("no decision within %s after inconclusive analysis at %s", timeout, step)}
		return false
	}
	d := *w.decision
	w.audit.add(ctx, w.record(modelplane.AuditDecision, d.Actor, d.Decision, map[string]any{"step": step}))
	if d.Decision == "rollback" {
		w.abort = &abort{Cause: modelplane.CauseManual, Actor: d.Actor, Reason: fmt.Sprintf("%s chose rollback after inconclusive analysis at %s", d.Actor, step)}
		return false
	}
	w.stage(ctx, prev, "promoted by "+d.Actor+" after inconclusive analysis")
	return true
}

// monitor runs the same analysis over the watch window after full rollout.
func (w *promotion) monitor(ctx workflow.Context) bool {
	window := w.p.Strategy.MonitorWindow.D()
	interval := w.p.Strategy.Bake.D()
	if interval <= 0 || interval > window {
		interval = window
	}
	for elapsed := time.Duration(0); elapsed < window; elapsed += interval {
		if !w.bake(ctx, interval) || !w.analyze(ctx, "monitor", modelplane.Duration(interval)) {
			return false
		}
	}
	return true
}
