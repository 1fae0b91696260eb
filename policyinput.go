package modelplane

// PolicyPromotion is the promotion a policy decision concerns, as the policy
// reads it (input.promotion). It lives here, not in policy, so the workflows
// can describe a promotion to the policy without importing the engine.
type PolicyPromotion struct {
	ID           string           `json:"id"`
	RequestedBy  string           `json:"requested_by"`
	Stage        string           `json:"stage"`
	EvidenceHash string           `json:"evidence_hash"`
	Approvals    []PolicyApproval `json:"approvals,omitempty"`
	// Override is set once a promotion.override decision allowed an exception.
	Override bool `json:"override"`
}

// PolicyApproval is one vote already cast, as the policy reads it.
type PolicyApproval struct {
	Approver     string `json:"approver"`
	Decision     string `json:"decision"`
	EvidenceHash string `json:"evidence_hash"`
}
