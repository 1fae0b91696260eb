package identity

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/modelplane/modelplane"
)

// ClaimMapping says where in a token's claims the user, teams and roles are.
// Claim names may be dotted paths into nested objects ("realm_access.roles");
// a top-level claim whose name itself contains dots (Auth0-style
// "https://example.com/groups") is matched first.
type ClaimMapping struct {
	// UserClaim names the principal (default "preferred_username"); if it
	// is absent or empty, "email" and then "sub" are used.
	UserClaim string `json:"user_claim,omitempty"`
	// TeamsClaim holds group names (default "groups"); a string or a list.
	TeamsClaim string `json:"teams_claim,omitempty"`
	// RolesClaim holds role names (default "roles"); a string or a list. It
	// may be the same claim as TeamsClaim.
	RolesClaim string `json:"roles_claim,omitempty"`
	// TeamPrefix, if set, selects which groups are teams: only values with
	// the prefix, which is stripped ("team:fraud" -> "fraud"). If empty,
	// every group is a team.
	TeamPrefix string `json:"team_prefix,omitempty"`
	// RoleMap maps IdP role values to modelplane roles ("ml-approvers" ->
	// "approver"). Values already spelled like a modelplane role map to
	// themselves; anything else is ignored.
	RoleMap map[string]string `json:"role_map,omitempty"`
	// DefaultRoles are granted to every authenticated user in addition to
	// mapped roles; with none set, a token without a mapped role is refused.
	DefaultRoles []string `json:"default_roles,omitempty"`
}

// compile fills defaults, validates role names, and copies the caller's
// map and slice so later mutation cannot race with Authenticate.
func (m ClaimMapping) compile() (ClaimMapping, error) {
	if m.UserClaim == "" {
		m.UserClaim = "preferred_username"
	}
	if m.TeamsClaim == "" {
		m.TeamsClaim = "groups"
	}
	if m.RolesClaim == "" {
		m.RolesClaim = "roles"
	}
	m.RoleMap = maps.Clone(m.RoleMap)
	for from, to := range m.RoleMap {
		if !slices.Contains(modelplane.Roles, to) {
			return m, fmt.Errorf("role_map: %q maps to unknown role %q (want one of %s)", from, to, roleList())
		}
	}
	m.DefaultRoles = slices.Clone(m.DefaultRoles)
	for _, r := range m.DefaultRoles {
		if !slices.Contains(modelplane.Roles, r) {
			return m, fmt.Errorf("default_roles: unknown role %q (want one of %s)", r, roleList())
		}
	}
	return m, nil
}

// principal maps verified claims to a principal (without Method/Expires).
func (m ClaimMapping) principal(claims map[string]any) (modelplane.Principal, error) {
	var p modelplane.Principal
	for _, c := range []string{m.UserClaim, "email", "sub"} {
		if v, ok := lookup(claims, c); ok {
			if s, ok := v.(string); ok && s != "" {
				p.Name = s
				break
			}
		}
	}
	if p.Name == "" {
		return p, fmt.Errorf("no user name in claims (looked at %q, \"email\", \"sub\")", m.UserClaim)
	}

	groups, _ := lookup(claims, m.TeamsClaim)
	for _, g := range stringValues(groups) {
		if m.TeamPrefix != "" {
			var ok bool
			if g, ok = strings.CutPrefix(g, m.TeamPrefix); !ok {
				continue
			}
		}
		if g != "" && !slices.Contains(p.Teams, g) {
			p.Teams = append(p.Teams, g)
		}
	}

	have := make([]bool, len(modelplane.Roles)) // indexed like modelplane.Roles
	grant := func(r string) bool {
		if i := slices.Index(modelplane.Roles, r); i >= 0 {
			have[i] = true
			return true
		}
		return false
	}
	raw, present := lookup(claims, m.RolesClaim)
	granted := false
	for _, v := range stringValues(raw) {
		if r, ok := m.RoleMap[v]; ok {
			granted = grant(r) || granted
		} else {
			granted = grant(v) || granted
		}
	}
	for _, r := range m.DefaultRoles {
		granted = grant(r) || granted
	}
	if !granted {
		if !present {
			return p, fmt.Errorf("no modelplane role in claims: claim %q is missing", m.RolesClaim)
		}
		return p, fmt.Errorf("no modelplane role in claims: claim %q has none of %s and no role_map entry matches", m.RolesClaim, roleList())
	}
	// Canonical order keeps principals comparable and audit records stable.
	for i, r := range modelplane.Roles {
		if have[i] {
			p.Roles = append(p.Roles, r)
		}
	}
	return p, nil
}

// lookup finds a claim by literal name first, then as a dotted path.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringValues accepts a string or a list of strings; IdPs differ, and some
// send a single group as a bare string. Non-string entries are ignored.
func stringValues(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func roleList() string { return strings.Join(modelplane.Roles, ", ") }
