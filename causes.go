package modelplane

// RollbackCause says why traffic went back to the stable version. It is
// said once, here: workflows record it, the metrics label by it, and the
// console words it, so a new cause cannot be counted as "other" unseen.
type RollbackCause string

// The rollback causes.
const (
	CauseAnalysis         RollbackCause = "analysis"          // an analysis step failed its thresholds
	CauseDrift            RollbackCause = "drift"             // a drift signal or a drift check
	CauseHealth           RollbackCause = "health"            // the guardian's health check after a promotion
	CauseManual           RollbackCause = "manual"            // a person, by request or by deciding an inconclusive analysis
	CauseDecisionTimeout  RollbackCause = "decision_timeout"  // nobody decided an inconclusive analysis in time
	CausePolicy           RollbackCause = "policy"            // the policy stopped a step
	CausePlatformRollback RollbackCause = "platform_rollback" // the serving platform's own rollout rolled back
	CausePlatformStuck    RollbackCause = "platform_stuck"    // the platform's rollout stopped making progress
	CauseProvider         RollbackCause = "provider"          // a call to the serving platform failed
)

// RollbackCauses lists every cause.
var RollbackCauses = []RollbackCause{CauseAnalysis, CauseDrift, CauseHealth, CauseManual, CauseDecisionTimeout,
	CausePolicy, CausePlatformRollback, CausePlatformStuck, CauseProvider}

// Known reports whether c is one of RollbackCauses.
func (c RollbackCause) Known() bool {
	for _, k := range RollbackCauses {
		if c == k {
			return true
		}
	}
	return false
}
