package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

// ApplyRequest declares resources as code: what the store should hold.
type ApplyRequest struct {
	Resources []modelplane.Resource `json:"resources"`
	// DryRun plans and writes nothing.
	DryRun bool `json:"dry_run"`
	// Prune deletes pipelines of the caller's teams that Resources does not
	// declare (models and targets are never deleted by apply).
	Prune bool `json:"prune"`
}

// ApplyResult is the plan, carried out unless it was a dry run.
type ApplyResult struct {
	modelplane.Plan
	Summary string `json:"summary"`
}

// planned is one resource's decoded desired state and what is stored now.
type planned struct {
	modelplane.PlannedChange
	want, have any
	source     string
}

// apply is server-side apply: every resource is decoded, validated and
// decided by the policy before anything is written, so bad input or one
// refusal changes nothing; then the changes are written and audited.
func (s *Server) apply(c echo.Context) error {
	var r ApplyRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if len(r.Resources) == 0 {
		return modelplane.FieldError("resources", "declare at least one resource")
	}
	ctx := c.Request().Context()
	var plan []planned
	declared := map[string]bool{}
	for i, res := range r.Resources {
		p, err := s.plan(c, res)
		if err != nil {
			return located(err, i, res)
		}
		key := string(p.Kind) + "/" + p.Name
		if declared[key] {
			return located(modelplane.FieldError("name", "%s %s is declared twice", p.Kind, p.Name), i, res)
		}
		declared[key] = true
		plan = append(plan, p)
	}
	if r.Prune {
		all, err := s.Store.ListPipelines(ctx)
		if err != nil {
			return err
		}
		for _, p := range all {
			if declared[string(modelplane.KindPipeline)+"/"+p.Name] || !s.visible(c, policy.ActionPipelineWrite, policy.KindPipeline, p.Team) {
				continue
			}
			if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineWrite, Asset: pipelineAsset(p)}); err != nil {
				return err
			}
			plan = append(plan, planned{PlannedChange: modelplane.PlannedChange{Kind: modelplane.KindPipeline, Name: p.Name, Action: modelplane.PlanDelete}, have: p})
		}
	}
	out := ApplyResult{Plan: modelplane.Plan{DryRun: r.DryRun}}
	for _, p := range plan {
		out.Changes = append(out.Changes, p.PlannedChange)
	}
	out.Summary = out.Plan.Summary()
	if r.DryRun {
		return c.JSON(http.StatusOK, out)
	}
	// Targets before the pipelines that name them.
	for _, kind := range []modelplane.Kind{modelplane.KindTarget, modelplane.KindModel, modelplane.KindPipeline} {
		for _, p := range plan {
			if p.Kind != kind || p.Action == modelplane.PlanUnchanged {
				continue
			}
			if err := s.write1(ctx, p); err != nil {
				return fmt.Errorf("%s %s: %w", p.Kind, p.Name, err)
			}
			s.audit(c, modelplane.AuditApplied, string(p.Kind)+"/"+p.Name, modelName(p), "", map[string]any{"kind": p.Kind, "name": p.Name, "action": p.Action, "fields": p.Fields, "source": p.source})
		}
	}
	return c.JSON(http.StatusOK, out)
}

func modelName(p planned) string {
	if p.Kind == modelplane.KindModel {
		return p.Name
	}
	return ""
}

// located says which resource an error is about, keeping the field.
func located(err error, i int, res modelplane.Resource) error {
	where := fmt.Sprintf("resources[%d]", i)
	if res.Source != "" {
		where += " (" + res.Source + ")"
	}
	var e *modelplane.Error
	if errors.As(err, &e) && e.Code == modelplane.EForbidden {
		return err // the policy's own words, which name the asset, as every refusal reads
	}
	if errors.As(err, &e) {
		return &modelplane.Error{Code: e.Code, Field: e.Field, Message: fmt.Sprintf("%s %s: %s", where, res.Kind, e.Message)}
	}
	return fmt.Errorf("%s %s: %w", where, res.Kind, err)
}

func decodeStrict(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return modelplane.FieldError("spec", "%v", err)
	}
	return nil
}

// plan decodes one resource, validates it, asks the policy and compares it
// with what is stored.
func (s *Server) plan(c echo.Context, res modelplane.Resource) (planned, error) {
	ctx := c.Request().Context()
	p := planned{source: res.Source}
	p.Kind = res.Kind
	switch res.Kind {
	case modelplane.KindModel:
		var m modelplane.Model
		if err := decodeStrict(res.Spec, &m); err != nil {
			return p, err
		}
		if err := m.Validate(); err != nil {
			return p, err
		}
		p.Name, p.want = m.Name, m
		old, err := s.Store.GetModel(ctx, m.Name)
		found, err := exists(err)
		if err != nil {
			return p, err
		}
		if found {
			p.have = old
			if old.Team != m.Team {
				if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelCreate, Asset: modelAsset(old, nil)}); err != nil {
					return p, err
				}
			}
		}
		if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelCreate, Asset: modelAsset(m, nil)}); err != nil {
			return p, err
		}
		p.diff(found, "created_at")
	case modelplane.KindTarget:
		var t modelplane.Target
		if err := decodeStrict(res.Spec, &t); err != nil {
			return p, err
		}
		if err := t.Validate(); err != nil {
			return p, err
		}
		prov, err := s.Providers.Provider(t.Provider)
		if err != nil {
			return p, modelplane.FieldError("provider", "unknown provider %q", t.Provider)
		}
		if err := t.CheckCapabilities(modelplane.CapabilitiesOf(prov)); err != nil {
			return p, err
		}
		if v, ok := prov.(modelplane.TargetValidator); ok {
			if err := v.ValidateTarget(t); err != nil {
				return p, err
			}
		}
		p.Name, p.want = t.Name, t
		old, err := s.Store.GetTarget(ctx, t.Name)
		found, err := exists(err)
		if err != nil {
			return p, err
		}
		if found {
			p.have = old
		}
		if _, err := s.authorize(c, policy.Input{Action: policy.ActionTargetCreate, Asset: policy.Asset{Kind: policy.KindTarget, Name: t.Name}, Target: targetInfo(t)}); err != nil {
			return p, err
		}
		p.diff(found, "created_at")
	case modelplane.KindPipeline:
		var pl modelplane.Pipeline
		if err := decodeStrict(res.Spec, &pl); err != nil {
			return p, err
		}
		if err := pl.Validate(); err != nil {
			return p, err
		}
		if err := s.checkTargets(ctx, pl); err != nil {
			return p, err
		}
		p.Name, p.want = pl.Name, pl
		old, err := s.Store.GetPipeline(ctx, pl.Name)
		found, err := exists(err)
		if err != nil {
			return p, err
		}
		if found {
			p.have = old
			if old.Team != pl.Team {
				if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineWrite, Asset: pipelineAsset(old)}); err != nil {
					return p, err
				}
			}
		}
		if _, err := s.authorize(c, policy.Input{Action: policy.ActionPipelineWrite, Asset: pipelineAsset(pl)}); err != nil {
			return p, err
		}
		p.diff(found, "updated_at")
	default:
		return p, modelplane.FieldError("kind", "must be Model, Target or Pipeline, got %q", res.Kind)
	}
	return p, nil
}

// exists turns a store lookup's error into found or a real failure.
func exists(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if modelplane.ErrorCode(err) == modelplane.ENotFound {
		return false, nil
	}
	return false, err
}

// diff sets the action and the fields it changes.
func (p *planned) diff(exists bool, skip ...string) {
	switch {
	case !exists:
		p.Action, p.Fields = modelplane.PlanCreate, modelplane.DiffFields(nil, p.want, skip...)
	default:
		p.Fields = modelplane.DiffFields(p.have, p.want, skip...)
		p.Action = modelplane.PlanChange
		if len(p.Fields) == 0 {
			p.Action = modelplane.PlanUnchanged
		}
	}
}

func (s *Server) checkTargets(ctx context.Context, p modelplane.Pipeline) error {
	for i, st := range p.Stages {
		for j, w := range st.Waves {
			for k, t := range w.Targets {
				if _, err := s.Store.GetTarget(ctx, t); err != nil {
					return modelplane.FieldError(fieldPath(i, j, k), "target %q does not exist", t)
				}
			}
		}
	}
	return nil
}

// write1 carries out one planned change.
func (s *Server) write1(ctx context.Context, p planned) error {
	switch w := p.want.(type) {
	case modelplane.Model:
		if p.Action == modelplane.PlanCreate {
			w.CreatedAt = time.Time{}
			_, err := s.Store.CreateModel(ctx, w)
			return err
		}
		w.CreatedAt = p.have.(modelplane.Model).CreatedAt
		return s.Store.PutModel(ctx, w)
	case modelplane.Target:
		if p.Action == modelplane.PlanCreate {
			w.CreatedAt = time.Time{}
			_, err := s.Store.CreateTarget(ctx, w)
			return err
		}
		w.CreatedAt = p.have.(modelplane.Target).CreatedAt
		return s.Store.PutTarget(ctx, w)
	case modelplane.Pipeline:
		_, err := s.Store.PutPipeline(ctx, w)
		return err
	}
	if p.Action == modelplane.PlanDelete {
		return s.Store.DeletePipeline(ctx, p.Name)
	}
	return nil
}
