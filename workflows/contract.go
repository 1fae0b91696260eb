// Package workflows holds modelplane's deterministic Temporal workflows: the
// promotion lifecycle and the deployment guardian. No I/O happens here; every
// side effect is an activity.
package workflows

// This file is the workflows' contract: the names, ids and signal payloads
// the API, the Web UI and other workflows reach them by. steps.go holds the
// steps every workflow shares.

import "fmt"

// TaskQueue is where modelplane's worker listens.
const TaskQueue = "modelplane"

// Workflow type names (stable: renaming them breaks running workflows).
const (
	PromotionWorkflow = "Promotion"
	GuardianWorkflow  = "DeploymentGuardian"
)

// Signal, update and query names. The Web UI lists signals with their descriptions.
const (
	Approve  = "approve"
	Rollback = "rollback"
	Decide   = "decide"
	Drift    = "drift"
	Promoted = "promoted"
	Status   = "status"
)

// PromotionWorkflowID is the workflow id of a promotion.
func PromotionWorkflowID(id string) string { return "promotion/" + id }

// GuardianWorkflowID is the workflow id of the guardian of a model on a target.
func GuardianWorkflowID(model, target string) string {
	return fmt.Sprintf("deployment/%s/%s", model, target)
}

// Vote is an approval decision, from the API (update) or the Web UI (signal).
type Vote struct {
	Approver string `json:"approver"`
	Decision string `json:"decision"` // approve | reject
	Comment  string `json:"comment,omitempty"`
	// Via is set by the API ("api"); Web UI signals leave it empty.
	Via string `json:"via,omitempty"`
	// EvidenceHash is the evidence the approver reviewed (default: the current one).
	EvidenceHash string `json:"evidence_hash,omitempty"`
	// Who the approver is, as the API (or the Temporal frontend's
	// authorizer) established it; empty from an unauthenticated Web UI.
	Teams          []string `json:"teams,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	Method         string   `json:"method,omitempty"`
	PolicyDecision string   `json:"policy_decision,omitempty"`
}

// EvidenceChanged tells a promotion its version's evidence changed (new
// metrics, a new validation run): approvals given on the old evidence stop counting.
const EvidenceChanged = "evidence_changed"

// RollbackRequest asks to roll back a promotion or a deployment.
type RollbackRequest struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// Decision resolves an inconclusive analysis: promote or rollback.
type Decision struct {
	Actor    string `json:"actor"`
	Decision string `json:"decision"`
}
