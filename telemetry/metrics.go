// Package telemetry gives modelplane's API, worker and activities their
// metrics (Prometheus), traces (OpenTelemetry) and logs (slog).
package telemetry

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

const namespace = "modelplane"

// Bucket layouts, in seconds.
var (
	// Approvals wait on people: minutes to a week.
	approvalBuckets = []float64{1, 10, 60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 2 * 24 * 3600, 7 * 24 * 3600}
	// Provider calls range from a quick describe to a blocking deploy.
	providerBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// Policy evaluation is in-process and should stay sub-millisecond.
	policyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	// HTTP: Prometheus' defaults fit an API that answers from a database.
	httpBuckets = prometheus.DefBuckets
)

// Rollback causes; anything else is counted as "other" so a typo or a
// free-text reason cannot mint new series.

// Metrics owns one process's Prometheus registry and modelplane's domain
// metrics in it. A private registry (not the global default) keeps tests and
// several components in one process from colliding.
type Metrics struct {
	Registry *prometheus.Registry

	transitions      *prometheus.CounterVec
	active           *stageGauge
	rollbacks        *prometheus.CounterVec
	platformDrift    *prometheus.CounterVec
	approvalWait     *prometheus.HistogramVec
	analysis         *prometheus.CounterVec
	providerDuration *prometheus.HistogramVec
	providerErrors   *prometheus.CounterVec
	policyDecisions  *prometheus.CounterVec
	policyDuration   *prometheus.HistogramVec
	httpDuration     *prometheus.HistogramVec

	temporalOnce    sync.Once
	temporalHandler client.MetricsHandler
}

// NewMetrics builds a registry holding the Go runtime and process collectors
// and every modelplane_ metric.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "promotion_transitions_total",
			Help: "Promotion stage transitions, by promotion kind, stage, resulting status and target.",
		}, []string{"kind", "stage", "status", "target"}),
		active: newStageGauge(prometheus.NewDesc(namespace+"_promotions_active",
			"Promotions currently in each stage, as last read from the store.", []string{"stage"}, nil)),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rollbacks_total",
			Help: "Rollbacks, by cause (analysis|drift|manual|provider|timeout|other) and target.",
		}, []string{"cause", "target"}),
		platformDrift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "platform_drift_total",
			Help: "Changes of what a platform serves against what modelplane applied, by new status (drifted|missing|in_sync) and target.",
		}, []string{"status", "target"}),
		approvalWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "approval_wait_seconds",
			Help:    "Time a promotion waited for its approvals, by target.",
			Buckets: approvalBuckets,
		}, []string{"target"}),
		analysis: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "analysis_results_total",
			Help: "Analysis check outcomes, by check name and phase.",
		}, []string{"check", "phase"}),
		providerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "provider_call_duration_seconds",
			Help:    "Latency of calls to serving providers, successful or not.",
			Buckets: providerBuckets,
		}, []string{"provider", "op"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "provider_call_errors_total",
			Help: "Failed provider calls, by coarse error class.",
		}, []string{"provider", "op", "code"}),
		policyDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "policy_decisions_total",
			Help: "Policy decisions, by action and decision (allow|deny).",
		}, []string{"action", "decision"}),
		policyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "policy_decision_duration_seconds",
			Help:    "Time to evaluate policy for an action.",
			Buckets: policyBuckets,
		}, []string{"action"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "API request latency, by method, route template and status code.",
			Buckets: httpBuckets,
		}, []string{"method", "route", "code"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.transitions, m.active, m.rollbacks, m.platformDrift, m.approvalWait, m.analysis,
		m.providerDuration, m.providerErrors, m.policyDecisions, m.policyDuration,
		m.httpDuration,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// PromotionTransition counts a promotion entering stage with status.
func (m *Metrics) PromotionTransition(kind, stage, status, target string) {
	m.transitions.WithLabelValues(kind, stage, status, target).Inc()
}

// SetPromotionsActive replaces the per-stage gauge wholesale, so a stage that
// emptied disappears instead of lingering at its last value.
func (m *Metrics) SetPromotionsActive(byStage map[string]int) {
	m.active.set(byStage)
}

// Rollback counts a rollback; cause is one of analysis, drift, manual,
// provider, timeout, anything else is recorded as "other".
func (m *Metrics) Rollback(cause modelplane.RollbackCause, target string) {
	if !cause.Known() {
		cause = "other" // never free text as a label value
	}
	m.rollbacks.WithLabelValues(string(cause), target).Inc()
}

// PlatformDrift counts a target's drift changing: drifted, missing or back
// in sync. Other values are counted as "other", never as new series.
func (m *Metrics) PlatformDrift(status modelplane.SyncStatus, target string) {
	switch status {
	case modelplane.InSync, modelplane.Drifted, modelplane.Missing:
	default:
		status = "other"
	}
	m.platformDrift.WithLabelValues(string(status), target).Inc()
}

// ApprovalWait records how long a promotion waited for approval.
func (m *Metrics) ApprovalWait(target string, d time.Duration) {
	m.approvalWait.WithLabelValues(target).Observe(d.Seconds())
}

// AnalysisResult counts one analysis check outcome (phase e.g. passed,
// failed, inconclusive).
func (m *Metrics) AnalysisResult(check, phase string) {
	m.analysis.WithLabelValues(check, phase).Inc()
}

// ProviderCall records one provider call; a non-nil err is also counted
// under its coarse class (see ErrorClass).
func (m *Metrics) ProviderCall(provider, op string, d time.Duration, err error) {
	m.providerDuration.WithLabelValues(provider, op).Observe(d.Seconds())
	if err != nil {
		m.providerErrors.WithLabelValues(provider, op, ErrorClass(err)).Inc()
	}
}

// Observe times f as a provider call and records it; f's results pass through.
func Observe[T any](m *Metrics, provider, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	m.ProviderCall(provider, op, time.Since(start), err)
	return v, err
}

// PolicyDecision records one policy evaluation and its verdict.
func (m *Metrics) PolicyDecision(action string, allow bool, d time.Duration) {
	decision := "deny"
	if allow {
		decision = "allow"
	}
	m.policyDecisions.WithLabelValues(action, decision).Inc()
	m.policyDuration.WithLabelValues(action).Observe(d.Seconds())
}

// stageGauge exposes a snapshot map as a gauge family. Swapping the map under
// a lock means a scrape never sees half an update, which Reset-then-Set on a
// GaugeVec could show.
type stageGauge struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	snap map[string]int
}

func newStageGauge(desc *prometheus.Desc) *stageGauge {
	return &stageGauge{desc: desc}
}

func (g *stageGauge) set(byStage map[string]int) {
	snap := make(map[string]int, len(byStage))
	for k, v := range byStage {
		snap[k] = v
	}
	g.mu.Lock()
	g.snap = snap
	g.mu.Unlock()
}

func (g *stageGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *stageGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	snap := g.snap
	g.mu.Unlock()
	stages := make([]string, 0, len(snap))
	for s := range snap {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, s := range stages {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(snap[s]), s)
	}
}
