package modelplane

// AuditAction names what an audit record records. The set is said once,
// here: the API, the workflows, the gateway, the lifecycle events and the
// console all use these constants, and the tests fail on any record whose
// action is not in AuditActions.
type AuditAction string

// Requests made through the API.
const (
	AuditModelCreated         AuditAction = "model_created"
	AuditVersionCreated       AuditAction = "version_created"
	AuditEvidenceUpdated      AuditAction = "evidence_updated"
	AuditTargetCreated        AuditAction = "target_created"
	AuditPromotionRequested   AuditAction = "promotion_requested"
	AuditDenied               AuditAction = "denied" // the policy refused a request (Details["attempted"] names it)
	AuditDriftReported        AuditAction = "drift_reported"
	AuditAlertFiring          AuditAction = "alert_firing"
	AuditAlertResolved        AuditAction = "alert_resolved"
	AuditMLflowWebhook        AuditAction = "mlflow_webhook"
	AuditMCPServerRegistered  AuditAction = "mcp_server_registered"
	AuditExported             AuditAction = "audit_exported"
	AuditApplied              AuditAction = "applied" // desired state written by apply
	AuditPipelineApplied      AuditAction = "pipeline_applied"
	AuditPipelineRunStarted   AuditAction = "pipeline_run_started"
	AuditPipelineStagePromote AuditAction = "pipeline_stage_promoted"
	AuditSimHealthSet         AuditAction = "sim_health_set"
	AuditSimTrafficSet        AuditAction = "sim_traffic_set"
	// The workflow refused an update sent through the API (a vote, a
	// rollback or a decision it could not take at that point).
	AuditApproveRefused  AuditAction = "approve_refused"
	AuditRollbackRefused AuditAction = "rollback_refused"
	AuditDecideRefused   AuditAction = "decide_refused"
)

// A promotion's lifecycle, recorded by its workflow.
const (
	AuditStage                AuditAction = "stage" // Decision: the new stage
	AuditValidated            AuditAction = "validated"
	AuditApprovalNotRequired  AuditAction = "approval_not_required"
	AuditVote                 AuditAction = "vote"
	AuditApproved             AuditAction = "approved"
	AuditApprovalDenied       AuditAction = "approval_denied"
	AuditApprovalEscalated    AuditAction = "approval_escalated"
	AuditEvidenceChanged      AuditAction = "evidence_changed"
	AuditPolicyDecision       AuditAction = "policy_decision"
	AuditTraffic              AuditAction = "traffic"
	AuditStrategyChanged      AuditAction = "strategy_changed"
	AuditNativeRolloutStarted AuditAction = "native_rollout_started"
	AuditShadowStarted        AuditAction = "shadow_started"
	AuditShadowStopped        AuditAction = "shadow_stopped"
	AuditAnalysis             AuditAction = "analysis"
	AuditDecision             AuditAction = "decision" // a person decided an inconclusive analysis
	AuditRollback             AuditAction = "rollback" // Decision: rolled_back | requested | failed …
	AuditRetrain              AuditAction = "retrain"
	AuditFinished             AuditAction = "finished"
	AuditSagaCompensated      AuditAction = "saga_compensated"
	AuditRetired              AuditAction = "retired"
	AuditGuardianHandoverFail AuditAction = "guardian_handover_failed"
	AuditRegistryMarked       AuditAction = "registry_marked"
	AuditRegistryMirrorFailed AuditAction = "registry_mirror_failed"
)

// MCP server promotions and the gateway.
const (
	AuditContractApproved         AuditAction = "contract_approved"
	AuditPublished                AuditAction = "published"
	AuditChannelMoved             AuditAction = "channel_moved"
	AuditMCPStatusFailed          AuditAction = "mcp_status_failed"
	AuditRevalidationScheduleFail AuditAction = "revalidation_schedule_failed"
	AuditMCPQuarantined           AuditAction = "mcp_quarantined"
	AuditToolCall                 AuditAction = "tool_call" // one tool call through the gateway; Decision: a ToolOutcome
	// AuditToolsWithdrawn: the gateway hid tools it served (their live
	// definition left the approved contract, or the server was quarantined,
	// rolled back or moved off the channel).
	AuditToolsWithdrawn AuditAction = "tools_withdrawn"
)

// The deployment guardian.
const (
	AuditGuardianWatching AuditAction = "guardian_watching"
	AuditRollbackDeferred AuditAction = "rollback_deferred"
	AuditDriftIgnored     AuditAction = "drift_ignored"
	AuditPlatformDrift    AuditAction = "platform_drift"   // Decision: the new SyncStatus (in_sync when a drift resolved)
	AuditDriftCorrection  AuditAction = "drift_correction" // Decision: one of the Correction* outcomes
)

// Pipelines.
const (
	AuditPipelineStage AuditAction = "pipeline_stage" // Decision: the stage's new StageStatus
	AuditPipelineGate  AuditAction = "pipeline_gate"  // Decision: held | passed | bypassed
	AuditWaveRollback  AuditAction = "wave_rollback"
	AuditFreeze        AuditAction = "freeze" // Decision: on | off
)

// AuditActions lists every action a record may carry.
var AuditActions = []AuditAction{
	AuditModelCreated, AuditVersionCreated, AuditEvidenceUpdated, AuditTargetCreated, AuditPromotionRequested, AuditDenied,
	AuditDriftReported, AuditAlertFiring, AuditAlertResolved, AuditMLflowWebhook, AuditMCPServerRegistered, AuditExported,
	AuditApplied, AuditPipelineApplied, AuditPipelineRunStarted, AuditPipelineStagePromote, AuditSimHealthSet, AuditSimTrafficSet,
	AuditApproveRefused, AuditRollbackRefused, AuditDecideRefused,
	AuditStage, AuditValidated, AuditApprovalNotRequired, AuditVote, AuditApproved, AuditApprovalDenied, AuditApprovalEscalated,
	AuditEvidenceChanged, AuditPolicyDecision, AuditTraffic, AuditStrategyChanged, AuditNativeRolloutStarted, AuditShadowStarted,
	AuditShadowStopped, AuditAnalysis, AuditDecision, AuditRollback, AuditRetrain, AuditFinished, AuditSagaCompensated,
	AuditRetired, AuditGuardianHandoverFail, AuditRegistryMarked, AuditRegistryMirrorFailed,
	AuditContractApproved, AuditPublished, AuditChannelMoved, AuditMCPStatusFailed, AuditRevalidationScheduleFail,
	AuditMCPQuarantined, AuditToolCall, AuditToolsWithdrawn,
	AuditGuardianWatching, AuditRollbackDeferred, AuditDriftIgnored, AuditPlatformDrift, AuditDriftCorrection,
	AuditPipelineStage, AuditPipelineGate, AuditWaveRollback, AuditFreeze,
}

// Known reports whether a is one of AuditActions.
func (a AuditAction) Known() bool {
	for _, k := range AuditActions {
		if a == k {
			return true
		}
	}
	return false
}
