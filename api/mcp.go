package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

// MCPServerRequest registers an MCP server version.
type MCPServerRequest struct {
	Name        string                 `json:"name"`
	Version     string                 `json:"version"`
	Description string                 `json:"description"`
	RemoteURL   string                 `json:"remote_url,omitempty"`
	Package     *modelplane.MCPPackage `json:"package,omitempty"`
	ValidateURL string                 `json:"validate_url,omitempty"`
	Owner       string                 `json:"owner"`
	Team        string                 `json:"team"`
	RiskTier    modelplane.RiskTier    `json:"risk_tier"`
	DataDomains []string               `json:"data_domains,omitempty"`
}

func (s *Server) createMCPServer(c echo.Context) error {
	var r MCPServerRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	m := modelplane.MCPServer{Name: r.Name, Version: r.Version, Description: r.Description, RemoteURL: r.RemoteURL, Package: r.Package,
		ValidateURL: r.ValidateURL, Owner: r.Owner, Team: r.Team, RiskTier: r.RiskTier, DataDomains: r.DataDomains, CreatedBy: caller(c).Name}
	if err := m.Validate(); err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionMCPCreate, Asset: mcpAsset(m)}); err != nil {
		return err
	}
	m, err := s.Store.CreateMCPServer(c.Request().Context(), m)
	if err != nil {
		return err
	}
	s.audit(c, modelplane.AuditMCPServerRegistered, m.Name+"@"+m.Version, m.Name, "", map[string]any{"risk_tier": m.RiskTier, "owner": m.Owner, "team": m.Team})
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) listMCPServers(c echo.Context) error {
	ms, err := s.Store.ListMCPServers(c.Request().Context(), c.QueryParam("name"))
	if err != nil {
		return err
	}
	listing(c)
	out := []modelplane.MCPServer{}
	for _, m := range ms {
		if s.visible(c, policy.ActionMCPRead, policy.KindMCPServer, m.Team) {
			out = append(out, m)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"servers": out})
}

func (s *Server) listMCPChannels(c echo.Context) error {
	cs, err := s.Store.ListChannels(c.Request().Context())
	if err != nil {
		return err
	}
	listing(c)
	out := []modelplane.MCPChannel{}
	for _, ch := range cs {
		team := ""
		if m, err := s.latestMCP(c.Request().Context(), ch.Server); err == nil {
			team = m.Team
		}
		if s.visible(c, policy.ActionMCPRead, policy.KindMCPServer, team) {
			out = append(out, ch)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"channels": out})
}

// createMCPPromotion starts the same Promotion workflow as for models, of
// kind mcp_server: approvals, rollback and audit go through the same endpoints.
func (s *Server) createMCPPromotion(c echo.Context) error {
	ctx := c.Request().Context()
	var r modelplane.MCPPromotionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return err
	}
	m, err := s.Store.GetMCPServer(ctx, r.Name, r.Version)
	if err != nil {
		return modelplane.NotFoundAs(err, "version")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionMCPPromote, Asset: mcpAsset(m),
		Target: &policy.TargetInfo{Name: r.Channel, Environment: "production", Provider: "mcp-registry"}}); err != nil {
		return err
	}
	p, created, err := s.promotions().PrepareMCP(ctx, r, caller(c).Name, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	return s.accept(c, p, created, map[string]any{"promotion_id": p.ID, "kind": p.Kind})
}

func mcpAsset(m modelplane.MCPServer) policy.Asset {
	return policy.Asset{Kind: policy.KindMCPServer, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Version: m.Version}
}
