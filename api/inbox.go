package api

// The lists a console pages through: promotions and audit records with
// cursors, and the approvals inbox.

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
)

// Promotion pages: 50 by default, at most 200.
const (
	promotionPage    = 50
	maxPromotionPage = 200
)

// listPromotions answers GET /v1/promotions?model=&target=&status=&requester=&team=&stage=&limit=&before=,
// newest first. "next", when set, is the before= of the following page:
// the store returned a full page (visibility may have left fewer).
func (s *Server) listPromotions(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParam
	f := store.PromotionFilter{Model: q("model"), Target: q("target"), Status: q("status"), RequestedBy: q("requester"), Stage: q("stage"),
		Before: q("before"), Limit: promotionPage}
	if v := q("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPromotionPage {
			return modelplane.FieldError("limit", "must be an integer from 1 to %d, got %q", maxPromotionPage, v)
		}
		f.Limit = n
	}
	if f.Before != "" {
		if _, _, err := store.ParsePromotionCursor(f.Before); err != nil {
			return modelplane.FieldError("before", "must be the next cursor of a previous page: %v", err)
		}
	}
	if team := q("team"); team != "" {
		names, err := s.teamAssets(ctx, team)
		if err != nil {
			return err
		}
		f.Models = names
	}
	ps, err := s.Store.ListPromotions(ctx, f)
	if err != nil {
		return err
	}
	teams, err := s.teamsOf(ctx, ps)
	if err != nil {
		return err
	}
	listing(c)
	out := []modelplane.Promotion{}
	for _, p := range ps {
		if s.visible(c, policy.ActionPromotionRead, kindOf(p), teams[p.Kind+"/"+p.Model]) {
			out = append(out, p)
		}
	}
	body := map[string]any{"promotions": out}
	if len(ps) == f.Limit {
		body["next"] = store.PromotionCursor(ps[len(ps)-1])
	}
	return c.JSON(http.StatusOK, body)
}

// teamAssets names the models and MCP servers of a team (never nil: a
// team without any matches no promotion).
func (s *Server) teamAssets(ctx context.Context, team string) ([]string, error) {
	names := []string{}
	ms, err := s.Store.ListModels(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Team == team {
			names = append(names, m.Name)
		}
	}
	servers, err := s.Store.ListMCPServers(ctx, "")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, m := range servers {
		if m.Team == team && !seen[m.Name] {
			seen[m.Name] = true
			names = append(names, m.Name)
		}
	}
	return names, nil
}

// listAudit answers GET /v1/audit with the filters of auditFilter and
// order=asc (default) or desc. "next", when the page is full, is the seq
// to pass as after= (asc) or before= (desc) for the following page.
func (s *Server) listAudit(c echo.Context) error {
	newest := false
	switch o := c.QueryParam("order"); o {
	case "", "asc":
	case "desc":
		newest = true
	default:
		return modelplane.FieldError("order", "must be asc or desc, got %q", o)
	}
	f, err := s.auditFilter(c, policy.ActionAuditRead)
	if err != nil {
		return err
	}
	f.Newest = newest
	recs, err := s.Store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return err
	}
	body := map[string]any{"records": recs}
	if n := len(recs); n > 0 && n == f.PageSize() {
		body["next"] = recs[n-1].Seq
	}
	return c.JSON(http.StatusOK, body)
}

// seqBounds reads after= and before=, audit seqs bounding the records.
func seqBounds(c echo.Context, f *store.AuditFilter) error {
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"after", &f.AfterSeq}, {"before", &f.BeforeSeq}} {
		if v := c.QueryParam(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return modelplane.FieldError(p.name, "must be an audit seq (a non-negative integer), got %q", v)
			}
			*p.dst = n
		}
	}
	return nil
}

// InboxItem is a promotion waiting for the caller's vote, with its clock.
type InboxItem struct {
	Promotion modelplane.Promotion `json:"promotion"`
	// WaitingSince is when the promotion entered awaiting_approval.
	WaitingSince time.Time `json:"waiting_since"`
	// EscalatesAt is when a missing quorum is escalated, ExpiresAt when
	// the promotion expires without one (as the workflow computes them).
	EscalatesAt time.Time `json:"escalates_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Votes counts the approvals on the current evidence; Required is the quorum.
	Votes    int `json:"votes"`
	Required int `json:"required"`
	// EvidenceHash is the evidence a vote is given on.
	EvidenceHash string `json:"evidence_hash,omitempty"`
}

// inbox answers GET /v1/inbox: the running promotions awaiting approval
// that the policy would let the caller approve now, oldest first. The
// caller's own requests and promotions they already voted on (on the
// current evidence) are left out. Nothing is audited: it asks, it does not vote.
func (s *Server) inbox(c echo.Context) error {
	ctx := c.Request().Context()
	who := caller(c)
	listing(c)
	items := []InboxItem{}
	assets, err := s.loadAssets(ctx)
	if err != nil {
		return err
	}
	f := store.PromotionFilter{Status: modelplane.StatusRunning, Stage: modelplane.StageAwaitingApproval, OldestFirst: true, Limit: 500}
	for {
		ps, err := s.Store.ListPromotions(ctx, f)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if s.mayApprove(ctx, who, p, assets) {
				items = append(items, inboxItem(p))
			}
		}
		if len(ps) < f.Limit {
			break
		}
		f.After = store.PromotionCursor(ps[len(ps)-1])
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// mayApprove asks the policy what approve would ask, with the same input
// (see approve and authorizePromotion), without recording anything.
func (s *Server) mayApprove(ctx context.Context, who modelplane.Principal, p modelplane.Promotion, assets assets) bool {
	if p.RequestedBy == who.Name {
		return false
	}
	pi := promotionInfo(p) // the votes on the current evidence
	for _, a := range pi.Approvals {
		if a.Approver == who.Name {
			return false
		}
	}
	if s.Policy == nil {
		return true
	}
	in, err := assets.promotionInput(ctx, s, policy.ActionPromotionApprove, p)
	if err != nil {
		return false // its model or server is gone: nothing to decide on
	}
	in.Caller, in.Request = who, map[string]any{"evidence_hash": pi.EvidenceHash, "decision": "approve"}
	d, err := s.Policy.Decide(ctx, in)
	return err == nil && d.Allow
}

func inboxItem(p modelplane.Promotion) InboxItem {
	since := p.CreatedAt
	for _, h := range p.History {
		if h.Stage == modelplane.StageAwaitingApproval {
			since = h.At // the last entry: the workflow enters the stage once
		}
	}
	// As workflows.promotion.approve computes its timers.
	timeout := p.ApprovalTimeout.D()
	if timeout <= 0 {
		timeout = modelplane.DefaultApprovalTimeout
	}
	escalate := timeout / 2
	if d := p.EscalateAfter.D(); d > 0 && d < timeout {
		escalate = d
	}
	it := InboxItem{Promotion: p, WaitingSince: since, EscalatesAt: since.Add(escalate), ExpiresAt: since.Add(timeout), Required: p.RequiredApprovals}
	pi := promotionInfo(p)
	for _, a := range pi.Approvals {
		if a.Decision == "approve" {
			it.Votes++
		}
	}
	it.EvidenceHash = pi.EvidenceHash
	return it
}

// assets are the models and targets read once for a whole inbox, so
// each promotion costs one version read and one policy decision.
type assets struct {
	models  map[string]modelplane.Model
	targets map[string]modelplane.Target
}

func (s *Server) loadAssets(ctx context.Context) (assets, error) {
	a := assets{models: map[string]modelplane.Model{}, targets: map[string]modelplane.Target{}}
	ms, err := s.Store.ListModels(ctx)
	if err != nil {
		return a, err
	}
	for _, m := range ms {
		a.models[m.Name] = m
	}
	ts, err := s.Store.ListTargets(ctx)
	if err != nil {
		return a, err
	}
	for _, t := range ts {
		a.targets[t.Name] = t
	}
	return a, nil
}

// promotionInput is Server.promotionInput answered from the loaded assets.
func (a assets) promotionInput(ctx context.Context, s *Server, action string, p modelplane.Promotion) (policy.Input, error) {
	m, ok := a.models[p.Model]
	if p.Kind == modelplane.KindMCPServer || !ok {
		return s.promotionInput(ctx, action, p)
	}
	in := policy.Input{Action: action, Promotion: promotionInfo(p)}
	var vp *modelplane.Version
	if v, err := s.Store.GetVersion(ctx, p.Model, p.Version); err == nil {
		vp = &v
	}
	in.Asset = modelAsset(m, vp)
	if t, ok := a.targets[p.Target]; ok {
		in.Target = targetInfo(t)
	}
	return in, nil
}
