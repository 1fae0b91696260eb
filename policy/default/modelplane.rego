# The default modelplane policy.
#
# modelplane asks one question per action: data.modelplane.decision, with the
# input described in policy/README.md. The tables the rules consult (roles,
# approvals per risk tier and environment, required metrics, change windows)
# live in data.json, so most changes need no Rego at all.
#
# Every deny message names what went wrong and, where it helps, what would
# make it right: the message is shown to the person who was refused and kept
# in the audit trail.
#
# Default approvals (data.json "approvals"):
#
#   tier       dev  staging  production
#   low         0      0         1
#   medium      0      1         1
#   high        1      1         2
#   critical    1      2         2
#
# An unknown tier uses data.default_risk_tier; an unknown environment uses the
# strictest column of the tier, so a typo never lowers the bar.
package modelplane

# ---------------------------------------------------------------- decision

# decision is defined only for actions this bundle knows. The engine turns an
# undefined decision into a deny naming the action, so a new or misspelt
# action is refused until someone writes a rule for it.
#
# Every rule a question reaches costs an evaluation, so the hot path is kept
# short: the verdict is one rule, the membership tests read the input
# directly, and rule families that apply to a few actions sit behind one
# test of the action (see BenchmarkDecide in policy/bench_test.go).
decision := {
	"allow": verdict.allow,
	"reasons": verdict.reasons,
	"explicit": verdict.explicit,
	"required_approvals": required_approvals,
} if {
	input.action == "promotion.start"
	action_class
}

decision := verdict if {
	input.action != "promotion.start"
	action_class
}

# action_class is undefined for an action neither list names, and so is
# the decision: the rules below compare action_class with "read" directly,
# with no rule of their own for it.
action_class := "read" if {
	input.action in data.read_actions
} else := "change" if {
	input.action in data.change_actions
}

# Allowing needs at least one grant and no deny: a deny always wins, even
# for admins (four-eyes, change windows and evidence apply to everyone).
# explicit tells the audit trail whether a rule decided or the default did.
verdict := {"allow": false, "reasons": sort(deny), "explicit": true} if {
	count(deny) > 0
} else := {"allow": true, "reasons": array.concat(sort(grant), sort(notes)), "explicit": true} if {
	count(grant) > 0
} else := {"allow": false, "reasons": [no_grant_reason], "explicit": false}

# ------------------------------------------------------------------ caller

# Values used in messages have defaults: a message that failed to build
# would silently drop its deny.
caller_name := object.get(input, ["caller", "name"], "")

# caller_label reads the input itself: most questions need the label for a
# message and nothing else of caller_name.
caller_label := n if {
	n := object.get(input, ["caller", "name"], "")
	n != ""
} else := "anonymous caller"

# Membership tests read the input directly ("admin" in input.caller.roles,
# not a rule of their own): `in` is false on a missing or null list, and
# this is the hot path of every decision.

# modelplane itself (caller method "system"): timers, the deployment
# guardian, registry webhooks.
system_action if {
	input.caller.method == "system"
	input.action in data.system_actions
}

# ------------------------------------------------------------------- asset

team := object.get(input, ["asset", "team"], "")

in_team if {
	team != ""
	team in input.caller.teams
}

asset_kind := replace(object.get(input, ["asset", "kind"], ""), "_", " ")

asset_name := object.get(input, ["asset", "name"], "")

asset_label := concat(" ", [p | some p in [asset_kind, asset_name]; p != ""]) if {
	concat("", [asset_kind, asset_name]) != ""
} else := "the asset"

version_label := sprintf("version %s of %s", [v, asset_label]) if {
	v := object.get(input, ["asset", "version"], "")
	v != ""
} else := asset_label

metrics := object.get(input, ["asset", "metrics"], {})

promotion_id := object.get(input, ["promotion", "id"], "")

own_promotion if {
	caller_name != ""
	input.promotion.requested_by == caller_name
}

# ------------------------------------------------------------ environment

raw_env := lower(object.get(input, ["target", "environment"], ""))

# env reads the input itself rather than raw_env: one rule fewer on the
# path of every start and step.
env := object.get(data.environment_aliases, raw, raw) if {
	raw := lower(object.get(input, ["target", "environment"], ""))
}

# A question without a target is treated as production, so a missing field
# never relaxes a production-only rule.
production if env == "production"

production if raw_env == ""

# ------------------------------------------------------------------ grants

grant contains sprintf("%s is an admin", [caller_label]) if "admin" in input.caller.roles

grant contains sprintf("%s is an auditor; auditors may read everything", [caller_label]) if {
	"auditor" in input.caller.roles
	action_class == "read"
}

grant contains sprintf("%s has role %s in team %s", [caller_label, role, team]) if {
	in_team
	some role in input.caller.roles
	input.action in data.roles[role]
}

grant contains sprintf("%s is a member of team %s", [caller_label, team]) if {
	in_team
	input.action in data.member_actions
}

grant contains sprintf("%s has no owning team; any authenticated caller may read it", [asset_label]) if {
	team == ""
	input.action in data.shared_read_actions
}

# Spelt out rather than system_action, so the rule index passes over it for
# every other caller.
grant contains sprintf("modelplane itself (%s) may %s", [caller_label, input.action]) if {
	input.caller.method == "system"
	input.action in data.system_actions
}

# Rolling back is a safety action and cancelling one's own request is always
# fine, so the requester keeps both even after leaving the team.
grant contains sprintf("%s requested promotion %s", [caller_label, promotion_id]) if {
	input.action in {"promotion.rollback", "promotion.reject"}
	own_promotion
}

# -------------------------------------------------------------------- deny

deny contains "caller is not authenticated" if object.get(input, ["caller", "name"], "") == ""

# The engine compares the expiry with the decision time (caller_expired), so
# this rule reads no clock and its answers can be kept in the decision cache.
deny contains sprintf("credentials of %s expired at %s", [caller_label, input.caller.expires]) if input.caller_expired

# Team isolation: outside admins, auditors reading, modelplane's own work and
# a requester's safety actions, callers act only within their teams.
deny contains sprintf("%s is not a member of team %s, which owns %s", [caller_label, team, asset_label]) if {
	team != ""
	not in_team
	not team_exempt
}

team_exempt if "admin" in input.caller.roles

team_exempt if {
	"auditor" in input.caller.roles
	action_class == "read"
}

team_exempt if system_action

team_exempt if {
	input.action in {"promotion.rollback", "promotion.reject"}
	own_promotion
}

# Said outright, so an auditor learns why rather than which role is missing.
deny contains sprintf("auditors may read but not change anything; %s may not %s", [caller_label, input.action]) if {
	"auditor" in input.caller.roles
	action_class != "read"
	not "admin" in input.caller.roles
	not other_role_grants
}

other_role_grants if {
	some role in input.caller.roles
	input.action in data.roles[role]
}

deny contains sprintf("%s has no owning team; only admins may change it", [asset_label]) if {
	team == ""
	action_class != "read"
	not "admin" in input.caller.roles
	not system_action
}

# ------------------------------------------------------------- approvals

# The four-eyes rules bind only data.four_eyes_actions: one test of the
# action keeps them off every other question.
deny contains msg if {
	input.action in data.four_eyes_actions
	some msg in four_eyes_deny
}

# Four-eyes cannot be checked without the promotion, so its absence denies.
four_eyes_deny contains sprintf("%s needs the promotion (input.promotion) to check four-eyes", [input.action]) if {
	not input.promotion
}

four_eyes_deny contains sprintf(
	"four-eyes: %s requested promotion %s, so someone else must %s it",
	[caller_label, promotion_id, trim_prefix(input.action, "promotion.")],
) if {
	own_promotion
}

deny contains sprintf("%s has already voted (%s) on promotion %s", [caller_label, vote, promotion_id]) if {
	input.action == "promotion.approve"
	some a in object.get(input, ["promotion", "approvals"], [])
	a.approver == caller_name
	vote := object.get(a, "decision", "vote")
}

# A vote counts only for the evidence it was given on.
deny contains sprintf(
	"evidence changed since %s reviewed it: the vote is for %s but promotion %s now has %s; review the current evidence and vote again",
	[caller_label, voted, promotion_id, current],
) if {
	input.action == "promotion.approve"
	voted := object.get(input, ["request", "evidence_hash"], "")
	current := object.get(input, ["promotion", "evidence_hash"], "")
	voted != ""
	current != ""
	voted != current
}

# Temporal Web UI actions carry an identity nobody verified (dev mode), so
# they may not move production forward unless the operator says so.
deny contains sprintf(
	"%s in production needs a verified identity; Temporal UI actions are unverified (use the API or CLI, or set allow_unverified_ui_approvals)",
	[input.action],
) if {
	input.caller.method == "temporal-ui"
	input.action in data.verified_identity_actions
	production
	not data.allow_unverified_ui_approvals
}

tier := t if {
	t := object.get(input, ["asset", "risk_tier"], "")
	data.approvals[t]
} else := data.default_risk_tier

required_approvals := n if {
	n := data.approvals[tier][env]
} else := max([n | some n in data.approvals[tier]]) if {
	count(data.approvals[tier]) > 0
} else := max([n | some row in data.approvals; some n in row]) if {
	count(data.approvals) > 0
} else := 0

# ---------------------------------------------------------------- metrics

deny contains sprintf("%s requires metric %q, which %s does not report", [env, m, version_label]) if {
	input.action == "promotion.start"
	some m in object.get(data.required_metrics, env, [])
	not m in object.keys(metrics)
}

deny contains sprintf(
	"%s requires at least %d offline metric(s) (for example accuracy); %s reports %d",
	[env, n, version_label, count(metrics)],
) if {
	input.action == "promotion.start"
	n := object.get(data.min_metrics, env, 0)
	count(metrics) < n
}

# --------------------------------------------------------- change windows

now_ns := time.parse_rfc3339_ns(input.time)

# time.weekday says "Monday"; windows name days by their first three letters.
weekday := lower(substring(time.weekday(now_ns), 0, 3))

clock := time.clock(now_ns)

default now_text := "at an unknown time"

now_text := sprintf("it is %s %02d:%02d UTC", [weekday, clock[0], clock[1]])

# An override is an exception an admin grants (promotion.override); the
# system carries it on for the promotion's later steps.
window_override if {
	input.promotion.override == true
	"admin" in input.caller.roles
}

window_override if {
	input.promotion.override == true
	input.caller.method == "system"
}

# Days match the current UTC day; a window whose start_hour is after its
# end_hour runs overnight.
in_window(w) if {
	weekday in w.days
	hour_in(w)
}

hour_in(w) if {
	w.start_hour <= w.end_hour
	clock[0] >= w.start_hour
	clock[0] < w.end_hour
}

hour_in(w) if {
	w.start_hour > w.end_hour
	clock[0] >= w.start_hour
}

hour_in(w) if {
	w.start_hour > w.end_hour
	clock[0] < w.end_hour
}

# A window open every day at every hour is open without asking the clock,
# and an answer that never asked the clock can be cached (see
# policy/governance_cache.go); the default production window is one.
windows_open if {
	some w in data.change_windows[env]

	# Open every day at every hour (spelt out: cheaper than `every`).
	w.start_hour <= 0
	w.end_hour >= 24
	"mon" in w.days
	"tue" in w.days
	"wed" in w.days
	"thu" in w.days
	"fri" in w.days
	"sat" in w.days
	"sun" in w.days
}

windows_open if {
	some w in data.change_windows[env]
	in_window(w)
}

window_names := concat(", ", [sprintf(
	"%q (%s %02d:00-%02d:00 UTC)",
	[object.get(w, "name", "unnamed"), concat(",", w.days), w.start_hour, w.end_hour],
) |
	some w in data.change_windows[env]
])

# Windows and freezes bind only data.window_actions: one test of the
# action keeps them off every other question.
deny contains msg if {
	input.action in data.window_actions
	window_bound
	some msg in window_deny
}

notes contains msg if {
	input.action in data.window_actions
	window_bound
	some msg in window_notes
}

# window_bound: the windows or a freeze bind the action now. Asked first,
# it keeps the usual answer (no) to one rule.
window_bound if {
	data.change_windows[env]
	not windows_open
}

window_bound if {
	count(data.freezes) > 0
	count(active_freeze) > 0
}

outside_window if {
	data.change_windows[env]
	not windows_open
}

window_deny contains sprintf(
	"%s is outside the %s change windows [%s]; %s (an admin may override)",
	[input.action, env, window_names, now_text],
) if {
	outside_window
	not window_override
}

window_notes contains sprintf("outside the %s change windows [%s]: allowed by override (exception)", [env, window_names]) if {
	outside_window
	window_override
}

active_freeze contains f if {
	some f in data.freezes
	env in object.get(f, "environments", ["production"])
	now_ns >= time.parse_rfc3339_ns(f.from)
	now_ns < time.parse_rfc3339_ns(f.to)
}

window_deny contains sprintf("change freeze %q is in effect for %s until %s (an admin may override)", [f.name, env, f.to]) if {
	some f in active_freeze
	not window_override
}

window_notes contains sprintf("change freeze %q: allowed by override (exception)", [f.name]) if {
	some f in active_freeze
	window_override
}

# ---------------------------------------------------------- no-grant text

no_grant_reason := sprintf(
	"%s (roles: %s) may not %s on %s: it needs %s",
	[caller_label, roles_text, input.action, asset_label, concat(" or ", sort(needed))],
)

roles_text := concat(", ", roles) if {
	roles := [r | some r in input.caller.roles]
	count(roles) > 0
} else := "none"

needed contains "role admin"

needed contains "role auditor" if action_class == "read"

needed contains sprintf("role %s", [role]) if {
	some role, actions in data.roles
	input.action in actions
}

needed contains "membership of the owning team" if input.action in data.member_actions

# ------------------------------------------------------------ tool calls

# Tool calls through the MCP gateway (action mcp.tool.call).
#
# input.request carries the call: tool {name, annotations}, arguments,
# agent (the OAuth client) and act (the delegation chain). The gateway asks
# data.modelplane.tool_decision, which reads only these rules and the
# caller checks, so a call pays for a small query; the full decision gives
# the same answer for anyone who asks it.
#
# Defaults (data.json "mcp_tools"):
#   - read-only tools (annotations.readOnlyHint) are open to the owning team;
#   - tools that change state but say destructiveHint: false need a role in
#     write_roles;
#   - destructive tools (the MCP default for a tool that is not read-only)
#     need a role in destructive_roles for the channel's environment;
#   - argument_allow[server][tool][argument] lists the values allowed;
#   - blocked_agents lists OAuth clients that may call no tool.

tool_call if input.action == "mcp.tool.call"

tool := object.get(input, ["request", "tool"], {})

tool_name := object.get(tool, "name", "")

tool_label := sprintf("tool %s of %s", [tool_name, asset_name])

tool_read_only if tool.annotations.readOnlyHint == true

tool_destructive if {
	not tool_read_only
	object.get(tool, ["annotations", "destructiveHint"], true) != false
}

destructive_roles := object.get(data.mcp_tools.destructive_roles, env, data.mcp_tools.destructive_roles.production)

tool_grant contains sprintf("%s is an admin", [caller_label]) if {
	tool_call
	"admin" in input.caller.roles
}

tool_grant contains sprintf("%s is a member of team %s; read-only %s is open to the team", [caller_label, team, tool_label]) if {
	tool_call
	in_team
	tool_read_only
}

tool_grant contains sprintf("%s has role %s in team %s; %s changes state but is not destructive", [caller_label, role, team, tool_label]) if {
	tool_call
	in_team
	not tool_read_only
	not tool_destructive
	some role in input.caller.roles
	role in data.mcp_tools.write_roles
}

tool_grant contains sprintf("%s has role %s in team %s, which destructive %s needs in %s", [caller_label, role, team, tool_label, env]) if {
	tool_call
	in_team
	tool_destructive
	some role in input.caller.roles
	role in destructive_roles
}

# Listing has no arguments yet: the tool stays listed, and the call is judged.
tool_deny contains sprintf("%s may only be called with %s in %v, got %v", [tool_label, arg, allowed, value]) if {
	tool_call
	not input.request.listing
	some arg, allowed in object.get(data.mcp_tools.argument_allow, [asset_name, tool_name], {})
	value := object.get(input, ["request", "arguments", arg], null)
	not value in allowed
}

tool_deny contains sprintf("agent %s may call no tool (mcp_tools.blocked_agents)", [agent]) if {
	tool_call
	agent := object.get(input, ["request", "agent"], "")
	agent in data.mcp_tools.blocked_agents
}

tool_caller_deny contains "caller is not authenticated" if caller_name == ""

tool_caller_deny contains sprintf("credentials of %s expired at %s", [caller_label, input.caller.expires]) if input.caller_expired

tool_caller_deny contains sprintf("%s is not a member of team %s, which owns %s", [caller_label, team, asset_label]) if {
	team != ""
	not in_team
	not "admin" in input.caller.roles
}

tool_caller_deny contains sprintf("auditors may read but not call tools; %s may not call %s", [caller_label, tool_label]) if {
	"auditor" in input.caller.roles
	not "admin" in input.caller.roles
	count([r | some r in input.caller.roles; r != "auditor"]) == 0
}

tool_all_deny := tool_deny | tool_caller_deny

default tool_allow := false

tool_allow if {
	count(tool_all_deny) == 0
	count(tool_grant) > 0
}

tool_reasons := sort(tool_all_deny) if {
	count(tool_all_deny) > 0
} else := sort(tool_grant) if {
	count(tool_grant) > 0
} else := [sprintf(
	"%s (roles: %s) may not call %s: it needs %s",
	[caller_label, roles_text, tool_label, tool_needs],
)]

tool_needs := sprintf("membership of team %s", [team]) if {
	tool_read_only
} else := sprintf("membership of team %s and a role among %s (a destructive tool in %s)", [team, concat(", ", destructive_roles), env]) if {
	tool_destructive
} else := sprintf("membership of team %s and a role among %s", [team, concat(", ", data.mcp_tools.write_roles)])

tool_decision := {
	"allow": tool_allow,
	"reasons": tool_reasons,
	"explicit": (count(tool_all_deny) + count(tool_grant)) > 0,
} if tool_call

# The full decision sees the same rules. The action test comes first so
# the rule index skips both for every other action.
grant contains g if {
	input.action == "mcp.tool.call"
	some g in tool_grant
}

deny contains d if {
	input.action == "mcp.tool.call"
	some d in tool_deny
}

# ------------------------------------------------------- pipeline auto-promotion

# A pipeline stage promotes itself only into the environments listed here:
# someone who may edit a pipeline must not be able to grant themselves
# promotions into production by setting auto.
deny contains sprintf(
	"auto-promotion into %s is not enabled by the policy (data.pipeline_auto_promote lists %s)",
	[env, concat(", ", data.pipeline_auto_promote)],
) if {
	input.action == "promotion.start"
	object.get(input, ["request", "auto"], false) == true
	not env in data.pipeline_auto_promote
}
