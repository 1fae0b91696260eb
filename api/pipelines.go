package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

func pipelineAsset(p modelplane.Pipeline) policy.Asset {
	return policy.Asset{Kind: policy.KindPipeline, Name: p.Name, Team: p.Team}
}

// putPipeline creates or replaces a pipeline. Both the team that owns it
// now and the team it would belong to must allow the caller.
func (s *Server) putPipeline(c echo.Context) error {
	var p modelplane.Pipeline
	if err := bind(c, &p); err != nil {
		return err
	}
	if p.Name == "" {
		p.Name = c.Param("name")
	}
	if p.Name != c.Param("name") {
		return modelplane.FieldError("name", "is %q but the path names %q", p.Name, c.Param("name"))
	}
	if err := p.Validate(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.checkTargets(ctx, p); err != nil {
		return err
	}
	old, err := s.Store.GetPipeline(ctx, p.Name)
	found, err := exists(err)
	if err != nil {
		return err
	}
	if found && old.Team != p.Team {
		if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineWrite, Asset: pipelineAsset(old)}); err != nil {
			return err
		}
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineWrite, Asset: pipelineAsset(p)}); err != nil {
		return err
	}
	saved, err := s.Store.PutPipeline(ctx, p)
	if err != nil {
		return err
	}
	s.audit(c, modelplane.AuditPipelineApplied, "pipeline "+p.Name, "", "", map[string]any{"pipeline": p.Name, "team": p.Team, "created": !found})
	status := http.StatusOK
	if !found {
		status = http.StatusCreated
	}
	return c.JSON(status, saved)
}

func fieldPath(stage, wave, target int) string {
	return fmt.Sprintf("stages[%d].waves[%d].targets[%d]", stage, wave, target)
}

func (s *Server) readPipeline(c echo.Context, action string) (modelplane.Pipeline, error) {
	p, err := s.Store.GetPipeline(c.Request().Context(), c.Param("name"))
	if err != nil {
		return p, err
	}
	_, err = s.authorize(c, policy.Input{Action: action, Asset: pipelineAsset(p)})
	return p, err
}

func (s *Server) getPipeline(c echo.Context) error {
	p, err := s.readPipeline(c, policy.ActionPipelineRead)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// listPipelines lists the pipelines the caller may read.
func (s *Server) listPipelines(c echo.Context) error {
	all, err := s.Store.ListPipelines(c.Request().Context())
	if err != nil {
		return err
	}
	listing(c)
	out := []modelplane.Pipeline{}
	for _, p := range all {
		if s.visible(c, policy.ActionPipelineRead, policy.KindPipeline, p.Team) {
			out = append(out, p)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"pipelines": out})
}

// StageVersions is which version of each model a stage last verified, and when.
type StageVersions struct {
	Stage    string            `json:"stage"`
	Verified []VerifiedVersion `json:"verified"`
}

// VerifiedVersion is one model's last verified version in a stage.
type VerifiedVersion struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
}

// pipelineVersions says which version is verified where, across runs, from
// the audit trail's stage records (newest first, so the first seen wins).
func (s *Server) pipelineVersions(c echo.Context) error {
	p, err := s.readPipeline(c, policy.ActionPipelineRead)
	if err != nil {
		return err
	}
	recs, err := s.Store.ListAudit(c.Request().Context(), store.AuditFilter{Action: modelplane.AuditPipelineStage, Decision: string(modelplane.PipelineVerified), Newest: true, Limit: 5000})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	byStage := map[string][]VerifiedVersion{}
	for _, r := range recs {
		stage, _ := r.Details["stage"].(string)
		if r.Details["pipeline"] != p.Name || stage == "" || seen[stage+"\x00"+r.Model] {
			continue
		}
		seen[stage+"\x00"+r.Model] = true
		byStage[stage] = append(byStage[stage], VerifiedVersion{Model: r.Model, Version: r.Version, At: r.Time})
	}
	out := make([]StageVersions, 0, len(p.Stages))
	for _, st := range p.Stages {
		out = append(out, StageVersions{Stage: st.Name, Verified: append([]VerifiedVersion{}, byStage[st.Name]...)})
	}
	return c.JSON(http.StatusOK, map[string]any{"pipeline": p.Name, "stages": out})
}

// RunRequest starts a version through a pipeline.
type RunRequest struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Hotfix skips soak times; the reason goes into the audit.
	Hotfix string `json:"hotfix,omitempty"`
}

// RunAccepted names a started pipeline run.
type RunAccepted struct {
	RunID string `json:"run_id"`
}

func (s *Server) startRun(c echo.Context) error {
	var r RunRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	p, err := s.Store.GetPipeline(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"model", r.Model}, {"version", r.Version}} {
		if strings.TrimSpace(f.v) == "" {
			return modelplane.FieldError(f.name, "is required")
		}
	}
	ctx := c.Request().Context()
	m, err := s.Store.GetModel(ctx, r.Model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	v, err := s.Store.GetVersion(ctx, r.Model, r.Version)
	if err != nil {
		return modelplane.NotFoundAs(err, "version")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineRun, Asset: modelAsset(m, &v), Request: map[string]any{"pipeline": p.Name, "hotfix": r.Hotfix}}); err != nil {
		return err
	}
	id := workflows.PipelineRunID(p.Name, r.Model, r.Version)
	in := workflows.PipelineRunInput{Pipeline: p, Model: r.Model, Version: r.Version, RequestedBy: caller(c).Name, Hotfix: r.Hotfix}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.taskQueue(),
		// A finished run may run again (after a failed stage, say); a running one may not.
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            "Pipeline " + p.Name + ": " + r.Model + " " + r.Version + " requested by " + caller(c).Name}, workflows.PipelineWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return modelplane.Errorf(modelplane.EConflict, "%s %s is already running through pipeline %s (run %s)", r.Model, r.Version, p.Name, id)
	}
	if err != nil {
		return err
	}
	rec := s.record(c, modelplane.AuditPipelineRunStarted, "pipeline "+p.Name+": "+r.Model+"@"+r.Version, r.Model, "", map[string]any{"pipeline": p.Name, "run_id": id, "hotfix": r.Hotfix})
	rec.Version = r.Version
	s.write(c, rec)
	return c.JSON(http.StatusAccepted, RunAccepted{RunID: id})
}

func (s *Server) getRun(c echo.Context) error {
	if _, err := s.readModelAs(c, c.Param("model"), policy.ActionPipelineRead); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.PipelineRunID(c.Param("name"), c.Param("model"), c.Param("version")), "", workflows.Status)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return modelplane.Errorf(modelplane.ENotFound, "%s %s has not been run through pipeline %s", c.Param("model"), c.Param("version"), c.Param("name"))
	}
	if err != nil {
		return err
	}
	var view workflows.PipelineRunView
	if err := v.Get(&view); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view)
}

// promoteStage lets a stage that waits for a person go, as the caller:
// the policy must allow them to start promotions into the stage's first
// target, and each target's promotion is decided again as them.
func (s *Server) promoteStage(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.Store.GetPipeline(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	stage := c.Param("stage")
	i := -1
	for k, st := range p.Stages {
		if st.Name == stage {
			i = k
		}
	}
	if i < 0 {
		return modelplane.Errorf(modelplane.ENotFound, "pipeline %s has no stage %q", p.Name, stage)
	}
	m, err := s.Store.GetModel(ctx, c.Param("model"))
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	v, err := s.Store.GetVersion(ctx, m.Name, c.Param("version"))
	if err != nil {
		return modelplane.NotFoundAs(err, "version")
	}
	t, err := s.Store.GetTarget(ctx, p.Stages[i].Waves[0].Targets[0])
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionPromotionStart, Asset: modelAsset(m, &v), Target: targetInfo(t),
		Request: map[string]any{"pipeline": p.Name, "stage": stage}}); err != nil {
		return err
	}
	who := caller(c)
	id := workflows.PipelineRunID(p.Name, m.Name, v.Version)
	err = s.Temporal.SignalWorkflow(ctx, id, "", workflows.PromoteStage, workflows.StagePromotion{Stage: stage,
		By: modelplane.Principal{Name: who.Name, Teams: who.Teams, Roles: who.Roles, Method: who.Method, Client: who.Client}})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return modelplane.Errorf(modelplane.ENotFound, "no run of %s %s through pipeline %s is open", m.Name, v.Version, p.Name)
	}
	if err != nil {
		return err
	}
	rec := s.record(c, modelplane.AuditPipelineStagePromote, "pipeline "+p.Name+": "+m.Name+"@"+v.Version+", stage "+stage, m.Name, "", map[string]any{"pipeline": p.Name, "stage": stage})
	rec.Version = v.Version
	s.write(c, rec)
	return c.JSON(http.StatusAccepted, map[string]any{"run_id": id, "stage": stage, "status": "promotion requested"})
}

// FreezeRequest turns the freeze switch on or off.
type FreezeRequest struct {
	On     bool   `json:"on"`
	Reason string `json:"reason"`
}

func (s *Server) getFreeze(c echo.Context) error {
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionFreezeRead}); err != nil {
		return err
	}
	f, err := s.Store.GetFreeze(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}

// setFreeze stops (or lets go again) every pipeline's new promotions at once.
func (s *Server) setFreeze(c echo.Context) error {
	var r FreezeRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.On && strings.TrimSpace(r.Reason) == "" {
		return modelplane.FieldError("reason", "is required: say why everything stops")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionFreezeSet}); err != nil {
		return err
	}
	f := store.Freeze{On: r.On, By: caller(c).Name, Reason: r.Reason, Since: time.Now().UTC()}
	if err := s.Store.SetFreeze(c.Request().Context(), f); err != nil {
		return err
	}
	decision := "off"
	if r.On {
		decision = "on"
	}
	rec := s.record(c, modelplane.AuditFreeze, "every pipeline", "", "", map[string]any{"reason": r.Reason})
	rec.Decision = decision
	s.write(c, rec)
	return c.JSON(http.StatusOK, f)
}
