package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
)

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
	s.write(c, s.record(c, modelplane.AuditExported, "audit", f.Model, "", map[string]any{"filter": f}))
	c.Response().Header().Set(echo.HeaderContentType, "application/x-ndjson")
	c.Response().WriteHeader(http.StatusOK)
	_, err = s.Store.ExportAudit(c.Request().Context(), c.Response(), f)
	return err
}

// auditFilter reads the query and asks the policy: a model's trail is its
// team's to read; the whole trail is for auditors and admins.
func (s *Server) auditFilter(c echo.Context, action string) (store.AuditFilter, error) {
	q := c.QueryParam
	f := store.AuditFilter{Model: q("model"), Version: q("version"), PromotionID: q("promotion"), Actor: q("actor"), Action: modelplane.AuditAction(q("action")),
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
func (s *Server) audit(c echo.Context, action modelplane.AuditAction, subject, model, target string, details map[string]any) {
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
func (s *Server) authorizeStart(c echo.Context, r modelplane.PromotionRequest) error {
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

// promotions is the service every promotion is made through (Handler sets it).
func (s *Server) promotions() modelplane.PromotionService { return s.Promotions }

func (s *Server) taskQueue() string {
	if s.TaskQueue != "" {
		return s.TaskQueue
	}
	return workflows.TaskQueue
}
