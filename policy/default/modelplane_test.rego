# Rego tests for the default policy. The engine runs every test_* rule in the
# bundle each time it loads it and refuses a bundle whose tests fail, so keep
# these (and add your own) when you customise the policy. Run them by hand
# with: opa test DIR
package modelplane_test

base := {
	"action": "promotion.start",
	"caller": {"name": "alice", "teams": ["fraud"], "roles": ["requester"], "method": "oidc"},
	"asset": {
		"kind": "model", "name": "fraud-detector", "owner": "alice", "team": "fraud",
		"risk_tier": "high", "data_domain": "", "version": "v2",
		"metrics": {"auc": 0.93},
	},
	"target": {"name": "prod", "environment": "production", "provider": "sim"},
	"time": "2026-03-04T10:00:00Z",
}

test_requester_starts_in_own_team if {
	d := data.modelplane.decision with input as base
	d.allow
	d.required_approvals == 2
}

test_other_team_denied if {
	d := data.modelplane.decision with input as object.union(base, {"caller": {"name": "mallory", "teams": ["ads"], "roles": ["requester"], "method": "oidc"}})
	not d.allow
	d.explicit
}

test_four_eyes if {
	inp := object.union(base, {
		"action": "promotion.approve",
		"caller": {"name": "alice", "teams": ["fraud"], "roles": ["approver"], "method": "oidc"},
		"promotion": {"id": "p1", "requested_by": "alice", "approvals": [], "override": false},
	})
	d := data.modelplane.decision with input as inp
	not d.allow
	some r in d.reasons
	startswith(r, "four-eyes")
}

test_expired_credentials_denied if {
	caller := object.union(base.caller, {"expires": "2026-03-04T09:00:00Z"})
	d := data.modelplane.decision with input as object.union(base, {"caller": caller, "caller_expired": true})
	not d.allow
	"credentials of alice expired at 2026-03-04T09:00:00Z" in d.reasons
	live := data.modelplane.decision with input as object.union(base, {"caller": caller})
	live.allow
}

test_unknown_action_undefined if {
	not data.modelplane.decision with input as object.union(base, {"action": "model.explode"})
}
