package api

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
)

// Provenance answers "who put this version there, when, on what evidence,
// and who let them" in one document.
type Provenance struct {
	Model      modelplane.Model         `json:"model"`
	Version    modelplane.Version       `json:"version"`
	Promotions []PromotionProvenance    `json:"promotions"`
	Decisions  []modelplane.AuditRecord `json:"policy_decisions"`
	Rollbacks  []modelplane.AuditRecord `json:"rollbacks"`
	// Timeline is every traffic change of the version, oldest first.
	Timeline []TrafficChange `json:"traffic_timeline"`
	// Records is how many audit records the answer was built from.
	Records int `json:"records"`
	// ChainHead is the hash of the newest record considered: the chain up to
	// it can be checked with GET /v1/audit/verify.
	ChainHead  string    `json:"chain_head,omitempty"`
	AnsweredIn string    `json:"answered_in"`
	At         time.Time `json:"at"`
}

// PromotionProvenance is one promotion of the version.
type PromotionProvenance struct {
	ID          string                       `json:"id"`
	Target      string                       `json:"target"`
	RequestedBy string                       `json:"requested_by"`
	RequestedAt time.Time                    `json:"requested_at"`
	Status      string                       `json:"status"`
	Reason      string                       `json:"reason,omitempty"`
	Strategy    string                       `json:"strategy"`
	Evidence    string                       `json:"evidence_hash,omitempty"`
	Required    int                          `json:"required_approvals"`
	Approvals   []ApprovalProvenance         `json:"approvals"`
	Validation  *modelplane.ValidationReport `json:"validation,omitempty"`
	FinishedAt  *time.Time                   `json:"finished_at,omitempty"`
}

// ApprovalProvenance is one vote, and whether it counted.
type ApprovalProvenance struct {
	modelplane.Approval
	// Counted is false for a vote given on evidence that later changed.
	Counted bool `json:"counted"`
}

// TrafficChange is one step of the traffic timeline.
type TrafficChange struct {
	At          time.Time `json:"at"`
	PromotionID string    `json:"promotion_id,omitempty"`
	Target      string    `json:"target"`
	Split       string    `json:"split"`
	Actor       string    `json:"actor"`
	Note        string    `json:"note,omitempty"`
}

func (s *Server) provenance(c echo.Context) error {
	start := time.Now()
	m, err := s.readModelAs(c, c.Param("name"), policy.ActionProvenanceRead)
	if err != nil {
		return err
	}
	p, err := s.buildProvenance(c.Request().Context(), m, c.Param("version"))
	if err != nil {
		return err
	}
	p.AnsweredIn = time.Since(start).String()
	return c.JSON(http.StatusOK, p)
}

func (s *Server) buildProvenance(ctx context.Context, m modelplane.Model, version string) (Provenance, error) {
	v, err := s.Store.GetVersion(ctx, m.Name, version)
	if err != nil {
		return Provenance{}, err
	}
	out := Provenance{Model: m, Version: v, Promotions: []PromotionProvenance{}, Decisions: []modelplane.AuditRecord{}, Rollbacks: []modelplane.AuditRecord{}, Timeline: []TrafficChange{}, At: time.Now().UTC()}
	ps, err := s.allPromotions(ctx, store.PromotionFilter{Model: m.Name})
	if err != nil {
		return out, err
	}
	for _, p := range ps {
		if p.Version != version || p.Kind != "" {
			continue
		}
		pp := PromotionProvenance{ID: p.ID, Target: p.Target, RequestedBy: p.RequestedBy, RequestedAt: p.CreatedAt, Status: p.Status, Reason: p.Reason,
			Strategy: p.Strategy.Type, Required: p.RequiredApprovals, Validation: p.Validation, FinishedAt: p.FinishedAt, Approvals: []ApprovalProvenance{}}
		if p.Validation != nil {
			pp.Evidence = p.Validation.EvidenceHash
		}
		for _, a := range p.Approvals {
			pp.Approvals = append(pp.Approvals, ApprovalProvenance{Approval: a, Counted: pp.Evidence == "" || a.EvidenceHash == "" || a.EvidenceHash == pp.Evidence})
		}
		out.Promotions = append(out.Promotions, pp)
	}
	sort.Slice(out.Promotions, func(i, j int) bool { return out.Promotions[i].RequestedAt.Before(out.Promotions[j].RequestedAt) })
	recs, err := s.Store.ListAudit(ctx, store.AuditFilter{Model: m.Name, Version: version, Limit: 5000})
	if err != nil {
		return out, err
	}
	out.Records = len(recs)
	for _, r := range recs {
		if r.Policy != nil || r.Action == modelplane.AuditDenied || r.Action == modelplane.AuditApprovalDenied {
			out.Decisions = append(out.Decisions, r)
		}
		switch r.Action {
		case "rollback":
			out.Rollbacks = append(out.Rollbacks, r)
		case "traffic":
			note, _ := r.Details["note"].(string)
			out.Timeline = append(out.Timeline, TrafficChange{At: r.Time, PromotionID: r.PromotionID, Target: r.Target, Split: r.Decision, Actor: r.Actor, Note: note})
		}
		if r.Hash != "" {
			out.ChainHead = r.Hash
		}
	}
	return out, nil
}

// Scorecard holds the four numbers leadership asks for.
type Scorecard struct {
	// OwnedAndTiered is the share of assets (models and MCP servers) with a
	// named owner and a risk tier.
	OwnedAndTiered Ratio `json:"assets_with_owner_and_risk_tier"`
	// ExplicitPolicy is the share of governed transitions decided by an
	// explicit policy rule (not a default).
	ExplicitPolicy Ratio `json:"transitions_decided_by_explicit_policy"`
	// ProvenanceTime is how long provenance queries take, measured now over
	// the most recent versions.
	ProvenanceTime LatencySample `json:"time_to_answer_provenance"`
	// Overrides is the share of promotions that needed an exception
	// (promoting despite an inconclusive analysis, or an explicit override).
	Overrides Ratio `json:"exception_rate"`
	// ToolCallsExplicit is the share of tool calls through the MCP gateway
	// that an explicit policy rule decided; ToolCallDenials and
	// ToolCallBlocks the shares refused by policy and stopped by a content
	// check or a budget.
	ToolCallsExplicit Ratio     `json:"tool_calls_evaluated_by_explicit_policy"`
	ToolCallDenials   Ratio     `json:"tool_call_denial_rate"`
	ToolCallBlocks    Ratio     `json:"tool_call_block_rate"`
	At                time.Time `json:"at"`
}

// Ratio is part of a whole.
type Ratio struct {
	Part  int     `json:"part"`
	Whole int     `json:"whole"`
	Share float64 `json:"share"`
}

func ratio(part, whole int) Ratio {
	r := Ratio{Part: part, Whole: whole}
	if whole > 0 {
		r.Share = float64(part) / float64(whole)
	}
	return r
}

// LatencySample summarizes timed provenance queries.
type LatencySample struct {
	Queries int     `json:"queries"`
	P50Ms   float64 `json:"p50_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// governed are the audit actions that a policy decision must accompany.
var governed = []modelplane.AuditAction{modelplane.AuditModelCreated, modelplane.AuditVersionCreated, modelplane.AuditTargetCreated,
	modelplane.AuditPromotionRequested, modelplane.AuditMCPServerRegistered, modelplane.AuditEvidenceUpdated, modelplane.AuditDriftReported,
	modelplane.AuditVote, modelplane.AuditApprovalDenied, modelplane.AuditDenied, modelplane.AuditPolicyDecision}

func (s *Server) scorecard(c echo.Context) error {
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionScorecardRead}); err != nil {
		return err
	}
	ctx := c.Request().Context()
	sc := Scorecard{At: time.Now().UTC()}
	ms, err := s.Store.ListModels(ctx)
	if err != nil {
		return err
	}
	owned, total := 0, 0
	for _, m := range ms {
		total++
		if m.Owner != "" && m.RiskTier.Valid() {
			owned++
		}
	}
	if mcps, err := s.Store.ListMCPServers(ctx, ""); err == nil {
		for _, m := range mcps {
			total++
			if m.Owner != "" && m.RiskTier.Valid() {
				owned++
			}
		}
	}
	sc.OwnedAndTiered = ratio(owned, total)

	explicit, transitions, overrides := 0, 0, 0
	since := time.Now().Add(-90 * 24 * time.Hour)
	recs, err := s.Store.ListAudit(ctx, store.AuditFilter{Limit: 5000, Since: since, ExcludeActions: []modelplane.AuditAction{modelplane.AuditToolCall}})
	if err != nil {
		return err
	}
	byOutcome, explicitCalls, err := s.Store.ToolCallCounts(ctx, since)
	if err != nil {
		return err
	}
	calls := 0
	for _, n := range byOutcome {
		calls += n
	}
	sc.ToolCallsExplicit = ratio(explicitCalls, calls)
	sc.ToolCallDenials = ratio(byOutcome[string(modelplane.ToolDenied)], calls)
	sc.ToolCallBlocks = ratio(byOutcome[string(modelplane.ToolBlocked)], calls)
	for _, r := range recs {
		if slices.Contains(governed, r.Action) {
			transitions++
			if r.Policy != nil && r.Policy.Explicit {
				explicit++
			}
		}
		if (r.Action == modelplane.AuditDecision && r.Decision == "promote") || (r.Policy != nil && r.Action == modelplane.AuditDenied && r.Details["attempted"] == policy.ActionPromotionOverride) {
			overrides++
		}
	}
	sc.ExplicitPolicy = ratio(explicit, transitions)
	ps, err := s.Store.ListPromotions(ctx, store.PromotionFilter{})
	if err != nil {
		return err
	}
	sc.Overrides = ratio(overrides, len(ps))

	// Time real provenance queries over the most recent versions.
	var times []float64
	for i := len(ps) - 1; i >= 0 && len(times) < 10; i-- {
		p := ps[i]
		if p.Kind != "" {
			continue
		}
		m, err := s.Store.GetModel(ctx, p.Model)
		if err != nil {
			continue
		}
		t0 := time.Now()
		if _, err := s.buildProvenance(ctx, m, p.Version); err == nil {
			times = append(times, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	if len(times) > 0 {
		sort.Float64s(times)
		sc.ProvenanceTime = LatencySample{Queries: len(times), P50Ms: times[len(times)/2], MaxMs: times[len(times)-1]}
	}
	return c.JSON(http.StatusOK, sc)
}

func (s *Server) verifyAudit(c echo.Context) error {
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionAuditRead}); err != nil {
		return err
	}
	brk, n, err := s.Store.VerifyAudit(c.Request().Context())
	if err != nil {
		return err
	}
	if brk != nil {
		return c.JSON(http.StatusConflict, map[string]any{"ok": false, "records": n, "break": brk, "message": brk.Error()})
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "records": n})
}

func (s *Server) policyStatus(c echo.Context) error {
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionAuditRead}); err != nil {
		return err
	}
	if s.Policy == nil {
		return c.JSON(http.StatusOK, map[string]any{"governance": "off"})
	}
	return c.JSON(http.StatusOK, s.Policy.Status())
}

// allPromotions reads every promotion f matches, a page at a time: one
// page of a model's promotions would leave its older versions without
// their provenance.
func (s *Server) allPromotions(ctx context.Context, f store.PromotionFilter) ([]modelplane.Promotion, error) {
	f.Limit = 500
	var out []modelplane.Promotion
	for {
		ps, err := s.Store.ListPromotions(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
		if len(ps) < f.Limit {
			return out, nil
		}
		f.Before = store.PromotionCursor(ps[len(ps)-1])
	}
}
