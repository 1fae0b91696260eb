package modelplane

import (
	"slices"
	"time"
)

// Roles a principal may hold. Admins act across teams; auditors read
// everything and change nothing.
const (
	RoleRequester = "requester"
	RoleApprover  = "approver"
	RoleAdmin     = "admin"
	RoleAuditor   = "auditor"
)

// Roles lists every role, for validation and help text.
var Roles = []string{RoleRequester, RoleApprover, RoleAdmin, RoleAuditor}

// How a principal proved who it is.
const (
	AuthOIDC   = "oidc"        // a JWT validated against the issuer's JWKS
	AuthToken  = "token"       // a static API token
	AuthUI     = "temporal-ui" // a Temporal Web UI action with no verified identity (dev mode)
	AuthSystem = "system"      // modelplane itself (timers, guardians, webhooks)
)

// Principal is an authenticated caller.
type Principal struct {
	Name  string   `json:"name"`
	Teams []string `json:"teams,omitempty"`
	Roles []string `json:"roles"`
	// Method says how the identity was established (AuthOIDC, AuthToken, ...).
	Method  string     `json:"method"`
	Expires *time.Time `json:"expires,omitempty"`
	// Client is the OAuth client the token was issued to (azp or
	// client_id): for a tool call through the MCP gateway, the agent.
	Client string `json:"client,omitempty"`
	// Act is the delegation chain of an RFC 8693 token, nearest actor
	// first: who acts on Name's behalf.
	Act []string `json:"act,omitempty"`
}

// Has reports whether p holds role.
func (p Principal) Has(role string) bool { return slices.Contains(p.Roles, role) }

// InTeam reports whether p belongs to team.
func (p Principal) InTeam(team string) bool { return slices.Contains(p.Teams, team) }

// PolicyDecision is the policy engine's answer to one question; it is kept
// with the audit record of the action it allowed or denied.
type PolicyDecision struct {
	ID            string   `json:"id"`
	Allow         bool     `json:"allow"`
	Reasons       []string `json:"reasons,omitempty"`
	PolicyVersion string   `json:"policy_version"`
	// Explicit is true when a policy rule decided, false when the default
	// (deny, or allow for unregulated reads) applied.
	Explicit bool `json:"explicit"`
	// RequiredApprovals is the quorum policy asks for (promotion.start only).
	RequiredApprovals int `json:"required_approvals,omitempty"`
}

// Reason joins the decision's reasons for an error message.
func (d PolicyDecision) Reason() string {
	if len(d.Reasons) == 0 {
		if d.Allow {
			return "allowed"
		}
		return "denied by policy"
	}
	out := d.Reasons[0]
	for _, r := range d.Reasons[1:] {
		out += "; " + r
	}
	return out
}

// PrincipalHeader is the Temporal header in which modelplane's Temporal
// frontend stamps the verified caller of a signal or update (a Principal as
// JSON). The frontend deletes whatever a client put there, so workflow code
// can trust it; a payload's own "approver" field is only a claim.
const PrincipalHeader = "modelplane-principal"
