package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

const decisionKey = "policy_decision"

// authorize asks the policy engine whether the caller may do action on the
// asset. A denial is audited (with the decision) and becomes a 403 carrying
// the policy's reason. Every authenticated route must call it at least once:
// the router refuses to answer a route that did not (see checkAuthorized).
func (s *Server) authorize(c echo.Context, in policy.Input) (modelplane.PolicyDecision, error) {
	in.Caller = caller(c)
	if s.Policy == nil {
		// Governance off: only the benchmark baseline builds a server like this.
		d := modelplane.PolicyDecision{Allow: true, Reasons: []string{"governance off"}}
		c.Set(decisionKey, d)
		return d, nil
	}
	start := time.Now()
	d, err := s.Policy.Decide(c.Request().Context(), in)
	if s.Metrics != nil {
		s.Metrics.PolicyDecision(in.Action, d.Allow && err == nil, time.Since(start))
	}
	c.Set(decisionKey, d)
	if err != nil {
		s.Logger.Error("policy evaluation failed", "action", in.Action, "error", err)
		return d, modelplane.Errorf(modelplane.EForbidden, "policy could not decide %s: %v", in.Action, err)
	}
	if !d.Allow {
		if !isRead(in.Action) {
			rec := s.record(c, modelplane.AuditDenied, subjectOf(in), in.Asset.Name, targetName(in), map[string]any{"attempted": in.Action})
			rec.Version = in.Asset.Version
			if in.Promotion != nil {
				rec.PromotionID = in.Promotion.ID
			}
			s.write(c, rec)
		}
		return d, &modelplane.Error{Code: modelplane.EForbidden, Message: in.Caller.Name + " may not " + in.Action + ": " + d.Reason()}
	}
	return d, nil
}

// visible reports whether the caller may read an asset of team, asking the
// policy once per team per request (lists hold many assets of few teams).
func (s *Server) visible(c echo.Context, action, kind, team string) bool {
	cache, _ := c.Get("visible").(map[string]bool)
	if cache == nil {
		cache = map[string]bool{}
		c.Set("visible", cache)
	}
	key := action + "\x00" + kind + "\x00" + team
	if v, ok := cache[key]; ok {
		return v
	}
	in := policy.Input{Action: action, Caller: caller(c), Asset: policy.Asset{Kind: kind, Team: team}}
	ok := false
	if s.Policy == nil {
		ok = true
	} else if d, err := s.Policy.Decide(c.Request().Context(), in); err == nil {
		ok = d.Allow
	}
	cache[key] = ok
	listing(c)
	return ok
}

// listing records that a list's items are each filtered through the policy
// (an empty list still had its question answered).
func listing(c echo.Context) {
	if _, ok := c.Get(decisionKey).(modelplane.PolicyDecision); !ok {
		c.Set(decisionKey, modelplane.PolicyDecision{Allow: true, Reasons: []string{"list: each item filtered by policy"}})
	}
}

func isRead(action string) bool {
	switch action {
	case policy.ActionModelRead, policy.ActionTargetRead, policy.ActionPromotionRead, policy.ActionMCPRead, policy.ActionAuditRead,
		policy.ActionAuditExport, policy.ActionDeploymentRead, policy.ActionProvenanceRead, policy.ActionScorecardRead,
		policy.ActionPipelineRead, policy.ActionFreezeRead:
		return true
	}
	return false
}

func subjectOf(in policy.Input) string {
	s := in.Asset.Kind + "/" + in.Asset.Name
	if in.Asset.Version != "" {
		s += "@" + in.Asset.Version
	}
	if in.Target != nil {
		s += " → " + in.Target.Name
	}
	return s
}

func targetName(in policy.Input) string {
	if in.Target == nil {
		return ""
	}
	return in.Target.Name
}

// checkAuthorized wraps an authenticated route: a handler that answers
// with success without consulting the policy is a programming error, and
// says so. Handlers commit their answer before they return, so the check
// runs just before the status line is written: the success is replaced by a
// 500 and its body dropped. Errors raised before the policy question
// (malformed body, unknown asset) pass through unchanged.
func (s *Server) checkAuthorized(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		res.Before(func() {
			if _, ok := c.Get(decisionKey).(modelplane.PolicyDecision); ok || res.Status >= 400 {
				return
			}
			msg := "route " + c.Request().Method + " " + c.Path() + " answered without a policy decision"
			s.Logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", msg)
			body, _ := json.Marshal(map[string]any{"error": &modelplane.Error{Code: modelplane.EInternal, Message: msg}})
			res.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			res.Header().Del(echo.HeaderContentLength)
			res.Status = http.StatusInternalServerError
			res.Writer = &refusedWriter{ResponseWriter: res.Writer, body: body}
		})
		return next(c)
	}
}

// refusedWriter sends its own body with the status line and drops the
// handler's.
type refusedWriter struct {
	http.ResponseWriter
	body []byte
}

func (w *refusedWriter) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	_, _ = w.ResponseWriter.Write(w.body)
}

func (w *refusedWriter) Write(b []byte) (int, error) { return len(b), nil }

// modelAsset describes a model (and optionally a version) to the policy.
func modelAsset(m modelplane.Model, v *modelplane.Version) policy.Asset {
	a := policy.Asset{Kind: policy.KindModel, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), DataDomain: m.DataDomain}
	if v != nil {
		a.Version, a.Metrics = v.Version, v.Metrics
		a.Lineage = map[string]string{"run_id": v.Lineage.RunID, "source": v.Lineage.Source, "registry": v.Lineage.Registry}
	}
	return a
}

func targetInfo(t modelplane.Target) *policy.TargetInfo {
	return &policy.TargetInfo{Name: t.Name, Environment: t.Environment, Provider: t.Provider}
}

// promotionInfo describes a promotion to the policy. Only votes on the
// current evidence are passed: earlier ones no longer count.
func promotionInfo(p modelplane.Promotion) *modelplane.PolicyPromotion {
	pi := &modelplane.PolicyPromotion{ID: p.ID, RequestedBy: p.RequestedBy, Stage: p.Stage}
	if p.Validation != nil {
		pi.EvidenceHash = p.Validation.EvidenceHash
	}
	for _, a := range p.Approvals {
		if pi.EvidenceHash == "" || a.EvidenceHash == "" || a.EvidenceHash == pi.EvidenceHash {
			pi.Approvals = append(pi.Approvals, modelplane.PolicyApproval{Approver: a.Approver, Decision: a.Decision, EvidenceHash: a.EvidenceHash})
		}
	}
	return pi
}

// promotionSubject loads what a promotion is about: its model (or MCP
// server) and target, as policy input.
func (s *Server) promotionInput(ctx context.Context, action string, p modelplane.Promotion) (policy.Input, error) {
	in := policy.Input{Action: action, Promotion: promotionInfo(p)}
	if p.Kind == modelplane.KindMCPServer {
		m, err := s.Store.GetMCPServer(ctx, p.Model, p.Version)
		if err != nil {
			return in, err
		}
		in.Asset = policy.Asset{Kind: policy.KindMCPServer, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Version: m.Version}
		in.Target = &policy.TargetInfo{Name: p.Target, Environment: "production", Provider: "mcp-registry"}
		return in, nil
	}
	m, err := s.Store.GetModel(ctx, p.Model)
	if err != nil {
		return in, err
	}
	var vp *modelplane.Version
	if v, err := s.Store.GetVersion(ctx, p.Model, p.Version); err == nil {
		vp = &v
	}
	in.Asset = modelAsset(m, vp)
	if t, err := s.Store.GetTarget(ctx, p.Target); err == nil {
		in.Target = targetInfo(t)
	}
	return in, nil
}

// record builds an audit record of an API action carrying the caller and
// the policy decision that allowed (or denied) it.
func (s *Server) record(c echo.Context, action modelplane.AuditAction, subject, model, target string, details map[string]any) modelplane.AuditRecord {
	who := caller(c)
	if details == nil {
		details = map[string]any{}
	}
	details["auth"] = who.Method
	rec := modelplane.AuditRecord{Key: "api/" + randomHex(12), Time: time.Now().UTC(), Actor: who.Name, Action: action, Subject: subject, Model: model, Target: target, Details: details}
	if d, ok := c.Get(decisionKey).(modelplane.PolicyDecision); ok && d.ID != "" {
		rec.Policy = &d
	}
	if id, ok := details["promotion_id"].(string); ok {
		rec.PromotionID = id
	}
	return rec
}

func (s *Server) write(c echo.Context, rec modelplane.AuditRecord) {
	if err := s.Store.AppendAudit(context.WithoutCancel(c.Request().Context()), rec); err != nil {
		s.Logger.Error("audit write failed", "action", rec.Action, "error", err)
	}
}
