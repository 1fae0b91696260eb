package modelplane

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
