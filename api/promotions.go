package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// --- promotions ---

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

// createPromotion is the whole path of a request: resolve what it names,
// ask the policy, prepare the promotion, start its workflow, audit.
func (s *Server) createPromotion(c echo.Context) error {
	ctx := c.Request().Context()
	var r modelplane.PromotionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	r, err := s.promotions().Resolve(ctx, r)
	if err != nil {
		return err
	}
	if err := s.authorizeStart(c, r); err != nil {
		return err
	}
	p, created, err := s.promotions().Prepare(ctx, r, caller(c).Name, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return s.accept(c, p, created, map[string]any{"promotion_id": p.ID, "strategy": p.Strategy})
}

// accept starts a newly prepared promotion, audits the request and answers
// 202; a replayed idempotency key answers with the promotion it made before.
func (s *Server) accept(c echo.Context, p modelplane.Promotion, created bool, detail map[string]any) error {
	if !created {
		return c.JSON(http.StatusAccepted, PromotionAccepted{ID: p.ID, WorkflowID: p.WorkflowID, Status: p.Status, Replayed: true})
	}
	if err := s.promotions().Start(c.Request().Context(), p); err != nil {
		return err
	}
	rec := s.record(c, modelplane.AuditPromotionRequested, p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, detail)
	rec.Version = p.Version
	s.write(c, rec)
	return c.JSON(http.StatusAccepted, PromotionAccepted{ID: p.ID, WorkflowID: p.WorkflowID, Status: p.Status})
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

// refused names the record of an update the workflow refused.
var refused = map[string]modelplane.AuditAction{
	workflows.Approve: modelplane.AuditApproveRefused, workflows.Rollback: modelplane.AuditRollbackRefused, workflows.Decide: modelplane.AuditDecideRefused,
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
			rec := s.record(c, refused[name], p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "error": app.Message()})
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
