package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/policy"
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
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelCreate, Asset: modelAsset(m, nil)}); err != nil {
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
	listing(c)
	out := []modelplane.Model{}
	for _, m := range ms {
		if s.visible(c, policy.ActionModelRead, policy.KindModel, m.Team) {
			out = append(out, m)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"models": out})
}

func (s *Server) getModel(c echo.Context) error {
	m, err := s.Store.GetModel(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelRead, Asset: modelAsset(m, nil)}); err != nil {
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
	m, err := s.Store.GetModel(c.Request().Context(), v.Model)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionVersionCreate, Asset: modelAsset(m, &v)}); err != nil {
		return err
	}
	v, err = s.Store.CreateVersion(c.Request().Context(), v)
	if err != nil {
		return err
	}
	rec := s.record(c, "version_created", "model/"+v.Model+"@"+v.Version, v.Model, "", map[string]any{"artifact_uri": v.ArtifactURI, "lineage": v.Lineage, "metrics": v.Metrics})
	rec.Version = v.Version
	s.write(c, rec)
	return c.JSON(http.StatusCreated, v)
}

// MetricsRequest is the body of PUT /v1/models/{name}/versions/{version}/metrics.
type MetricsRequest struct {
	Metrics map[string]float64 `json:"metrics"`
}

// setMetrics records a new evaluation of a version. Running promotions of
// it re-validate, and approvals given on the old evidence stop counting.
func (s *Server) setMetrics(c echo.Context) error {
	ctx := c.Request().Context()
	var r MetricsRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if len(r.Metrics) == 0 {
		return modelplane.FieldError("metrics", "is required: at least one metric")
	}
	m, err := s.Store.GetModel(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	v, err := s.Store.GetVersion(ctx, m.Name, c.Param("version"))
	if err != nil {
		return err
	}
	v.Metrics = r.Metrics
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionVersionCreate, Asset: modelAsset(m, &v), Request: map[string]any{"update": "metrics"}}); err != nil {
		return err
	}
	if v, err = s.Store.SetVersionMetrics(ctx, m.Name, v.Version, r.Metrics); err != nil {
		return err
	}
	ps, err := s.Store.ListPromotions(ctx, store.PromotionFilter{Model: m.Name, Status: modelplane.StatusRunning})
	if err != nil {
		return err
	}
	var signalled []string
	for _, p := range ps {
		if p.Version == v.Version && p.Kind == "" {
			if err := s.Temporal.SignalWorkflow(ctx, p.WorkflowID, "", workflows.EvidenceChanged, nil); err == nil {
				signalled = append(signalled, p.ID)
			}
		}
	}
	rec := s.record(c, "evidence_updated", "model/"+v.Model+"@"+v.Version, v.Model, "", map[string]any{"metrics": v.Metrics, "promotions": signalled})
	rec.Version = v.Version
	s.write(c, rec)
	return c.JSON(http.StatusOK, map[string]any{"version": v, "promotions_revalidating": signalled})
}

func (s *Server) listVersions(c echo.Context) error {
	if _, err := s.readModel(c, c.Param("name")); err != nil {
		return err
	}
	vs, err := s.Store.ListVersions(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) getVersion(c echo.Context) error {
	if _, err := s.readModel(c, c.Param("name")); err != nil {
		return err
	}
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
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionTargetCreate, Asset: policy.Asset{Kind: policy.KindTarget, Name: t.Name}, Target: targetInfo(t)}); err != nil {
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
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionTargetRead, Asset: policy.Asset{Kind: policy.KindTarget}}); err != nil {
		return err
	}
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
	if err := s.authorizeStart(c, r); err != nil {
		return err
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
	rec := s.record(c, "promotion_requested", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "strategy": p.Strategy})
	rec.Version = p.Version
	s.write(c, rec)
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
		ID: p.WorkflowID, TaskQueue: s.taskQueue(),
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

func (s *Server) getPromotion(c echo.Context) error {
	p, err := s.Store.GetPromotion(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if _, err := s.authorizePromotion(c, policy.ActionPromotionRead, p, nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// ApprovalRequest is the body of POST /v1/promotions/{id}/approvals.
type ApprovalRequest struct {
	Decision string `json:"decision"`
	Comment  string `json:"comment"`
	// EvidenceHash, if given, must match the promotion's current evidence:
	// the approver says which evidence they reviewed.
	EvidenceHash string `json:"evidence_hash"`
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
	// The store's copy trails the workflow by a progress record: the
	// policy must see the votes already cast, or a second vote by the same
	// person would be refused by the workflow (409) instead of by the policy.
	p = s.live(c.Request().Context(), p)
	who := caller(c)
	action := policy.ActionPromotionApprove
	if r.Decision == "reject" {
		action = policy.ActionPromotionReject
	}
	evidence := r.EvidenceHash
	if evidence == "" && p.Validation != nil {
		evidence = p.Validation.EvidenceHash
	}
	d, err := s.authorizePromotion(c, action, p, map[string]any{"evidence_hash": evidence, "decision": r.Decision})
	if err != nil {
		return err
	}
	return s.update(c, p, workflows.Approve, workflows.Vote{Approver: who.Name, Decision: r.Decision, Comment: r.Comment, Via: viaOf(c.Request().Context()),
		EvidenceHash: evidence, Teams: who.Teams, Roles: who.Roles, Method: who.Method, PolicyDecision: d.ID}, http.StatusOK)
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
	if _, err := s.authorizePromotion(c, policy.ActionPromotionRollback, p, map[string]any{"reason": r.Reason}); err != nil {
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
	// Promoting despite an inconclusive analysis is an exception to the
	// rules, asked as an override; rolling back is an ordinary decision.
	action := policy.ActionPromotionDecide
	if r.Decision == "promote" {
		action = policy.ActionPromotionOverride
	}
	if _, err := s.authorizePromotion(c, action, p, map[string]any{"decision": r.Decision}); err != nil {
		return err
	}
	return s.update(c, p, workflows.Decide, workflows.Decision{Actor: caller(c).Name, Decision: r.Decision}, http.StatusOK)
}

// update sends a workflow update and returns the promotion as the workflow sees it.
// A validator's refusal is a 409 carrying its message.
// live is the running workflow's own view of p, or p when the workflow
// has ended or does not answer in time (the update that follows then fails
// the same way and says so).
func (s *Server) live(ctx context.Context, p modelplane.Promotion) modelplane.Promotion {
	if modelplane.Terminal(p.Status) || p.WorkflowID == "" {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(ctx, p.WorkflowID, "", workflows.Status)
	var q modelplane.Promotion
	if err != nil || v.Get(&q) != nil || q.ID != p.ID {
		return p
	}
	return q
}

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
			rec := s.record(c, name+"_refused", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "error": app.Message()})
			rec.Version = p.Version
			s.write(c, rec)
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
	m, err := s.Store.GetModel(ctx, d.Model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	t, err := s.Store.GetTarget(ctx, d.Target)
	if err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionDriftReport, Asset: modelAsset(m, nil), Target: targetInfo(t), Request: map[string]any{"metric": d.Metric}}); err != nil {
		return err
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
	listing(c)
	out := []modelplane.Deployment{}
	for _, d := range ds {
		m, err := s.Store.GetModel(c.Request().Context(), d.Model)
		team := m.Team
		if err != nil {
			team = "" // an MCP channel or a removed model: shared rules apply
		}
		if s.visible(c, policy.ActionDeploymentRead, policy.KindModel, team) {
			out = append(out, d)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"deployments": out})
}

func (s *Server) getDeployment(c echo.Context) error {
	if _, err := s.readModelAs(c, c.Param("model"), policy.ActionDeploymentRead); err != nil {
		return err
	}
	d, found, err := s.Store.GetDeployment(c.Request().Context(), c.Param("model"), c.Param("target"))
	if err != nil {
		return err
	}
	if !found {
		return modelplane.Errorf(modelplane.ENotFound, "nothing of model %q is deployed on target %q", c.Param("model"), c.Param("target"))
	}
	return c.JSON(http.StatusOK, d)
}

// exportAudit streams the audit trail as JSON Lines, chain fields included,
// so `modelplane audit verify --file` can check an export offline.
func (s *Server) exportAudit(c echo.Context) error {
	f, err := s.auditFilter(c, policy.ActionAuditExport)
	if err != nil {
		return err
	}
	f.Limit = -1
	s.write(c, s.record(c, "audit_exported", "audit", f.Model, "", map[string]any{"filter": f}))
	c.Response().Header().Set(echo.HeaderContentType, "application/x-ndjson")
	c.Response().WriteHeader(http.StatusOK)
	_, err = s.Store.ExportAudit(c.Request().Context(), c.Response(), f)
	return err
}

// auditFilter reads the query and asks the policy: a model's trail is its
// team's to read; the whole trail is for auditors and admins.
func (s *Server) auditFilter(c echo.Context, action string) (store.AuditFilter, error) {
	q := c.QueryParam
	f := store.AuditFilter{Model: q("model"), Version: q("version"), PromotionID: q("promotion"), Actor: q("actor"), Action: q("action"),
		Subject: q("subject"), Decision: q("decision"), Agent: q("agent")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q(t.name); v != "" {
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, modelplane.FieldError(t.name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*t.dst = tm
		}
	}
	if v := q("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, modelplane.FieldError("limit", "must be a positive integer")
		}
		f.Limit = n
	}
	if err := seqBounds(c, &f); err != nil {
		return f, err
	}
	asset := policy.Asset{Kind: policy.KindModel}
	if f.PromotionID != "" && f.Model == "" {
		if p, err := s.Store.GetPromotion(c.Request().Context(), f.PromotionID); err == nil {
			f.Model = p.Model
		}
	}
	if f.Model != "" {
		if m, err := s.Store.GetModel(c.Request().Context(), f.Model); err == nil {
			asset = modelAsset(m, nil)
		} else if m, err := s.latestMCP(c.Request().Context(), f.Model); err == nil {
			asset = policy.Asset{Kind: policy.KindMCPServer, Name: m.Name, Team: m.Team, Owner: m.Owner, RiskTier: string(m.RiskTier)}
		} else {
			asset.Name = f.Model
		}
	}
	_, err := s.authorize(c, policy.Input{Action: action, Asset: asset})
	return f, err
}

func (s *Server) latestMCP(ctx context.Context, name string) (modelplane.MCPServer, error) {
	ms, err := s.Store.ListMCPServers(ctx, name)
	if err != nil || len(ms) == 0 {
		return modelplane.MCPServer{}, modelplane.Errorf(modelplane.ENotFound, "no MCP server %q", name)
	}
	return ms[len(ms)-1], nil
}

// audit records an API action; a failure is logged, not fatal to the request.
func (s *Server) audit(c echo.Context, action, subject, model, target string, details map[string]any) {
	s.write(c, s.record(c, action, subject, model, target, details))
}

// readModel loads a model and asks whether the caller may read it.
func (s *Server) readModel(c echo.Context, name string) (modelplane.Model, error) {
	return s.readModelAs(c, name, policy.ActionModelRead)
}

func (s *Server) readModelAs(c echo.Context, name, action string) (modelplane.Model, error) {
	m, err := s.Store.GetModel(c.Request().Context(), name)
	if err != nil {
		return m, err
	}
	_, err = s.authorize(c, policy.Input{Action: action, Asset: modelAsset(m, nil)})
	return m, err
}

// authorizeStart asks whether the caller may start this promotion: the
// model, the version's metrics and lineage, and the target's environment.
func (s *Server) authorizeStart(c echo.Context, r PromotionRequest) error {
	ctx := c.Request().Context()
	// Say what is missing or unknown before asking about it.
	for _, f := range []struct{ name, v string }{{"model", r.Model}, {"version", r.Version}, {"target", r.Target}} {
		if strings.TrimSpace(f.v) == "" {
			return modelplane.FieldError(f.name, "is required")
		}
	}
	m, err := s.Store.GetModel(ctx, r.Model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	v, err := s.Store.GetVersion(ctx, r.Model, r.Version)
	if err != nil {
		return modelplane.NotFoundAs(err, "version")
	}
	t, err := s.Store.GetTarget(ctx, r.Target)
	if err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	in := policy.Input{Action: policy.ActionPromotionStart, Asset: modelAsset(m, &v), Target: targetInfo(t), Request: map[string]any{"strategy": r.Strategy.Type}}
	_, err = s.authorize(c, in)
	return err
}

// authorizePromotion asks about an action on an existing promotion.
func (s *Server) authorizePromotion(c echo.Context, action string, p modelplane.Promotion, req map[string]any) (modelplane.PolicyDecision, error) {
	in, err := s.promotionInput(c.Request().Context(), action, p)
	if err != nil {
		return modelplane.PolicyDecision{}, err
	}
	in.Request = req
	return s.authorize(c, in)
}

func kindOf(p modelplane.Promotion) string {
	if p.Kind == modelplane.KindMCPServer {
		return policy.KindMCPServer
	}
	return policy.KindModel
}

// teamsOf maps kind/name to the owning team of each promotion's asset.
func (s *Server) teamsOf(ctx context.Context, ps []modelplane.Promotion) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range ps {
		key := p.Kind + "/" + p.Model
		if _, ok := out[key]; ok {
			continue
		}
		if p.Kind == modelplane.KindMCPServer {
			if m, err := s.latestMCP(ctx, p.Model); err == nil {
				out[key] = m.Team
			}
			continue
		}
		if m, err := s.Store.GetModel(ctx, p.Model); err == nil {
			out[key] = m.Team
		}
	}
	return out, nil
}

func (s *Server) taskQueue() string {
	if s.TaskQueue != "" {
		return s.TaskQueue
	}
	return workflows.TaskQueue
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
	m, err := s.Store.GetModel(ctx, r.Model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionSimHealth, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	if err := s.Sim.SetHealth(ctx, target, r.Model, version, h); err != nil {
		return err
	}
	s.audit(c, "sim_health_set", r.Model+"@"+version+" on "+target, r.Model, target, map[string]any{"health": h})
	return c.JSON(http.StatusOK, map[string]any{"model": r.Model, "target": target, "version": version, "health": h})
}

// SimTraffic is a change made by hand on the simulated platform, as someone
// in a cloud console would: modelplane did not apply it, so the deployment
// guardian reports it as drift.
type SimTraffic struct {
	// Traffic is the new split; {} takes all traffic off the endpoint.
	Traffic modelplane.TrafficSplit `json:"traffic"`
	// Shadow starts a mirror nobody applied.
	Shadow *modelplane.Shadow `json:"shadow,omitempty"`
}

func (s *Server) simTraffic(c echo.Context) error {
	if s.Sim == nil {
		return modelplane.Errorf(modelplane.ENotFound, "the simulator endpoint exists in dev mode only")
	}
	ctx := c.Request().Context()
	var r SimTraffic
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.Traffic == nil {
		return modelplane.FieldError("traffic", "is required: the split to serve, e.g. {\"1\": 70, \"2\": 30}, or {} for none")
	}
	target, model := c.Param("target"), c.Param("model")
	if _, err := s.Store.GetTarget(ctx, target); err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	m, err := s.Store.GetModel(ctx, model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionSimTraffic, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	if err := s.Sim.ChangeByHand(ctx, target, model, r.Traffic, r.Shadow); err != nil {
		if errors.Is(err, modelplane.ErrInvalid) {
			return modelplane.FieldError("traffic", "%s", strings.TrimPrefix(err.Error(), modelplane.ErrInvalid.Error()+": "))
		}
		return err
	}
	s.audit(c, "sim_traffic_set", model+" on "+target, model, target, map[string]any{"traffic": r.Traffic.String(), "shadow": r.Shadow})
	return c.JSON(http.StatusOK, map[string]any{"model": model, "target": target, "traffic": r.Traffic, "shadow": r.Shadow})
}
