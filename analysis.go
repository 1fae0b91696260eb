package modelplane

import (
	"fmt"
	"strings"
)

// Measurement and run phases, as in Argo Rollouts.
const (
	PhaseSuccessful   = "successful"
	PhaseFailed       = "failed"
	PhaseInconclusive = "inconclusive"
	PhaseError        = "error"
	PhaseRunning      = "running"
)

// Evaluate judges one health measurement against thresholds.
// No data is inconclusive: silence is never taken as health.
func Evaluate(h Health, th Thresholds) (phase, message string) {
	if h.NoData {
		return PhaseInconclusive, fmt.Sprintf("no data for version %s", h.Version)
	}
	var bad []string
	if th.MaxErrorRate != nil && h.ErrorRate > *th.MaxErrorRate {
		bad = append(bad, fmt.Sprintf("error_rate %.4g > %.4g", h.ErrorRate, *th.MaxErrorRate))
	}
	if th.MaxLatencyP99Ms != nil && h.LatencyP99Ms > *th.MaxLatencyP99Ms {
		bad = append(bad, fmt.Sprintf("latency_p99_ms %.4g > %.4g", h.LatencyP99Ms, *th.MaxLatencyP99Ms))
	}
	if th.MaxDrift != nil && h.Drift > *th.MaxDrift {
		bad = append(bad, fmt.Sprintf("drift %.4g > %.4g", h.Drift, *th.MaxDrift))
	}
	if len(bad) > 0 {
		return PhaseFailed, strings.Join(bad, "; ")
	}
	return PhaseSuccessful, "within thresholds"
}

// AnalysisRun accumulates measurements for one rollout with Argo semantics:
// the run fails when failures exceed FailureLimit (-1 never fails) or when
// errors in a row exceed ConsecutiveErrorLimit; an inconclusive measurement
// makes the run inconclusive (a human decides). It is plain data so that a
// workflow can keep it in its state deterministically.
type AnalysisRun struct {
	FailureLimit          int `json:"failure_limit"`
	ConsecutiveErrorLimit int `json:"consecutive_error_limit"`
	Failures              int `json:"failures"`
	ConsecutiveErrors     int `json:"consecutive_errors"`
}

// NewAnalysisRun starts a run from normalized analysis settings.
func NewAnalysisRun(a Analysis) AnalysisRun {
	r := AnalysisRun{FailureLimit: 0, ConsecutiveErrorLimit: 4}
	if a.FailureLimit != nil {
		r.FailureLimit = *a.FailureLimit
	}
	if a.ConsecutiveErrorLimit != nil {
		r.ConsecutiveErrorLimit = *a.ConsecutiveErrorLimit
	}
	return r
}

// Add records a measurement phase and returns the run's phase after it:
// PhaseRunning (carry on), PhaseFailed or PhaseInconclusive.
func (r *AnalysisRun) Add(phase string) string {
	switch phase {
	case PhaseError:
		r.ConsecutiveErrors++
		if r.ConsecutiveErrors > r.ConsecutiveErrorLimit {
			return PhaseFailed
		}
		return PhaseRunning
	case PhaseFailed:
		r.ConsecutiveErrors = 0
		r.Failures++
		if r.FailureLimit >= 0 && r.Failures > r.FailureLimit {
			return PhaseFailed
		}
		return PhaseRunning
	case PhaseInconclusive:
		r.ConsecutiveErrors = 0
		return PhaseInconclusive
	default:
		r.ConsecutiveErrors = 0
		return PhaseRunning
	}
}
