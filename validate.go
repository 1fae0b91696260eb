package modelplane

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckName checks a short lowercase name (models, targets, channels).
func CheckName(field, v string) error { return checkName(field, v) }

func checkName(field, v string) error {
	if v == "" {
		return FieldError(field, "is required")
	}
	if !nameRE.MatchString(v) {
		return FieldError(field, "must be lowercase letters, digits, '.', '_' or '-' (max 63), got %q", v)
	}
	return nil
}

// Validate checks a model before it is stored.
func (m Model) Validate() error {
	if err := checkName("name", m.Name); err != nil {
		return err
	}
	if m.Owner == "" {
		return FieldError("owner", "is required")
	}
	if m.Team == "" {
		return FieldError("team", "is required")
	}
	if m.RiskTier == "" {
		return FieldError("risk_tier", "is required (low, medium, high or critical)")
	}
	if !m.RiskTier.Valid() {
		return FieldError("risk_tier", "must be low, medium, high or critical, got %q", m.RiskTier)
	}
	return nil
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$`)

// Validate checks a version before it is stored.
func (v Version) Validate() error {
	if v.Version == "" {
		return FieldError("version", "is required")
	}
	if !versionRE.MatchString(v.Version) {
		return FieldError("version", "must be letters, digits, '.', '_', '+' or '-' (max 63), got %q", v.Version)
	}
	if v.ArtifactURI == "" {
		return FieldError("artifact_uri", "is required")
	}
	return nil
}

var environments = map[string]bool{"dev": true, "staging": true, "production": true}

// Validate checks a target before it is stored.
func (t Target) Validate() error {
	if err := checkName("name", t.Name); err != nil {
		return err
	}
	if t.Provider == "" {
		return FieldError("provider", "is required")
	}
	if !environments[t.Environment] {
		return FieldError("environment", "must be dev, staging or production, got %q", t.Environment)
	}
	if t.MinApprovals < 0 || t.MinApprovals > 10 {
		return FieldError("min_approvals", "must be between 0 and 10")
	}
	if t.GuardInterval != 0 && t.GuardInterval.D() < time.Second {
		return FieldError("guard_interval", "must be at least 1s")
	}
	if err := t.Analysis.validate("analysis."); err != nil {
		return err
	}
	if err := t.Drift.Validate("drift."); err != nil {
		return err
	}
	if t.Prometheus != nil {
		if u := t.Prometheus.URL; !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return FieldError("prometheus.url", "must be an http(s) URL, got %q", u)
		}
		if t.Prometheus.Timeout < 0 {
			return FieldError("prometheus.timeout", "must not be negative")
		}
	}
	if len(t.Analysis.Checks) > 0 && t.Prometheus == nil {
		return FieldError("prometheus", "is required when analysis.checks are set")
	}
	for i, r := range t.AutoPromote {
		f := fmt.Sprintf("auto_promote[%d].", i)
		if strings.TrimSpace(r.MLflowModel) == "" {
			return FieldError(f+"mlflow_model", "is required")
		}
		if err := checkName(f+"model", r.Model); err != nil {
			return err
		}
		if _, err := r.Strategy.Normalize(); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Field != "" {
				return FieldError(f+e.Field, "%s", e.Message)
			}
			return err
		}
	}
	return nil
}

func (a Analysis) validate(prefix string) error {
	for name, p := range map[string]*float64{"max_error_rate": a.MaxErrorRate, "max_latency_p99_ms": a.MaxLatencyP99Ms, "max_drift": a.MaxDrift} {
		if p != nil && *p < 0 {
			return FieldError(prefix+name, "must not be negative")
		}
	}
	if a.MaxErrorRate != nil && *a.MaxErrorRate > 1 {
		return FieldError(prefix+"max_error_rate", "is a fraction between 0 and 1")
	}
	if a.FailureLimit != nil && *a.FailureLimit < -1 {
		return FieldError(prefix+"failure_limit", "must be -1 (disabled) or more")
	}
	if a.ConsecutiveErrorLimit != nil && *a.ConsecutiveErrorLimit < 0 {
		return FieldError(prefix+"consecutive_error_limit", "must not be negative")
	}
	if a.DecisionTimeout < 0 {
		return FieldError(prefix+"decision_timeout", "must not be negative")
	}
	return validateChecks(prefix, a.Checks)
}

// Strategy defaults, chosen to match what Argo Rollouts and Flagger users expect.
const (
	DefaultBake            = 30 * time.Second
	DefaultMonitorWindow   = 10 * time.Minute
	DefaultApprovalTimeout = 72 * time.Hour
	DefaultDecisionTimeout = time.Hour
	DefaultShadowPercent   = 10
	DefaultGuardInterval   = time.Minute
	DefaultRetrainCooldown = time.Hour
)

// DefaultCanarySteps is used when a canary names no steps.
var DefaultCanarySteps = []int{10, 25, 50, 100}

// Normalize fills defaults and checks the strategy, naming the bad field.
func (s RolloutStrategy) Normalize() (RolloutStrategy, error) {
	switch s.Type {
	case "":
		return s, FieldError("strategy.type", "is required (direct, canary, shadow or bluegreen)")
	case StrategyDirect, StrategyCanary, StrategyShadow, StrategyBlueGreen:
	default:
		return s, FieldError("strategy.type", "must be direct, canary, shadow or bluegreen, got %q", s.Type)
	}
	if s.Bake < 0 {
		return s, FieldError("strategy.bake", "must not be negative")
	}
	if s.Bake == 0 {
		s.Bake = Duration(DefaultBake)
	}
	if s.MonitorWindow < 0 {
		return s, FieldError("strategy.monitor_window", "must not be negative")
	}
	if s.MonitorWindow == 0 {
		s.MonitorWindow = Duration(DefaultMonitorWindow)
	}
	if s.Type == StrategyShadow {
		if s.ShadowPercent == 0 {
			s.ShadowPercent = DefaultShadowPercent
		}
		if s.ShadowPercent < 1 || s.ShadowPercent > 100 {
			return s, FieldError("strategy.shadow_percent", "must be between 1 and 100")
		}
		switch s.Then {
		case "":
			s.Then = StrategyCanary
		case StrategyCanary, StrategyDirect:
		default:
			return s, FieldError("strategy.then", "must be canary or direct, got %q", s.Then)
		}
	} else if s.Then != "" || s.ShadowPercent != 0 {
		field := "strategy.then"
		if s.ShadowPercent != 0 {
			field = "strategy.shadow_percent"
		}
		return s, FieldError(field, "only applies to the shadow strategy")
	}
	needsSteps := s.Type == StrategyCanary || (s.Type == StrategyShadow && s.Then == StrategyCanary)
	if !needsSteps && len(s.Steps) > 0 {
		return s, FieldError("strategy.steps", "only applies to canary rollouts")
	}
	if needsSteps {
		if len(s.Steps) == 0 {
			s.Steps = append([]int(nil), DefaultCanarySteps...)
		}
		prev := 0
		for i, w := range s.Steps {
			if w <= prev || w > 100 {
				return s, FieldError(fmt.Sprintf("strategy.steps[%d]", i), "weights must increase strictly within 1..100, got %d after %d", w, prev)
			}
			prev = w
		}
		if prev != 100 {
			return s, FieldError("strategy.steps", "must end at 100, got %d", prev)
		}
	}
	return s, nil
}

// NormalizeAnalysis checks per-promotion analysis and fills Argo's defaults.
func NormalizeAnalysis(a Analysis, targetDefaults Analysis) (Analysis, error) {
	if err := a.validate("analysis."); err != nil {
		return a, err
	}
	a = a.Merge(targetDefaults)
	if a.FailureLimit == nil {
		zero := 0
		a.FailureLimit = &zero
	}
	if a.ConsecutiveErrorLimit == nil {
		four := 4
		a.ConsecutiveErrorLimit = &four
	}
	if a.DecisionTimeout == 0 {
		a.DecisionTimeout = Duration(DefaultDecisionTimeout)
	}
	return a, nil
}

// RequiredApprovals is the quorum for a model on a target: the tier's base, raised by the target.
func RequiredApprovals(tier RiskTier, t Target) int {
	n := tier.BaseApprovals()
	if t.MinApprovals > n {
		n = t.MinApprovals
	}
	return n
}

// ValidateCandidate is the validation stage: pure, so the same evidence always gives the same report.
func ValidateCandidate(m Model, v Version, t Target, stable string, gates MetricBounds) ValidationReport {
	var r ValidationReport
	add := func(name string, ok bool, format string, args ...any) {
		r.Checks = append(r.Checks, Check{Name: name, Passed: ok, Detail: fmt.Sprintf(format, args...)})
	}
	add("owner_present", m.Owner != "", "owner=%q", m.Owner)
	add("risk_tier_present", m.RiskTier.Valid(), "risk_tier=%q", m.RiskTier)
	add("artifact_uri_set", v.ArtifactURI != "", "artifact_uri=%q", v.ArtifactURI)
	add("not_current_stable", v.Version != stable, "candidate %q, stable %q", v.Version, stable)

	check := func(kind string, bounds map[string]float64, ok func(val, bound float64) bool, op string) {
		names := make([]string, 0, len(bounds))
		for k := range bounds {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			bound := bounds[k]
			val, present := v.Metrics[k]
			name := fmt.Sprintf("metric_%s_%s", k, kind)
			if !present {
				add(name, false, "metric %q is required (%s %g) but missing", k, op, bound)
				continue
			}
			add(name, ok(val, bound), "%s=%g, want %s %g", k, val, op, bound)
		}
	}
	// Request gates override target gates metric by metric.
	mins, maxs := mergeBounds(t.Metrics.Min, gates.Min), mergeBounds(t.Metrics.Max, gates.Max)
	check("min", mins, func(val, b float64) bool { return val >= b }, ">=")
	check("max", maxs, func(val, b float64) bool { return val <= b }, "<=")

	r.Passed = len(r.Failed()) == 0
	return r
}

func mergeBounds(base, over map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// CheckConfigKeys refuses keys in t.Config that are neither the provider's
// (known) nor the ones every provider understands, so a typo in an optional
// key fails when the target is created instead of being silently ignored.
func (t Target) CheckConfigKeys(known ...string) error {
	ok := map[string]bool{ConfigRollout: true, ConfigRetrain: true}
	for _, k := range known {
		ok[k] = true
	}
	keys := make([]string, 0, len(t.Config))
	for k := range t.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ok[k] {
			all := make([]string, 0, len(ok))
			for k := range ok {
				all = append(all, k)
			}
			sort.Strings(all)
			return FieldError("config."+k, "unknown key for provider %s; known keys: %s", t.Provider, strings.Join(all, ", "))
		}
	}
	return nil
}
