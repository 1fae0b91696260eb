package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"
)

// PipelineWorkflow is the workflow type of a pipeline run.
const PipelineWorkflow = "PipelineRun"

// PromoteStage is the signal a person sends to promote a stage that does
// not promote itself.
const PromoteStage = "promote_stage"

// PipelineRunID is the workflow id of the run of a version through a pipeline.
func PipelineRunID(pipeline, model, version string) string {
	return fmt.Sprintf("pipeline/%s/%s/%s", pipeline, model, version)
}

// PipelineRunInput starts a version through a pipeline.
type PipelineRunInput struct {
	Pipeline modelplane.Pipeline `json:"pipeline"`
	Model    string              `json:"model"`
	Version  string              `json:"version"`
	// RequestedBy started the run; stages that promote themselves act as
	// modelplane, the others as whoever promotes them.
	RequestedBy string `json:"requested_by"`
	// Hotfix, when set, is the reason to skip soak times; it is audited.
	Hotfix string `json:"hotfix,omitempty"`
}

// StagePromotion is a person's go for a stage: the API sends it after the
// policy allowed that person to promote, with who they are.
type StagePromotion struct {
	Stage string               `json:"stage"`
	By    modelplane.Principal `json:"by"`
}

// TargetRun is one target of a stage and its promotion.
type TargetRun struct {
	Target      string `json:"target"`
	Wave        int    `json:"wave"`
	PromotionID string `json:"promotion_id,omitempty"`
	Status      string `json:"status,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// StageRun is where the version is in one stage.
type StageRun struct {
	Name       string                 `json:"name"`
	Status     modelplane.StageStatus `json:"status"`
	Note       string                 `json:"note,omitempty"`
	VerifiedAt *time.Time             `json:"verified_at,omitempty"`
	Targets    []TargetRun            `json:"targets"`
}

// PipelineRunView is what the status query and the run's result say:
// which stage verified the version, which holds it and why.
type PipelineRunView struct {
	Pipeline string     `json:"pipeline"`
	Model    string     `json:"model"`
	Version  string     `json:"version"`
	Stages   []StageRun `json:"stages"`
}

type pipelineRun struct {
	in       PipelineRunInput
	view     PipelineRunView
	audit    auditLog
	promoted map[string]modelplane.Principal // stage → who promoted it
	local    bool                            // on the pipeline-local-steps branch
}

// PipelineRun moves one version through a pipeline: each stage waits for
// its upstream stages, then its gates (freeze, window, soak, a person or the
// policy's auto-promotion), then promotes its targets wave by wave, each
// target as a child Promotion workflow. A failed stage leaves earlier
// stages as they are and skips the stages after it.
func PipelineRun(ctx workflow.Context, in PipelineRunInput) (PipelineRunView, error) {
	r := &pipelineRun{in: in, promoted: map[string]modelplane.Principal{},
		audit: auditLog{prefix: PipelineRunID(in.Pipeline.Name, in.Model, in.Version)},
		view:  PipelineRunView{Pipeline: in.Pipeline.Name, Model: in.Model, Version: in.Version}}
	r.local = pipelineLocal(ctx)
	for _, s := range in.Pipeline.Stages {
		sr := StageRun{Name: s.Name, Status: modelplane.PipelineWaiting}
		for w, wave := range s.Waves {
			for _, t := range wave.Targets {
				sr.Targets = append(sr.Targets, TargetRun{Target: t, Wave: w})
			}
		}
		r.view.Stages = append(r.view.Stages, sr)
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, Status, func() (PipelineRunView, error) { return r.view, nil },
		workflow.QueryHandlerOptions{Description: "Each stage: waiting, gated, promoting, verified, failed or skipped, with its targets' promotions"}); err != nil {
		return r.view, err
	}
	promoteCh := workflow.GetSignalChannelWithOptions(ctx, PromoteStage, workflow.SignalChannelOptions{Description: `Promote a stage that waits for a person (send it through the API, which checks who you are): {"stage": "prod"}`})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p StagePromotion
			promoteCh.Receive(ctx, &p)
			if _, ok := r.promoted[p.Stage]; !ok && p.By.Name != "" {
				r.promoted[p.Stage] = p.By
			}
		}
	})
	for i := range in.Pipeline.Stages {
		workflow.Go(ctx, func(ctx workflow.Context) { r.stage(ctx, i) })
	}
	err := workflow.Await(ctx, func() bool {
		for _, s := range r.view.Stages {
			if !slices.Contains([]modelplane.StageStatus{modelplane.PipelineVerified, modelplane.PipelineFailed, modelplane.PipelineSkipped}, s.Status) {
				return false
			}
		}
		return true
	})
	r.flush(ctx)
	return r.view, err
}

func (r *pipelineRun) index(name string) int {
	return slices.IndexFunc(r.view.Stages, func(s StageRun) bool { return s.Name == name })
}

func (r *pipelineRun) record(ctx workflow.Context, action modelplane.AuditAction, actor, decision, stage string, details map[string]any) {
	r.audit.add(ctx, modelplane.AuditRecord{Actor: actor, Action: action, Decision: decision, Model: r.in.Model, Version: r.in.Version,
		Subject: fmt.Sprintf("pipeline %s: %s@%s, stage %s", r.in.Pipeline.Name, r.in.Model, r.in.Version, stage), Details: details})
}

func (r *pipelineRun) flush(ctx workflow.Context) {
	recs := r.audit.take()
	if len(recs) == 0 {
		return
	}
	if err := r.step(ctx, 20, acts.RecordProgress, activities.ProgressInput{Audit: recs}).Get(ctx, nil); err != nil {
		r.audit.pending = append(recs, r.audit.pending...)
	}
}

// set moves stage i to st once the audit has it, so what the status query
// shows is always on record.
func (r *pipelineRun) set(ctx workflow.Context, i int, st modelplane.StageStatus, note string) {
	details := map[string]any{"pipeline": r.in.Pipeline.Name, "stage": r.view.Stages[i].Name}
	if note != "" {
		details["note"] = note
	}
	r.record(ctx, modelplane.AuditPipelineStage, "system", string(st), r.view.Stages[i].Name, details)
	r.flush(ctx)
	r.view.Stages[i].Status, r.view.Stages[i].Note = st, note
}

// stage runs stage i from waiting to verified, failed or skipped.
func (r *pipelineRun) stage(ctx workflow.Context, i int) {
	s := r.in.Pipeline.Stages[i]
	// 1. Upstream stages: all (or one) verified; a failure upstream skips this one.
	var upstream []int
	for _, u := range s.Upstream {
		upstream = append(upstream, r.index(u))
	}
	verified := func() (ok, impossible bool) {
		n, dead := 0, 0
		for _, u := range upstream {
			switch r.view.Stages[u].Status {
			case modelplane.PipelineVerified:
				n++
			case modelplane.PipelineFailed, modelplane.PipelineSkipped:
				dead++
			}
		}
		if s.Require == modelplane.RequireOne {
			return len(upstream) == 0 || n > 0, len(upstream) > 0 && dead == len(upstream)
		}
		return n == len(upstream), dead > 0
	}
	_ = workflow.Await(ctx, func() bool { ok, no := verified(); return ok || no })
	if ok, _ := verified(); !ok {
		r.set(ctx, i, modelplane.PipelineSkipped, "an upstream stage did not verify the version")
		return
	}
	r.set(ctx, i, modelplane.PipelineGated, "")

	// 2. Gates, cheapest first: freeze, window, soak, then a person or the policy.
	if !r.gates(ctx, i, upstream) {
		return
	}
	// 3. Waves.
	r.set(ctx, i, modelplane.PipelinePromoting, "")
	for w := range s.Waves {
		if failed := r.wave(ctx, i, w); failed != "" {
			r.set(ctx, i, modelplane.PipelineFailed, failed)
			return
		}
	}
	now := workflow.Now(ctx).UTC()
	r.view.Stages[i].VerifiedAt = &now
	r.set(ctx, i, modelplane.PipelineVerified, "")
}

// hold notes why a stage waits, once per reason.
func (r *pipelineRun) hold(ctx workflow.Context, i int, gate, note string) {
	if r.view.Stages[i].Note == note {
		return
	}
	r.view.Stages[i].Note = note
	r.record(ctx, modelplane.AuditPipelineGate, "system", "held", r.view.Stages[i].Name, map[string]any{"gate": gate, "note": note})
	r.flush(ctx)
}

// gates holds stage i until its gates pass; false when the stage failed.
func (r *pipelineRun) gates(ctx workflow.Context, i int, upstream []int) bool {
	s := r.in.Pipeline.Stages[i]
	name := s.Name
	r.awaitThaw(ctx, i)
	if open, ok := modelplane.NextOpen(s.Windows, workflow.Now(ctx)); !ok {
		r.set(ctx, i, modelplane.PipelineFailed, "none of the stage's windows ever opens")
		return false
	} else if wait := open.Sub(workflow.Now(ctx)); wait > 0 {
		r.hold(ctx, i, "window", "outside the stage's windows until "+open.Format(time.RFC3339))
		_ = workflow.Sleep(ctx, wait)
	}
	if s.Soak > 0 && len(upstream) > 0 {
		if r.in.Hotfix != "" {
			r.record(ctx, modelplane.AuditPipelineGate, r.in.RequestedBy, "bypassed", name, map[string]any{"gate": "soak", "soak": s.Soak, "hotfix": r.in.Hotfix})
			r.flush(ctx)
		} else {
			// The soak counts from the latest upstream verification: the
			// version must have served there continuously since.
			var since time.Time
			var targets []string
			for _, u := range upstream {
				st := r.view.Stages[u]
				if st.Status != modelplane.PipelineVerified {
					continue
				}
				if st.VerifiedAt.After(since) {
					since = *st.VerifiedAt
				}
				for _, t := range st.Targets {
					targets = append(targets, t.Target)
				}
			}
			until := since.Add(s.Soak.D())
			mark := activities.SoakMark{Pipeline: r.in.Pipeline.Name, Model: r.in.Model, Version: r.in.Version, Stages: s.Upstream, Until: until}
			if wait := until.Sub(workflow.Now(ctx)); wait > 0 {
				// Said in the store, so newer versions wait before entering
				// the stages this one soaks in (their promotion would end it).
				_ = r.step(ctx, 5, acts.BeginSoak, mark).Get(ctx, nil)
				r.hold(ctx, i, "soak", fmt.Sprintf("soaking in %s until %s", strings.Join(s.Upstream, ", "), until.Format(time.RFC3339)))
				_ = workflow.Sleep(ctx, wait)
			}
			var broken []string
			in := activities.SoakInput{Model: r.in.Model, Version: r.in.Version, Targets: targets}
			err := r.step(ctx, 5, acts.SoakBroken, in).Get(ctx, &broken)
			_ = r.step(ctx, 5, acts.EndSoak, mark).Get(ctx, nil)
			if err != nil {
				r.set(ctx, i, modelplane.PipelineFailed, "soak could not be checked: "+errText(err))
				return false
			}
			if len(broken) > 0 {
				r.set(ctx, i, modelplane.PipelineFailed, fmt.Sprintf("soak broken: %s no longer serves %s", strings.Join(broken, ", "), r.in.Version))
				return false
			}
			r.record(ctx, modelplane.AuditPipelineGate, "system", "passed", name, map[string]any{"gate": "soak", "soak": s.Soak, "targets": targets})
			r.flush(ctx)
		}
	}
	if s.Auto {
		// Only where the policy enables auto-promotion into the stage's environment.
		d, err := r.authorize(ctx, i, s.Waves[0].Targets[0], r.system(), true)
		if err == nil && d.Allow {
			r.promoted[name] = r.system()
			r.record(ctx, modelplane.AuditPipelineGate, "system", "passed", name, map[string]any{"gate": "auto_promotion", "policy": d.ID})
			r.flush(ctx)
			r.awaitOtherSoak(ctx, i)
			return true
		}
		why := "the policy does not enable auto-promotion here"
		if err != nil {
			why = errText(err)
		} else if len(d.Reasons) > 0 {
			why = strings.Join(d.Reasons, "; ")
		}
		r.hold(ctx, i, "promotion", "waits for a person: "+why)
	} else if r.promoted[name].Name == "" {
		r.hold(ctx, i, "promotion", "waits for a person to promote it")
	}
	_ = workflow.Await(ctx, func() bool { return r.promoted[name].Name != "" })
	r.record(ctx, modelplane.AuditPipelineGate, r.promoted[name].Name, "passed", name, map[string]any{"gate": "promotion"})
	r.flush(ctx)
	r.awaitOtherSoak(ctx, i)
	return true
}

// awaitOtherSoak holds stage i while another version of the model soaks
// in it on the way to a later stage: promoting this one now would end that
// soak, and a steady stream of candidates would keep any from passing. The
// wait ends with that soak (and a minute for its own check).
func (r *pipelineRun) awaitOtherSoak(ctx workflow.Context, i int) {
	name := r.in.Pipeline.Stages[i].Name
	for {
		var k struct {
			Version string    `json:"version"`
			Until   time.Time `json:"until"`
		}
		mark := activities.SoakMark{Pipeline: r.in.Pipeline.Name, Model: r.in.Model, Version: r.in.Version, Stages: []string{name}}
		if err := r.step(ctx, 5, acts.SoakingIn, mark).Get(ctx, &k); err != nil || k.Version == "" {
			return
		}
		wait := k.Until.Add(time.Minute).Sub(workflow.Now(ctx))
		if wait <= 0 {
			return
		}
		r.hold(ctx, i, "soak", fmt.Sprintf("waits: version %s soaks in %s until %s", k.Version, name, k.Until.Format(time.RFC3339)))
		_ = workflow.Sleep(ctx, min(wait, 15*time.Second))
	}
}

// awaitThaw waits while the installation is frozen, checking every 15 s.
func (r *pipelineRun) awaitThaw(ctx workflow.Context, i int) {
	held := false
	defer func() {
		if held {
			r.view.Stages[i].Note = "" // thawed: the stage no longer waits for it
		}
	}()
	for {
		var f struct {
			On     bool   `json:"on"`
			By     string `json:"by"`
			Reason string `json:"reason"`
		}
		if err := r.readFreeze(ctx, &f); err != nil || !f.On {
			return
		}
		held = true
		r.hold(ctx, i, "freeze", fmt.Sprintf("frozen by %s: %s", f.By, f.Reason))
		_ = workflow.Sleep(ctx, 15*time.Second)
	}
}

func (r *pipelineRun) system() modelplane.Principal {
	return modelplane.Principal{Name: "pipeline/" + r.in.Pipeline.Name, Method: modelplane.AuthSystem}
}

func (r *pipelineRun) authorize(ctx workflow.Context, i int, target string, who modelplane.Principal, auto bool) (modelplane.PolicyDecision, error) {
	in := activities.AuthorizeInput{Action: "promotion.start", Caller: who, Model: r.in.Model, Version: r.in.Version, Target: target,
		Request: map[string]any{"pipeline": r.in.Pipeline.Name, "stage": r.in.Pipeline.Stages[i].Name, "auto": auto}}
	var d modelplane.PolicyDecision
	err := r.step(ctx, 5, acts.Authorize, in).Get(ctx, &d)
	return d, err
}

// wave promotes the targets of wave w of stage i, at most MaxParallel at
// once; it returns why it failed, or "" when every target succeeded.
func (r *pipelineRun) wave(ctx workflow.Context, i, w int) string {
	s := r.in.Pipeline.Stages[i]
	wave := s.Waves[w]
	limit := wave.MaxParallel
	if limit <= 0 {
		limit = len(wave.Targets)
	}
	running, failed := 0, ""
	var succeeded []string
	for _, t := range wave.Targets {
		_ = workflow.Await(ctx, func() bool { return running < limit || failed != "" })
		if failed != "" {
			break // halt: nothing new starts in a failing wave
		}
		r.awaitThaw(ctx, i)
		running++
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { running-- }()
			if why := r.promote(ctx, i, w, t); why != "" {
				if failed == "" {
					failed = why
				}
				return
			}
			succeeded = append(succeeded, t)
		})
	}
	_ = workflow.Await(ctx, func() bool { return running == 0 })
	if failed != "" && wave.OnFailure == modelplane.WaveRollback {
		for _, t := range succeeded {
			err := workflow.SignalExternalWorkflow(ctx, GuardianWorkflowID(r.in.Model, t), "", Rollback,
				RollbackRequest{Actor: r.system().Name, Reason: "wave rolled back: " + failed}).Get(ctx, nil)
			decision := "requested"
			if err != nil {
				decision = "failed"
			}
			r.record(ctx, modelplane.AuditWaveRollback, r.system().Name, decision, s.Name, map[string]any{"target": t, "why": failed})
		}
		r.flush(ctx)
	}
	return failed
}

func (r *pipelineRun) targetRun(i int, target string) *TargetRun {
	ts := r.view.Stages[i].Targets
	return &ts[slices.IndexFunc(ts, func(t TargetRun) bool { return t.Target == target })]
}

// promote runs one target's promotion as a child workflow.
func (r *pipelineRun) promote(ctx workflow.Context, i, w int, target string) string {
	s := r.in.Pipeline.Stages[i]
	tr := r.targetRun(i, target)
	who := r.promoted[s.Name]
	d, err := r.authorize(ctx, i, target, who, who.Method == modelplane.AuthSystem)
	if err == nil && !d.Allow {
		err = fmt.Errorf("denied by policy: %s", strings.Join(d.Reasons, "; "))
	}
	var p modelplane.Promotion
	if err == nil {
		in := activities.StagePromotionInput{Request: modelplane.PromotionRequest{Model: r.in.Model, Version: r.in.Version, Target: target, Strategy: s.Strategy},
			RequestedBy: who.Name, Key: fmt.Sprintf("%s/%s/%s", PipelineRunID(r.in.Pipeline.Name, r.in.Model, r.in.Version), s.Name, target)}
		err = r.step(ctx, 5, acts.PrepareStagePromotion, in).Get(ctx, &p)
	}
	if err != nil {
		tr.Status, tr.Reason = modelplane.StatusFailed, errText(err)
		return fmt.Sprintf("%s: %s", target, tr.Reason)
	}
	tr.PromotionID, tr.Status = p.ID, modelplane.StatusRunning
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: p.WorkflowID, TaskQueue: workflow.GetInfo(ctx).TaskQueueName,
		// A promotion outlives a cancelled pipeline: it owns live traffic.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:     fmt.Sprintf("Pipeline %s, stage %s: promote %s %s → %s", r.in.Pipeline.Name, s.Name, r.in.Model, r.in.Version, target),
	})
	var out modelplane.Promotion
	if err := workflow.ExecuteChildWorkflow(cctx, PromotionWorkflow, PromotionInput{Promotion: p}).Get(ctx, &out); err != nil {
		tr.Status, tr.Reason = modelplane.StatusFailed, errText(err)
		return fmt.Sprintf("%s: %s", target, tr.Reason)
	}
	tr.Status, tr.Reason = out.Status, out.Reason
	if out.Status != modelplane.StatusSucceeded {
		return fmt.Sprintf("%s: promotion %s %s (%s)", target, out.ID, out.Status, out.Reason)
	}
	return ""
}
