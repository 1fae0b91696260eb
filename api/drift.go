package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/api/serviceerror"
)

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
	s.audit(c, modelplane.AuditDriftReported, d.Model+" on "+d.Target, d.Model, d.Target, map[string]any{"signal": d, "affected": len(affected)})
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
