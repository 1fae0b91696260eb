package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// --- models and versions ---

func (s *Server) createModel(c echo.Context) error {
	var m modelplane.Model
	if err := bind(c, &m); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	m.CreatedAt = time.Time{}
	m, err := s.Store.CreateModel(c.Request().Context(), m)
	if err != nil {
		return err
	}
	s.audit(c, "model_created", "model/"+m.Name, m.Name, "", map[string]any{"risk_tier": m.RiskTier, "owner": m.Owner, "team": m.Team})
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) listModels(c echo.Context) error {
	ms, err := s.Store.ListModels(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"models": ms})
}

func (s *Server) getModel(c echo.Context) error {
	m, err := s.Store.GetModel(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// versionRequest is the body of POST /v1/models/{name}/versions.
type versionRequest struct {
	Version     string             `json:"version"`
	ArtifactURI string             `json:"artifact_uri"`
	Lineage     modelplane.Lineage `json:"lineage"`
	Metrics     map[string]float64 `json:"metrics"`
}

func (s *Server) createVersion(c echo.Context) error {
	var r versionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	v := modelplane.Version{Model: c.Param("name"), Version: r.Version, ArtifactURI: r.ArtifactURI, Lineage: r.Lineage, Metrics: r.Metrics, CreatedBy: caller(c).Name}
	if err := v.Validate(); err != nil {
		return err
	}
	v, err := s.Store.CreateVersion(c.Request().Context(), v)
	if err != nil {
		return err
	}
	s.audit(c, "version_created", "model/"+v.Model+"@"+v.Version, v.Model, "", map[string]any{"artifact_uri": v.ArtifactURI, "lineage": v.Lineage})
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) listVersions(c echo.Context) error {
	vs, err := s.Store.ListVersions(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) getVersion(c echo.Context) error {
	v, err := s.Store.GetVersion(c.Request().Context(), c.Param("name"), c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// --- targets ---

func (s *Server) createTarget(c echo.Context) error {
	var t modelplane.Target
	if err := bind(c, &t); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	prov, err := s.Providers.Provider(t.Provider)
	if err != nil {
		return modelplane.FieldError("provider", "unknown provider %q", t.Provider)
	}
	if err := t.CheckCapabilities(modelplane.CapabilitiesOf(prov)); err != nil {
		return err
	}
	if v, ok := prov.(modelplane.TargetValidator); ok {
		if err := v.ValidateTarget(t); err != nil {
			return err
		}
	}
	t.CreatedAt = time.Time{}
	t, err = s.Store.CreateTarget(c.Request().Context(), t)
	if err != nil {
		return err
	}
	s.audit(c, "target_created", "target/"+t.Name, "", t.Name, map[string]any{"provider": t.Provider, "environment": t.Environment})
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) listTargets(c echo.Context) error {
	ts, err := s.Store.ListTargets(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"targets": ts})
}

// --- promotions ---

// PromotionRequest is the body of POST /v1/promotions.
type PromotionRequest = activities.PromotionRequest

// PromotionAccepted is the 202 answer.
type PromotionAccepted struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
	Replayed   bool   `json:"replayed,omitempty"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newID names a promotion: sortable by day, unique by chance.

func (s *Server) createPromotion(c echo.Context) error {
	ctx := c.Request().Context()
	var r PromotionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	who := caller(c)
	if r.MLflow != nil {
		if r.Version != "" {
			return modelplane.FieldError("version", "give version or mlflow, not both")
		}
		v, err := activities.ImportMLflow(ctx, s.Store, s.MLflow, r.Model, *r.MLflow)
		if err != nil {
			return err
		}
		r.Version = v.Version
	}
	p, created, err := activities.PreparePromotion(ctx, s.Store, s.Providers, r, who.Name, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if !created {
		return c.JSON(http.StatusAccepted, PromotionAccepted{ID: p.ID, WorkflowID: p.WorkflowID, Status: p.Status, Replayed: true})
	}
	if err := s.startPromotion(ctx, p); err != nil {
		return err
	}
	s.audit(c, "promotion_requested", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "strategy": p.Strategy})
	return c.JSON(http.StatusAccepted, PromotionAccepted{ID: p.ID, WorkflowID: p.WorkflowID, Status: p.Status})
}

// startPromotion starts the workflow of a prepared model promotion.
func (s *Server) startPromotion(ctx context.Context, p modelplane.Promotion) error {
	t, err := s.Store.GetTarget(ctx, p.Target)
	if err != nil {
		return err
	}
	strategy, who := p.Strategy, p.RequestedBy
	return s.startWorkflow(ctx, p, fmt.Sprintf("Promote %s %s → %s (%s) requested by %s", p.Model, p.Version, p.Target, strategy.Type, who),
		fmt.Sprintf("**Model:** %s · **Version:** %s · **Target:** %s (%s)\n\n**Strategy:** %s, bake %s, monitor %s\n\n**Requested by:** %s\n\nSee *Current Details* for the evidence and how to approve.",
			p.Model, p.Version, p.Target, t.Environment, describe(strategy), strategy.Bake, strategy.MonitorWindow, who))
}

// startWorkflow starts a promotion's workflow once: a second start (a
// retried webhook, the reconciliation) finds it running; a failed start is
// recorded on the promotion.
func (s *Server) startWorkflow(ctx context.Context, p modelplane.Promotion, summary, details string) error {
	opts := client.StartWorkflowOptions{
		ID: p.WorkflowID, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, // a promotion id runs once
		StaticSummary:         summary, StaticDetails: details,
	}
	if _, err := s.Temporal.ExecuteWorkflow(ctx, opts, workflows.PromotionWorkflow, workflows.PromotionInput{Promotion: p}); err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return nil
		}
		_ = s.Store.FailPromotion(context.WithoutCancel(ctx), p.ID, "workflow could not be started: "+err.Error())
		return fmt.Errorf("start workflow: %w", err)
	}
	return nil
}

func describe(s modelplane.RolloutStrategy) string {
	switch {
	case s.Type == modelplane.StrategyShadow:
		return fmt.Sprintf("shadow %d%% then %s %v", s.ShadowPercent, s.Then, s.Steps)
	case len(s.Steps) > 0:
		return fmt.Sprintf("%s %v", s.Type, s.Steps)
	}
	return s.Type
}

func (s *Server) listPromotions(c echo.Context) error {
	ps, err := s.Store.ListPromotions(c.Request().Context(), store.PromotionFilter{Model: c.QueryParam("model"), Target: c.QueryParam("target"), Status: c.QueryParam("status")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"promotions": ps})
}

func (s *Server) getPromotion(c echo.Context) error {
	p, err := s.Store.GetPromotion(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// ApprovalRequest is the body of POST /v1/promotions/{id}/approvals.
type ApprovalRequest struct {
	Decision string `json:"decision"`
	Comment  string `json:"comment"`
}

func (s *Server) approve(c echo.Context) error {
	var r ApprovalRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.Decision != "approve" && r.Decision != "reject" {
		return modelplane.FieldError("decision", "must be approve or reject, got %q", r.Decision)
	}
	p, err := s.Store.GetPromotion(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	who := caller(c)
	if who.Name == p.RequestedBy {
		s.audit(c, "approval_denied", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "why": "four-eyes: requester cannot approve"})
		return modelplane.Errorf(modelplane.EForbidden, "%s requested promotion %s and cannot approve it (four-eyes)", who.Name, p.ID)
	}
	return s.update(c, p, workflows.Approve, workflows.Vote{Approver: who.Name, Decision: r.Decision, Comment: r.Comment, Via: "api"}, http.StatusOK)
}

// RollbackRequest is the body of POST /v1/promotions/{id}/rollback.
type RollbackRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) rollback(c echo.Context) error {
	var r RollbackRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if strings.TrimSpace(r.Reason) == "" {
		return modelplane.FieldError("reason", "is required: say why you roll back")
	}
	p, err := s.Store.GetPromotion(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return s.update(c, p, workflows.Rollback, workflows.RollbackRequest{Actor: caller(c).Name, Reason: r.Reason}, http.StatusAccepted)
}

// DecisionRequest is the body of POST /v1/promotions/{id}/decision.
type DecisionRequest struct {
	Decision string `json:"decision"`
}

func (s *Server) decide(c echo.Context) error {
	var r DecisionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.Decision != "promote" && r.Decision != "rollback" {
		return modelplane.FieldError("decision", "must be promote or rollback, got %q", r.Decision)
	}
	p, err := s.Store.GetPromotion(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return s.update(c, p, workflows.Decide, workflows.Decision{Actor: caller(c).Name, Decision: r.Decision}, http.StatusOK)
}

// update sends a workflow update and returns the promotion as the workflow sees it.
// A validator's refusal is a 409 carrying its message.
func (s *Server) update(c echo.Context, p modelplane.Promotion, name string, arg any, status int) error {
	ctx := c.Request().Context()
	if modelplane.Terminal(p.Status) {
		return modelplane.Errorf(modelplane.EConflict, "promotion %s has ended (%s)", p.ID, p.Status)
	}
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: p.WorkflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var out modelplane.Promotion
	if err == nil {
		err = h.Get(ctx, &out)
	}
	if err != nil {
		var app *temporal.ApplicationError
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &app):
			s.audit(c, name+"_refused", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "error": app.Message()})
			return modelplane.Errorf(modelplane.EConflict, "%s", app.Message())
		case errors.As(err, &nf):
			return modelplane.Errorf(modelplane.EConflict, "promotion %s is no longer running", p.ID)
		}
		return err
	}
	return c.JSON(status, out)
}

// --- drift ---

// DriftAffected names a workflow that received a drift signal.
type DriftAffected struct {
	Kind       string `json:"kind"` // promotion | deployment
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Version    string `json:"version"`
}

func (s *Server) drift(c echo.Context) error {
	ctx := c.Request().Context()
	var d modelplane.DriftSignal
	if err := bind(c, &d); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"model", d.Model}, {"target", d.Target}, {"metric", d.Metric}} {
		if strings.TrimSpace(f.v) == "" {
			return modelplane.FieldError(f.name, "is required")
		}
	}
	if d.Source == "" {
		d.Source = caller(c).Name
	}
	if _, err := s.Store.GetModel(ctx, d.Model); err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.Store.GetTarget(ctx, d.Target); err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	affected, err := s.routeDrift(ctx, d)
	if err != nil {
		return err
	}
	s.audit(c, "drift_reported", d.Model+" on "+d.Target, d.Model, d.Target, map[string]any{"signal": d, "affected": len(affected)})
	return c.JSON(http.StatusAccepted, map[string]any{"affected": affected})
}

// routeDrift signals whatever serves the drifting version: the running
// promotion of the pair if the drift is about its candidate, else the
// deployment guardian.
func (s *Server) routeDrift(ctx context.Context, d modelplane.DriftSignal) ([]DriftAffected, error) {
	affected := []DriftAffected{}
	p, active, err := s.Store.ActivePromotion(ctx, d.Model, d.Target)
	if err != nil {
		return nil, err
	}
	if active && (d.Version == "" || d.Version == p.Version) {
		if err := s.Temporal.SignalWorkflow(ctx, p.WorkflowID, "", workflows.Drift, d); err == nil {
			affected = append(affected, DriftAffected{Kind: "promotion", ID: p.ID, WorkflowID: p.WorkflowID, Version: p.Version})
		}
	} else {
		dep, found, err := s.Store.GetDeployment(ctx, d.Model, d.Target)
		if err != nil {
			return nil, err
		}
		if found && dep.Stable != "" && (d.Version == "" || d.Version == dep.Stable) {
			wid := workflows.GuardianWorkflowID(d.Model, d.Target)
			err := s.Temporal.SignalWorkflow(ctx, wid, "", workflows.Drift, d)
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				return nil, err
			}
			if err == nil {
				affected = append(affected, DriftAffected{Kind: "deployment", ID: d.Model + "/" + d.Target, WorkflowID: wid, Version: dep.Stable})
			}
		}
	}
	return affected, nil
}

// --- deployments and audit ---

func (s *Server) listDeployments(c echo.Context) error {
	ds, err := s.Store.ListDeployments(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"deployments": ds})
}

func (s *Server) getDeployment(c echo.Context) error {
	d, found, err := s.Store.GetDeployment(c.Request().Context(), c.Param("model"), c.Param("target"))
	if err != nil {
		return err
	}
	if !found {
		return modelplane.Errorf(modelplane.ENotFound, "nothing of model %q is deployed on target %q", c.Param("model"), c.Param("target"))
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) listAudit(c echo.Context) error {
	f := store.AuditFilter{Model: c.QueryParam("model"), PromotionID: c.QueryParam("promotion"), Actor: c.QueryParam("actor")}
	if since := c.QueryParam("since"); since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			return modelplane.FieldError("since", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		f.Since = t
	}
	recs, err := s.Store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"records": recs})
}

// audit records an API action; a failure is logged, not fatal to the request.
func (s *Server) audit(c echo.Context, action, subject, model, target string, details map[string]any) {
	rec := modelplane.AuditRecord{Key: "api/" + randomHex(12), Time: time.Now().UTC(), Actor: caller(c).Name, Action: action, Subject: subject, Model: model, Target: target, Details: details}
	if id, ok := details["promotion_id"].(string); ok {
		rec.PromotionID = id
	}
	if err := s.Store.AppendAudit(context.WithoutCancel(c.Request().Context()), rec); err != nil {
		s.Logger.Error("audit write failed", "action", action, "error", err)
	}
}

// --- dev-mode simulator ---

// SimHealth is the body of the dev-mode health endpoint.
type SimHealth struct {
	Model        string   `json:"model"`
	ErrorRate    *float64 `json:"error_rate"`
	LatencyP99Ms *float64 `json:"latency_p99_ms"`
	Drift        *float64 `json:"drift"`
	NoData       bool     `json:"no_data"`
}

func (s *Server) simHealth(c echo.Context) error {
	if s.Sim == nil {
		return modelplane.Errorf(modelplane.ENotFound, "the simulator endpoint exists in dev mode only")
	}
	ctx := c.Request().Context()
	var r SimHealth
	if err := bind(c, &r); err != nil {
		return err
	}
	target, version := c.Param("target"), c.Param("version")
	if _, err := s.Store.GetTarget(ctx, target); err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	if r.Model == "" {
		// The path names only the version: find the one model that has it.
		ms, err := s.Store.ListModels(ctx)
		if err != nil {
			return err
		}
		var hits []string
		for _, m := range ms {
			if _, err := s.Store.GetVersion(ctx, m.Name, version); err == nil {
				hits = append(hits, m.Name)
			}
		}
		switch len(hits) {
		case 0:
			return modelplane.Errorf(modelplane.ENotFound, "no model has version %q", version)
		case 1:
			r.Model = hits[0]
		default:
			return modelplane.FieldError("model", "version %q exists in several models (%s): name one", version, strings.Join(hits, ", "))
		}
	}
	h := sim.Baseline
	h.NoData = r.NoData
	for name, p := range map[string]*float64{"error_rate": r.ErrorRate, "latency_p99_ms": r.LatencyP99Ms, "drift": r.Drift} {
		if p != nil && *p < 0 {
			return modelplane.FieldError(name, "must not be negative")
		}
	}
	if r.ErrorRate != nil {
		h.ErrorRate = *r.ErrorRate
	}
	if r.LatencyP99Ms != nil {
		h.LatencyP99Ms = *r.LatencyP99Ms
	}
	if r.Drift != nil {
		h.Drift = *r.Drift
	}
	if err := s.Sim.SetHealth(ctx, target, r.Model, version, h); err != nil {
		return err
	}
	s.audit(c, "sim_health_set", r.Model+"@"+version+" on "+target, r.Model, target, map[string]any{"health": h})
	return c.JSON(http.StatusOK, map[string]any{"model": r.Model, "target": target, "version": version, "health": h})
}
