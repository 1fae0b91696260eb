package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

// EvidenceHash digests what an approver looks at: the version's artifact,
// lineage and metrics, and the validation checks. An approval is bound to
// it; when the evidence changes, earlier approvals stop counting.
func EvidenceHash(v modelplane.Version, r modelplane.ValidationReport) string {
	// encoding/json sorts map keys, so equal evidence hashes equally.
	b, _ := json.Marshal(struct {
		Model, Version, Artifact string
		Lineage                  modelplane.Lineage
		Metrics                  map[string]float64
		Checks                   []modelplane.Check
		Contract                 map[string]string
	}{v.Model, v.Version, v.ArtifactURI, v.Lineage, v.Metrics, r.Checks, r.Contract})
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// AuthorizeInput is one lifecycle question for the policy engine.
type AuthorizeInput struct {
	Action string
	Caller modelplane.Principal
	// Kind is "" for a model, modelplane.KindMCPServer for an MCP server.
	Kind, Model, Version, Target string
	Promotion                    *modelplane.PolicyPromotion
	Request                      map[string]any
}

// Authorize asks the policy engine about a transition. The answer (with its
// id and policy version) is recorded in workflow history and the audit trail.
// A denial is an answer, not an error.
func (a *Activities) Authorize(ctx context.Context, in AuthorizeInput) (modelplane.PolicyDecision, error) {
	if a.Policy == nil {
		return modelplane.PolicyDecision{Allow: true, Reasons: []string{"governance off"}}, nil
	}
	if in.Caller.Method == modelplane.AuthUI && len(in.Caller.Roles) == 0 && a.Directory != nil {
		// The name was typed in the Web UI: use the roles and teams of that
		// name, but keep the method so policy knows it is unverified.
		if p, ok := a.Directory(in.Caller.Name); ok {
			in.Caller.Roles, in.Caller.Teams = p.Roles, p.Teams
		}
	}
	pin := policy.Input{Action: in.Action, Caller: in.Caller, Promotion: in.Promotion, Request: in.Request}
	if in.Kind == modelplane.KindMCPServer {
		m, err := a.Store.GetMCPServer(ctx, in.Model, in.Version)
		if err != nil {
			return modelplane.PolicyDecision{}, nonRetryable(err)
		}
		pin.Asset = policy.Asset{Kind: policy.KindMCPServer, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Version: m.Version}
		pin.Target = &policy.TargetInfo{Name: in.Target, Environment: "production", Provider: "mcp-registry"}
	} else {
		m, err := a.Store.GetModel(ctx, in.Model)
		if err != nil {
			return modelplane.PolicyDecision{}, nonRetryable(err)
		}
		pin.Asset = policy.Asset{Kind: policy.KindModel, Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), DataDomain: m.DataDomain, Version: in.Version}
		if v, err := a.Store.GetVersion(ctx, in.Model, in.Version); err == nil {
			pin.Asset.Metrics = v.Metrics
			pin.Asset.Lineage = map[string]string{"run_id": v.Lineage.RunID, "source": v.Lineage.Source, "registry": v.Lineage.Registry}
		}
		if t, err := a.Store.GetTarget(ctx, in.Target); err == nil {
			pin.Target = &policy.TargetInfo{Name: t.Name, Environment: t.Environment, Provider: t.Provider}
		}
	}
	d, err := a.Policy.Decide(ctx, pin)
	if err != nil {
		return d, fmt.Errorf("policy: %w", err)
	}
	return d, nil
}
