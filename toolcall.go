package modelplane

// AuditToolCall is the audit action of one tool call through the MCP
// gateway; its Decision is a ToolOutcome.
const AuditToolCall = "tool_call"

// AuditToolsWithdrawn is the audit action of the gateway hiding tools it
// served: their live definition left the approved contract, or the server
// was quarantined, rolled back or moved off the channel.
const AuditToolsWithdrawn = "tools_withdrawn"

// ToolOutcome is how the gateway ended a tool call.
type ToolOutcome string

const (
	ToolAllowed ToolOutcome = "allowed" // relayed to the upstream and answered
	ToolDenied  ToolOutcome = "denied"  // the policy refused it
	ToolBlocked ToolOutcome = "blocked" // a content check or a budget stopped it
	ToolFailed  ToolOutcome = "failed"  // allowed, but the upstream did not answer
)

// ToolOutcomes lists every outcome, for metrics labels and filters.
var ToolOutcomes = []ToolOutcome{ToolAllowed, ToolDenied, ToolBlocked, ToolFailed}
