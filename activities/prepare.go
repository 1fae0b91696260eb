package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
)

// PromotionRequest asks for a promotion: the body of POST /v1/promotions,
// and what the MLflow webhook and reconciliation build.
type PromotionRequest struct {
	Model    string                     `json:"model"`
	Version  string                     `json:"version"`
	Target   string                     `json:"target"`
	Strategy modelplane.RolloutStrategy `json:"strategy"`
	Analysis modelplane.Analysis        `json:"analysis"`
	Metrics  modelplane.MetricBounds    `json:"metrics"`
	// ApprovalTimeout defaults to modelplane.DefaultApprovalTimeout.
	ApprovalTimeout modelplane.Duration `json:"approval_timeout"`
	// MLflow names the version in the MLflow Model Registry instead of
	// Version: it is imported, with its lineage, before the promotion starts.
	MLflow *MLflowRef `json:"mlflow,omitempty"`
}

// MLflowRef names an MLflow model version by number or by alias.
type MLflowRef struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Alias   string `json:"alias,omitempty"`
}

// TaskQueue is where modelplane's worker listens. It and the workflow id
// scheme live here, below the workflows package, because activities start
// workflows too (schedules) and workflows import this package.
const TaskQueue = "modelplane"

// PromotionWorkflowID is the workflow id of a promotion.
func PromotionWorkflowID(id string) string { return "promotion/" + id }

// NewPromotionID returns a fresh promotion id.
func NewPromotionID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "p-" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}

// PreparePromotion checks a request against the model, version, target and
// the target's platform, normalizes it and records the promotion (once per
// idempotency key). created is false when the key replayed an earlier one.
// The caller starts the workflow.
func PreparePromotion(ctx context.Context, st *store.Store, provs modelplane.Providers, r PromotionRequest, requestedBy, idempotencyKey string) (p modelplane.Promotion, created bool, err error) {
	for _, f := range []struct{ name, v string }{{"model", r.Model}, {"version", r.Version}, {"target", r.Target}} {
		if strings.TrimSpace(f.v) == "" {
			return p, false, modelplane.FieldError(f.name, "is required")
		}
	}
	if r.ApprovalTimeout < 0 {
		return p, false, modelplane.FieldError("approval_timeout", "must not be negative")
	}
	if _, err := st.GetModel(ctx, r.Model); err != nil {
		return p, false, modelplane.NotFoundAs(err, "model")
	}
	if _, err := st.GetVersion(ctx, r.Model, r.Version); err != nil {
		return p, false, modelplane.NotFoundAs(err, "version")
	}
	t, err := st.GetTarget(ctx, r.Target)
	if err != nil {
		return p, false, modelplane.NotFoundAs(err, "target")
	}
	strategy, err := r.Strategy.Normalize()
	if err != nil {
		return p, false, err
	}
	if prov, err := provs.Provider(t.Provider); err == nil {
		if err := strategy.CheckStrategy(t, modelplane.CapabilitiesOf(prov)); err != nil {
			return p, false, err
		}
	}
	analysis, err := modelplane.NormalizeAnalysis(r.Analysis, t.Analysis)
	if err != nil {
		return p, false, err
	}
	if len(analysis.Checks) > 0 && t.Prometheus == nil {
		return p, false, modelplane.FieldError("analysis.checks", "target %s has no prometheus configured to answer them", t.Name)
	}
	if r.ApprovalTimeout == 0 {
		r.ApprovalTimeout = modelplane.Duration(modelplane.DefaultApprovalTimeout)
	}
	p = modelplane.Promotion{
		ID: NewPromotionID(), Model: r.Model, Version: r.Version, Target: r.Target, Strategy: strategy, Analysis: analysis, Metrics: r.Metrics,
		ApprovalTimeout: r.ApprovalTimeout, RequestedBy: requestedBy, Stage: modelplane.StagePending, Status: modelplane.StatusRunning,
		CreatedAt: time.Now().UTC(), Approvals: []modelplane.Approval{}, AnalysisResults: []modelplane.AnalysisResult{}, History: []modelplane.HistoryEntry{},
	}
	p.WorkflowID = PromotionWorkflowID(p.ID)
	p.UpdatedAt = p.CreatedAt
	stored, created, err := st.CreatePromotion(ctx, p, idempotencyKey)
	if err != nil {
		return p, false, err
	}
	return stored, created, nil
}
