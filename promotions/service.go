// Package promotions is modelplane's PromotionService: it checks a request
// against the store and the target's platform, records the promotion and
// starts its Temporal workflow. A promotion goes from an HTTP request (api),
// an MLflow event or a pipeline stage through here to workflows, and nowhere
// else.
package promotions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// Service implements modelplane.PromotionService.
type Service struct {
	Store     *store.Store
	Providers modelplane.Providers
	// Temporal starts workflows; a service that only prepares (the worker's
	// activities) may leave it nil.
	Temporal client.Client
	// TaskQueue is where promotions run ("": modelplane's default).
	TaskQueue string
	// MLflow is the registry versions are imported from (nil: not configured).
	MLflow *mlflow.Client
}

var _ modelplane.PromotionService = (*Service)(nil)

// NewID returns a fresh promotion id: sortable by day, unique by chance.
func NewID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "p-" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(b)
}

// Prepare implements modelplane.PromotionService.
func (s *Service) Prepare(ctx context.Context, r modelplane.PromotionRequest, requestedBy, idempotencyKey string) (p modelplane.Promotion, created bool, err error) {
	for _, f := range []struct{ name, v string }{{"model", r.Model}, {"version", r.Version}, {"target", r.Target}} {
		if strings.TrimSpace(f.v) == "" {
			return p, false, modelplane.FieldError(f.name, "is required")
		}
	}
	if r.ApprovalTimeout < 0 {
		return p, false, modelplane.FieldError("approval_timeout", "must not be negative")
	}
	if _, err := s.Store.GetModel(ctx, r.Model); err != nil {
		return p, false, modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.Store.GetVersion(ctx, r.Model, r.Version); err != nil {
		return p, false, modelplane.NotFoundAs(err, "version")
	}
	t, err := s.Store.GetTarget(ctx, r.Target)
	if err != nil {
		return p, false, modelplane.NotFoundAs(err, "target")
	}
	strategy, err := r.Strategy.Normalize()
	if err != nil {
		return p, false, err
	}
	if prov, err := s.Providers.Provider(t.Provider); err == nil {
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
	p = fresh(modelplane.Promotion{Model: r.Model, Version: r.Version, Target: r.Target, Strategy: strategy, Analysis: analysis, Metrics: r.Metrics,
		ApprovalTimeout: r.ApprovalTimeout, RequestedBy: requestedBy})
	return s.Store.CreatePromotion(ctx, p, idempotencyKey)
}

// fresh names a new promotion and gives it its starting state.
func fresh(p modelplane.Promotion) modelplane.Promotion {
	p.ID = NewID()
	p.WorkflowID = workflows.PromotionWorkflowID(p.ID)
	p.Stage, p.Status = modelplane.StagePending, modelplane.StatusRunning
	p.CreatedAt = time.Now().UTC()
	p.UpdatedAt = p.CreatedAt
	p.Approvals, p.AnalysisResults, p.History = []modelplane.Approval{}, []modelplane.AnalysisResult{}, []modelplane.HistoryEntry{}
	return p
}

// Start implements modelplane.PromotionService. The workflow's summary and
// details are what the Temporal Web UI shows an approver first.
func (s *Service) Start(ctx context.Context, p modelplane.Promotion) error {
	if s.Temporal == nil {
		return errors.New("promotions: this service has no Temporal client to start workflows with")
	}
	summary, details, err := s.describe(ctx, p)
	if err != nil {
		return err
	}
	queue := s.TaskQueue
	if queue == "" {
		queue = workflows.TaskQueue
	}
	opts := client.StartWorkflowOptions{
		ID: p.WorkflowID, TaskQueue: queue,
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

func (s *Service) describe(ctx context.Context, p modelplane.Promotion) (summary, details string, err error) {
	if p.Kind == modelplane.KindMCPServer {
		m, err := s.Store.GetMCPServer(ctx, p.Model, p.Version)
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("Publish MCP server %s %s to channel %s, requested by %s", p.Model, p.Version, p.Target, p.RequestedBy),
			fmt.Sprintf("**MCP server:** %s · **Version:** %s · **Channel:** %s\n\n**Owner:** %s (%s) · **Risk tier:** %s · **Data:** %s\n\nSee *Current Details* for the tool contract and how to approve.",
				m.Name, m.Version, p.Target, m.Owner, m.Team, m.RiskTier, strings.Join(m.DataDomains, ", ")), nil
	}
	t, err := s.Store.GetTarget(ctx, p.Target)
	if err != nil {
		return "", "", err
	}
	strategy, who := p.Strategy, p.RequestedBy
	return fmt.Sprintf("Promote %s %s → %s (%s) requested by %s", p.Model, p.Version, p.Target, strategy.Type, who),
		fmt.Sprintf("**Model:** %s · **Version:** %s · **Target:** %s (%s)\n\n**Strategy:** %s, bake %s, monitor %s\n\n**Requested by:** %s\n\nSee *Current Details* for the evidence and how to approve.",
			p.Model, p.Version, p.Target, t.Environment, describe(strategy), strategy.Bake, strategy.MonitorWindow, who), nil
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
