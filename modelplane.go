package modelplane

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RiskTier classifies how much harm a model can do; it drives approvals.
type RiskTier string

const (
	RiskLow      RiskTier = "low"
	RiskMedium   RiskTier = "medium"
	RiskHigh     RiskTier = "high"
	RiskCritical RiskTier = "critical"
)

// Valid reports whether t is one of the known tiers.
func (t RiskTier) Valid() bool {
	switch t {
	case RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return true
	}
	return false
}

// BaseApprovals is the number of approvals a tier needs before a target raises it.
func (t RiskTier) BaseApprovals() int {
	switch t {
	case RiskMedium:
		return 1
	case RiskHigh, RiskCritical:
		return 2
	}
	return 0
}

// Duration is a time.Duration that reads and writes JSON as "30s", "10m".
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "30s" (or a number of seconds). Its errors are
// *json.UnmarshalTypeError so that encoding/json fills in the field's path.
func (d *Duration) UnmarshalJSON(b []byte) error {
	bad := func(v string) error {
		return &json.UnmarshalTypeError{Value: v, Type: reflect.TypeFor[Duration]()}
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		// Accept plain numbers as seconds: convenient for scripts.
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return bad(string(b))
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return bad(strconv.Quote(s))
	}
	*d = Duration(v)
	return nil
}

// Model is a named ML model owned by a team.
type Model struct {
	Name        string            `json:"name"`
	Owner       string            `json:"owner"`
	Team        string            `json:"team"`
	RiskTier    RiskTier          `json:"risk_tier"`
	Description string            `json:"description,omitempty"`
	DataDomain  string            `json:"data_domain,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// Lineage says where a version came from.
type Lineage struct {
	RunID   string `json:"run_id,omitempty"`
	Source  string `json:"source,omitempty"`
	RunLink string `json:"run_link,omitempty"`
	// Registry is the model registry the version was imported from ("mlflow"),
	// with its name and version there; the lifecycle is mirrored back to it.
	Registry        string `json:"registry,omitempty"`
	RegistryModel   string `json:"registry_model,omitempty"`
	RegistryVersion string `json:"registry_version,omitempty"`
}

// Version is one trained artifact of a model.
type Version struct {
	Model       string             `json:"model"`
	Version     string             `json:"version"`
	ArtifactURI string             `json:"artifact_uri"`
	Lineage     Lineage            `json:"lineage"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	CreatedBy   string             `json:"created_by"`
	CreatedAt   time.Time          `json:"created_at"`
}

// MetricBounds are offline-metric gates checked at validation: min {auc: 0.9}, max {...}.
type MetricBounds struct {
	Min map[string]float64 `json:"min,omitempty"`
	Max map[string]float64 `json:"max,omitempty"`
}

// Thresholds bound online health during analysis. Nil means "not checked".
type Thresholds struct {
	MaxErrorRate    *float64 `json:"max_error_rate,omitempty"`
	MaxLatencyP99Ms *float64 `json:"max_latency_p99_ms,omitempty"`
	MaxDrift        *float64 `json:"max_drift,omitempty"`
}

// Analysis configures how rollout steps are judged (Argo Rollouts semantics).
type Analysis struct {
	Thresholds
	// FailureLimit is how many failed measurements are tolerated; -1 disables failing.
	FailureLimit *int `json:"failure_limit,omitempty"`
	// ConsecutiveErrorLimit is how many provider errors in a row are tolerated.
	ConsecutiveErrorLimit *int `json:"consecutive_error_limit,omitempty"`
	// DecisionTimeout bounds the wait for a human after an inconclusive result; then rollback.
	DecisionTimeout Duration `json:"decision_timeout,omitempty"`
	// Checks are metric queries (Prometheus) judged alongside the provider's health.
	Checks []MetricCheck `json:"checks,omitempty"`
}

// Merge returns a copy of a with every unset field taken from d.
func (a Analysis) Merge(d Analysis) Analysis {
	if a.MaxErrorRate == nil {
		a.MaxErrorRate = d.MaxErrorRate
	}
	if a.MaxLatencyP99Ms == nil {
		a.MaxLatencyP99Ms = d.MaxLatencyP99Ms
	}
	if a.MaxDrift == nil {
		a.MaxDrift = d.MaxDrift
	}
	if a.FailureLimit == nil {
		a.FailureLimit = d.FailureLimit
	}
	if a.ConsecutiveErrorLimit == nil {
		a.ConsecutiveErrorLimit = d.ConsecutiveErrorLimit
	}
	if a.DecisionTimeout == 0 {
		a.DecisionTimeout = d.DecisionTimeout
	}
	if a.Checks == nil {
		a.Checks = d.Checks
	}
	return a
}

// Target is a place a model is served: a provider plus its configuration.
type Target struct {
	Name        string            `json:"name"`
	Provider    string            `json:"provider"`
	Environment string            `json:"environment"`
	Config      map[string]string `json:"config,omitempty"`
	// Analysis holds defaults for every promotion to this target.
	Analysis Analysis `json:"analysis"`
	// Metrics are validation gates applied to every version promoted here.
	Metrics MetricBounds `json:"metrics"`
	// MinApprovals raises (never lowers) the approvals required by risk tier.
	MinApprovals int `json:"min_approvals,omitempty"`
	// GuardInterval is how often the deployment guardian checks health after a promotion.
	GuardInterval Duration `json:"guard_interval,omitempty"`
	// Prometheus answers the analysis checks' queries.
	Prometheus *PrometheusConfig `json:"prometheus,omitempty"`
	// RetrainWebhook receives retrain requests; the HMAC secret is read from
	// the environment variable named by RetrainSecretEnv so it is never stored.
	RetrainWebhook   string   `json:"retrain_webhook,omitempty"`
	RetrainSecretEnv string   `json:"retrain_secret_env,omitempty"`
	RetrainCooldown  Duration `json:"retrain_cooldown,omitempty"`
	// AutoPromote starts promotions to this target when a model registry
	// announces new versions (MLflow webhooks, and a periodic reconciliation
	// that catches missed ones).
	AutoPromote []AutoPromote `json:"auto_promote,omitempty"`
	// Drift says what the deployment guardian does when the platform serves
	// something other than what modelplane applied (warn by default).
	Drift     DriftPolicy `json:"drift,omitzero"`
	CreatedAt time.Time   `json:"created_at"`
}

// AutoPromote is a rule: versions of an MLflow registered model become
// promotions of one of our models to the target.
type AutoPromote struct {
	MLflowModel string `json:"mlflow_model"`
	Model       string `json:"model"`
	// Alias, if set, promotes only versions given this alias in MLflow.
	Alias    string          `json:"alias,omitempty"`
	Strategy RolloutStrategy `json:"strategy"`
}

// Matches reports whether a registry event about mlflowModel (with alias,
// empty for a new version) falls under the rule.
func (r AutoPromote) Matches(mlflowModel, alias string) bool {
	return r.MLflowModel == mlflowModel && r.Alias == alias
}

// Target.Config keys every provider understands (the rest are the provider's own).
const (
	// ConfigRollout = RolloutNative lets the platform run canaries itself
	// (SageMaker blue/green with alarm rollback) instead of modelplane's steps.
	ConfigRollout = "rollout"
	RolloutNative = "native"
	RolloutSteps  = "steps"
	// ConfigRetrain = RetrainPipeline starts the platform's retraining
	// pipeline on drift (SageMaker Pipelines, Vertex AI PipelineJobs), besides
	// the retrain webhook.
	ConfigRetrain   = "retrain"
	RetrainPipeline = "pipeline"
)

// CheckCapabilities refuses target settings the platform cannot honour.
func (t Target) CheckCapabilities(c Capabilities) error {
	switch t.Config[ConfigRollout] {
	case "", RolloutSteps:
	case RolloutNative:
		if !c.Native {
			return FieldError("config.rollout", "provider %s cannot run rollouts natively; use %q", t.Provider, RolloutSteps)
		}
	default:
		return FieldError("config.rollout", "must be %q or %q, not %q", RolloutSteps, RolloutNative, t.Config[ConfigRollout])
	}
	switch t.Config[ConfigRetrain] {
	case "", "webhook":
	case RetrainPipeline:
		if !c.Pipelines {
			return FieldError("config.retrain", "provider %s has no retraining pipelines; use retrain_webhook", t.Provider)
		}
	default:
		return FieldError("config.retrain", "must be %q or %q, not %q", "webhook", RetrainPipeline, t.Config[ConfigRetrain])
	}
	return nil
}

// CheckStrategy refuses a rollout strategy the target's platform cannot run.
func (s RolloutStrategy) CheckStrategy(t Target, c Capabilities) error {
	if s.Type == StrategyShadow && !c.Shadow {
		return FieldError("strategy.type", "target %s (provider %s) has no shadow traffic: use canary or bluegreen", t.Name, t.Provider)
	}
	return nil
}

// PrometheusConfig says how to reach a Prometheus server. Secrets are named
// by environment variable and read when used, never stored.
type PrometheusConfig struct {
	URL            string   `json:"url"`
	BearerTokenEnv string   `json:"bearer_token_env,omitempty"`
	Username       string   `json:"username,omitempty"`
	PasswordEnv    string   `json:"password_env,omitempty"`
	Timeout        Duration `json:"timeout,omitempty"`
}

// Strategy names.
const (
	StrategyDirect    = "direct"
	StrategyCanary    = "canary"
	StrategyShadow    = "shadow"
	StrategyBlueGreen = "bluegreen"
)

// RolloutStrategy says how traffic moves to the candidate.
type RolloutStrategy struct {
	Type string `json:"type"`
	// Steps are canary weights in percent, ending at 100.
	Steps []int `json:"steps,omitempty"`
	// Bake is how long each step (or the shadow/bluegreen phase) runs before analysis.
	Bake Duration `json:"bake,omitempty"`
	// ShadowPercent is the share of requests mirrored to the candidate.
	ShadowPercent int `json:"shadow_percent,omitempty"`
	// Then is what follows a shadow phase: canary or direct.
	Then string `json:"then,omitempty"`
	// MonitorWindow is the watch after 100% before the promotion succeeds.
	MonitorWindow Duration `json:"monitor_window,omitempty"`
}

// Promotion stages and statuses.
const (
	StagePending          = "pending"
	StageRegistering      = "registering"
	StageValidating       = "validating"
	StageAwaitingApproval = "awaiting_approval"
	StageShadow           = "shadow"
	StageCanary           = "canary"
	StageBlueGreen        = "bluegreen"
	StageDirect           = "direct"
	StageAwaitingDecision = "awaiting_decision"
	StageMonitoring       = "monitoring"
	StageRollingBack      = "rolling_back"
	StageDone             = "done"

	StatusRunning          = "running"
	StatusSucceeded        = "succeeded"
	StatusFailedValidation = "failed_validation"
	StatusRejected         = "rejected"
	StatusExpired          = "expired"
	StatusRolledBack       = "rolled_back"
	StatusFailed           = "failed"
)

// Terminal reports whether a promotion status is final.
func Terminal(status string) bool { return status != "" && status != StatusRunning }

// Approval is one approver's vote.
type Approval struct {
	Approver string    `json:"approver"`
	Decision string    `json:"decision"` // approve | reject
	Comment  string    `json:"comment,omitempty"`
	Via      string    `json:"via"` // api | update | signal
	At       time.Time `json:"at"`
	// EvidenceHash is the evidence the approver saw; a vote counts only while
	// it matches the promotion's current evidence.
	EvidenceHash string `json:"evidence_hash,omitempty"`
	// Method is how the approver's identity was established (AuthOIDC, ...).
	Method string `json:"method,omitempty"`
	// PolicyDecision is the id of the decision that allowed the vote.
	PolicyDecision string `json:"policy_decision,omitempty"`
}

// Check is one line of a validation report.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// ValidationReport is the evidence approvers look at.
type ValidationReport struct {
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
	// Contract is the tool contract an MCP server's approval binds to (tool
	// name → fingerprint); EvidenceHash digests it.
	Contract     map[string]string `json:"contract,omitempty"`
	EvidenceHash string            `json:"evidence_hash,omitempty"`
}

// Failed lists the names of failed checks.
func (r ValidationReport) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c.Name)
		}
	}
	return out
}

// AnalysisResult is one measurement taken during a rollout.
type AnalysisResult struct {
	Step    string    `json:"step"`
	Check   string    `json:"check,omitempty"` // a metric check's name; empty for provider health
	Query   string    `json:"query,omitempty"`
	Value   *float64  `json:"value,omitempty"`
	Version string    `json:"version"`
	Phase   string    `json:"phase"` // successful | failed | inconclusive | error
	Health  Health    `json:"health"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at"`
}

// HistoryEntry is one stage change of a promotion.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	Stage  string    `json:"stage"`
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"`
}

// Promotion is one attempt to move a version onto a target.
type Promotion struct {
	ID string `json:"id"`
	// Kind is "" for a model version, KindMCPServer for an MCP server version
	// (then Model is the server's name and Target the channel).
	Kind            string          `json:"kind,omitempty"`
	WorkflowID      string          `json:"workflow_id"`
	Model           string          `json:"model"`
	Version         string          `json:"version"`
	Target          string          `json:"target"`
	Strategy        RolloutStrategy `json:"strategy"`
	Analysis        Analysis        `json:"analysis"`
	Metrics         MetricBounds    `json:"metrics"`
	ApprovalTimeout Duration        `json:"approval_timeout"`
	// EscalateAfter is when a missing quorum is escalated (default: half the approval timeout).
	EscalateAfter     Duration          `json:"escalate_after,omitempty"`
	RequestedBy       string            `json:"requested_by"`
	Stage             string            `json:"stage"`
	Status            string            `json:"status"`
	Reason            string            `json:"reason,omitempty"`
	StableVersion     string            `json:"stable_version,omitempty"`
	RequiredApprovals int               `json:"required_approvals"`
	Approvals         []Approval        `json:"approvals"`
	Validation        *ValidationReport `json:"validation,omitempty"`
	AnalysisResults   []AnalysisResult  `json:"analysis_results"`
	Traffic           TrafficSplit      `json:"traffic,omitempty"`
	History           []HistoryEntry    `json:"history"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	FinishedAt        *time.Time        `json:"finished_at,omitempty"`
}

// Deployment is what serves on a target for a model right now.
type Deployment struct {
	Model          string       `json:"model"`
	Target         string       `json:"target"`
	Stable         string       `json:"stable_version"`
	PreviousStable string       `json:"previous_stable_version,omitempty"`
	Candidate      string       `json:"candidate_version,omitempty"`
	Traffic        TrafficSplit `json:"traffic"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// AuditRecord is one attributable event. Key makes writes idempotent. Seq,
// PrevHash and Hash chain the records: each hash covers the record and the
// hash of the one before, so an edit, deletion or reordering shows.
type AuditRecord struct {
	Key         string         `json:"key"`
	Time        time.Time      `json:"time"`
	Actor       string         `json:"actor"`
	Action      AuditAction    `json:"action"`
	Subject     string         `json:"subject"`
	PromotionID string         `json:"promotion_id,omitempty"`
	Model       string         `json:"model,omitempty"`
	Target      string         `json:"target,omitempty"`
	Decision    string         `json:"decision,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
	// Version is the model (or MCP server) version the record concerns.
	Version string `json:"version,omitempty"`
	// Policy is the policy decision that allowed or denied the action.
	Policy *PolicyDecision `json:"policy,omitempty"`
	// EvidenceHash digests the evidence an approval was given on.
	EvidenceHash string `json:"evidence_hash,omitempty"`
	Seq          int64  `json:"seq,omitempty"`
	PrevHash     string `json:"prev_hash,omitempty"`
	Hash         string `json:"hash,omitempty"`
}

// TrafficSplit maps version → percent of live requests; a valid split sums to 100.
type TrafficSplit map[string]int

// Validate checks the split sums to 100 with no negative share.
func (s TrafficSplit) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("traffic split is empty")
	}
	sum := 0
	for v, p := range s {
		if v == "" {
			return fmt.Errorf("traffic split names an empty version")
		}
		if p < 0 || p > 100 {
			return fmt.Errorf("traffic for version %q is %d%%, want 0..100", v, p)
		}
		sum += p
	}
	if sum != 100 {
		return fmt.Errorf("traffic split sums to %d%%, want 100%%", sum)
	}
	return nil
}

// String renders the split deterministically, e.g. "v1=90,v2=10".
func (s TrafficSplit) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, s[k])
	}
	return strings.Join(parts, ",")
}

// DriftSignal reports that a served model drifted.
type DriftSignal struct {
	Model   string  `json:"model"`
	Target  string  `json:"target"`
	Version string  `json:"version,omitempty"`
	Metric  string  `json:"metric"`
	Score   float64 `json:"score"`
	Source  string  `json:"source"`
}

// Event is a lifecycle event for the outside world (sent as a CloudEvent).
// ID is stable across retries so consumers can deduplicate.
type Event struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Source  string         `json:"source"`
	Subject string         `json:"subject"`
	Time    time.Time      `json:"time"`
	Data    map[string]any `json:"data"`
}

// Lifecycle event types.
const (
	EventPromotionStarted   = "dev.modelplane.promotion.started"
	EventStageChanged       = "dev.modelplane.promotion.stage_changed"
	EventApproved           = "dev.modelplane.promotion.approved"
	EventApprovalEscalated  = "dev.modelplane.promotion.approval_escalated"
	EventPromotionFinished  = "dev.modelplane.promotion.finished"
	EventRolledBack         = "dev.modelplane.promotion.rolled_back"
	EventDeploymentRollback = "dev.modelplane.deployment.rolled_back"
	// EventMCPDrift is the drift signal of an MCP server whose live tools no
	// longer match its approved contract (it is quarantined).
	EventMCPDrift         = "dev.modelplane.mcp.drift"
	EventRetrainRequested = "dev.modelplane.retrain.requested"
	// EventPlatformDrifted: a target serves something other than what was
	// applied (or nothing); EventPlatformInSync: it serves what was applied again.
	EventPlatformDrifted   = "dev.modelplane.deployment.drifted"
	EventPlatformInSync    = "dev.modelplane.deployment.in_sync"
	EventPlatformCorrected = "dev.modelplane.deployment.drift_corrected"
)

// EventFor maps an audit record to the lifecycle event it announces, if any.
func EventFor(r AuditRecord) (Event, bool) {
	typ := ""
	switch {
	case r.Action == AuditStage && r.Decision == StageRegistering:
		typ = EventPromotionStarted
	case r.Action == AuditStage:
		typ = EventStageChanged
	case r.Action == AuditApproved:
		typ = EventApproved
	case r.Action == AuditApprovalEscalated:
		typ = EventApprovalEscalated
	case r.Action == AuditFinished:
		typ = EventPromotionFinished
	case r.Action == AuditRollback && r.Decision == "rolled_back" && r.PromotionID != "":
		typ = EventRolledBack
	case r.Action == AuditRollback && r.Decision == "rolled_back":
		typ = EventDeploymentRollback
	case r.Action == AuditRetrain && r.Decision == "requested":
		typ = EventRetrainRequested
	case r.Action == AuditMCPQuarantined:
		typ = EventMCPDrift
	case r.Action == AuditPlatformDrift && r.Decision == string(InSync):
		typ = EventPlatformInSync
	case r.Action == AuditPlatformDrift:
		typ = EventPlatformDrifted
	case r.Action == AuditDriftCorrection && r.Decision == CorrectionApplied:
		typ = EventPlatformCorrected
	default:
		return Event{}, false
	}
	data := map[string]any{"model": r.Model, "target": r.Target, "actor": r.Actor, "decision": r.Decision}
	if r.PromotionID != "" {
		data["promotion_id"] = r.PromotionID
	}
	for k, v := range r.Details {
		data[k] = v
	}
	return Event{ID: r.Key, Type: typ, Source: "modelplane/" + r.Target, Subject: r.Subject, Time: r.Time, Data: data}, true
}
