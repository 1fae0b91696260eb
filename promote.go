package modelplane

import "context"

// PromotionRequest asks for a promotion of a model version to a target: the
// body of POST /v1/promotions, and what the MLflow importer and pipelines
// build.
type PromotionRequest struct {
	Model    string          `json:"model"`
	Version  string          `json:"version"`
	Target   string          `json:"target"`
	Strategy RolloutStrategy `json:"strategy"`
	Analysis Analysis        `json:"analysis"`
	Metrics  MetricBounds    `json:"metrics"`
	// ApprovalTimeout defaults to DefaultApprovalTimeout.
	ApprovalTimeout Duration `json:"approval_timeout"`
	// MLflow names the version in the MLflow Model Registry instead of
	// Version: it is imported, with its lineage, before the promotion starts.
	MLflow *MLflowRef `json:"mlflow,omitempty"`
}

// MLflowRef names an MLflow model version by number or by alias.
type MLflowRef struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Alias   string `json:"alias,omitempty"`
}

// MCPPromotionRequest promotes an MCP server version to a channel.
type MCPPromotionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Channel defaults to "prod".
	Channel string `json:"channel"`
	// MonitorWindow is how long a manual rollback stays one call away (default 10m).
	MonitorWindow   Duration `json:"monitor_window"`
	ApprovalTimeout Duration `json:"approval_timeout"`
}

// PromotionService is the one way a promotion comes to exist. The API (and
// the console, which speaks to it), the MLflow webhook and reconciliation,
// and pipelines all go through it: a request is resolved, prepared (checked
// and recorded once per idempotency key) and its workflow started. Who may
// ask is the caller's question: the service does not consult the policy.
type PromotionService interface {
	// Resolve fills in what a request names indirectly: an MLflow
	// reference is imported (once) and becomes Version.
	Resolve(ctx context.Context, r PromotionRequest) (PromotionRequest, error)
	// Prepare checks a request against the model, version, target and the
	// target's platform, normalizes it and records the promotion. created is
	// false when idempotencyKey replayed an earlier request.
	Prepare(ctx context.Context, r PromotionRequest, requestedBy, idempotencyKey string) (p Promotion, created bool, err error)
	// PrepareMCP does the same for publishing an MCP server version.
	PrepareMCP(ctx context.Context, r MCPPromotionRequest, requestedBy, idempotencyKey string) (p Promotion, created bool, err error)
	// AutoPromote imports an MLflow version announced with alias ("" for a
	// new version) and prepares a promotion for every target rule asking for
	// it, once per (version, target). It returns the promotions whose
	// workflow may still need starting, and why matching rules started nothing.
	AutoPromote(ctx context.Context, mlflowModel, version, alias string) (start []Promotion, skipped []string, err error)
	// Start starts a prepared promotion's workflow; starting it again is
	// harmless, and a failed start is recorded on the promotion.
	Start(ctx context.Context, p Promotion) error
}

// AutoPromoter is who auto-promotions are requested by: the MLflow webhook
// and the reconciliation share it, so their idempotency keys collide on purpose.
const AutoPromoter = "mlflow"

// Check fills in the channel's default and names the first bad field.
func (r *MCPPromotionRequest) Check() error {
	if r.Channel == "" {
		r.Channel = "prod"
	}
	if err := CheckName("channel", r.Channel); err != nil {
		return err
	}
	if r.MonitorWindow < 0 || r.ApprovalTimeout < 0 {
		return FieldError("monitor_window", "durations must not be negative")
	}
	return nil
}
