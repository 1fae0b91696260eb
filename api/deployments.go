package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/api/serviceerror"
)

// GuardianStatus is what the deployment guardian of a model on a target
// reports: whether it runs, what it guards, and its last health check.
type GuardianStatus struct {
	Running    bool               `json:"running"`
	WorkflowID string             `json:"workflow_id"`
	Stable     string             `json:"stable_version,omitempty"`
	Previous   string             `json:"previous_version,omitempty"`
	LastHealth *modelplane.Health `json:"last_health,omitempty"`
	LastCheck  *time.Time         `json:"last_check,omitempty"`
	// Platform compares what the platform serves with what modelplane
	// applied: in_sync, drifted, missing or unknown, field by field, with
	// the time the drift was first seen.
	Platform *modelplane.PlatformSync `json:"platform,omitempty"`
}

func (s *Server) getGuardian(c echo.Context) error {
	model, target := c.Param("model"), c.Param("target")
	if _, err := s.readModelAs(c, model, policy.ActionDeploymentRead); err != nil {
		return err
	}
	out := GuardianStatus{WorkflowID: workflows.GuardianWorkflowID(model, target)}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(ctx, out.WorkflowID, "", workflows.Status)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return c.JSON(http.StatusOK, out)
	case err != nil:
		return modelplane.Errorf(modelplane.EConflict, "the guardian of %s on %s does not answer: %v", model, target, err)
	}
	var g workflows.GuardianView
	if err := v.Get(&g); err != nil {
		return err
	}
	out.Running, out.Stable, out.Previous, out.LastHealth, out.Platform = true, g.Stable, g.Previous, g.LastHealth, g.Platform
	if !g.LastCheck.IsZero() {
		out.LastCheck = &g.LastCheck
	}
	return c.JSON(http.StatusOK, out)
}

// rollbackDeployment asks the guardian to return the target to the
// previous stable version now (a person's rollback, outside a promotion).
func (s *Server) rollbackDeployment(c echo.Context) error {
	var r RollbackRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if strings.TrimSpace(r.Reason) == "" {
		return modelplane.FieldError("reason", "is required: say why you roll back")
	}
	model, target := c.Param("model"), c.Param("target")
	if _, err := s.readModelAs(c, model, policy.ActionPromotionRollback); err != nil {
		return err
	}
	wid := workflows.GuardianWorkflowID(model, target)
	err := s.Temporal.SignalWorkflow(c.Request().Context(), wid, "", workflows.Rollback, workflows.RollbackRequest{Actor: caller(c).Name, Reason: r.Reason})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return modelplane.Errorf(modelplane.ENotFound, "nothing guards %s on %s: no promotion of it has finished there", model, target)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"workflow_id": wid, "status": "rollback requested"})
}
