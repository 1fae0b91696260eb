package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/workflows"
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

// MCPPromotionRequest promotes an MCP server version to a channel.
type MCPPromotionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Channel defaults to "prod".
	Channel string `json:"channel"`
	// MonitorWindow is how long a manual rollback stays one call away (default 10m).
	MonitorWindow   modelplane.Duration `json:"monitor_window"`
	ApprovalTimeout modelplane.Duration `json:"approval_timeout"`
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
	s.audit(c, "mcp_server_registered", m.Name+"@"+m.Version, m.Name, "", map[string]any{"risk_tier": m.RiskTier, "owner": m.Owner, "team": m.Team})
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
	var r MCPPromotionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.Channel == "" {
		r.Channel = "prod"
	}
	if err := modelplane.CheckName("channel", r.Channel); err != nil {
		return err
	}
	if r.MonitorWindow < 0 || r.ApprovalTimeout < 0 {
		return modelplane.FieldError("monitor_window", "durations must not be negative")
	}
	m, err := s.Store.GetMCPServer(ctx, r.Name, r.Version)
	if err != nil {
		return modelplane.NotFoundAs(err, "version")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionMCPPromote, Asset: mcpAsset(m),
		Target: &policy.TargetInfo{Name: r.Channel, Environment: "production", Provider: "mcp-registry"}}); err != nil {
		return err
	}
	if m.Status == modelplane.MCPQuarantined || m.Status == modelplane.MCPRejected {
		return modelplane.FieldError("version", "%s@%s is %s (%s): register a new version", m.Name, m.Version, m.Status, m.StatusReason)
	}
	if r.MonitorWindow == 0 {
		r.MonitorWindow = modelplane.Duration(10 * time.Minute)
	}
	if r.ApprovalTimeout == 0 {
		r.ApprovalTimeout = modelplane.Duration(modelplane.DefaultApprovalTimeout)
	}
	who := caller(c)
	p := modelplane.Promotion{ID: activities.NewPromotionID(), Kind: modelplane.KindMCPServer, Model: m.Name, Version: m.Version, Target: r.Channel,
		Strategy:        modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: r.MonitorWindow},
		ApprovalTimeout: r.ApprovalTimeout, RequestedBy: who.Name, Stage: modelplane.StagePending, Status: modelplane.StatusRunning,
		CreatedAt: time.Now().UTC(), Approvals: []modelplane.Approval{}, AnalysisResults: []modelplane.AnalysisResult{}, History: []modelplane.HistoryEntry{}}
	p.WorkflowID, p.UpdatedAt = workflows.PromotionWorkflowID(p.ID), p.CreatedAt
	stored, created, err := s.Store.CreatePromotion(ctx, p, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if !created {
		return c.JSON(http.StatusAccepted, PromotionAccepted{ID: stored.ID, WorkflowID: stored.WorkflowID, Status: stored.Status, Replayed: true})
	}
	summary := fmt.Sprintf("Publish MCP server %s %s to channel %s, requested by %s", p.Model, p.Version, p.Target, who.Name)
	details := fmt.Sprintf("**MCP server:** %s · **Version:** %s · **Channel:** %s\n\n**Owner:** %s (%s) · **Risk tier:** %s · **Data:** %s\n\nSee *Current Details* for the tool contract and how to approve.",
		m.Name, m.Version, r.Channel, m.Owner, m.Team, m.RiskTier, strings.Join(m.DataDomains, ", "))
	if err := s.startWorkflow(ctx, p, summary, details); err != nil {
		return err
	}
	rec := s.record(c, "promotion_requested", p.Model+"@"+p.Version+" → "+p.Target, p.Model, p.Target, map[string]any{"promotion_id": p.ID, "kind": p.Kind})
	rec.Version = p.Version
	s.write(c, rec)
	return c.JSON(http.StatusAccepted, PromotionAccepted{ID: p.ID, WorkflowID: p.WorkflowID, Status: p.Status})
}

func mcpAsset(m modelplane.MCPServer) policy.Asset {
	return policy.Asset{Kind: policy.KindMCPServer, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Version: m.Version}
}
