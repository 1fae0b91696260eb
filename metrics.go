package modelplane

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// MetricCheck is a named query judged by a condition, as teams write them for
// Argo Rollouts and Flagger: the same PromQL their dashboards use.
type MetricCheck struct {
	Name string `json:"name"`
	// Query is a PromQL template; {{.Model}}, {{.Version}}, {{.Target}} and
	// {{.Window}} (a Prometheus duration such as 30s) are substituted.
	Query string `json:"query"`
	// Condition is what a healthy result satisfies, e.g. "result < 0.01".
	Condition string `json:"condition"`
	// Count measurements per analysis, Interval apart (defaults 1 and 10s).
	Count    int      `json:"count,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	// Drift marks a check whose failure means the model drifted: a rollback
	// it causes also asks for retraining.
	Drift bool `json:"drift,omitempty"`
}

// QueryVars are the values substituted into a check's query.
type QueryVars struct {
	Model, Version, Target, Window string
}

// PromDuration renders d the way PromQL range selectors want it ("90s", "5m").
func PromDuration(d time.Duration) string {
	if d <= 0 {
		d = time.Minute
	}
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", (d+time.Second-1)/time.Second)
}

// Render substitutes vars into the query template.
func (c MetricCheck) Render(v QueryVars) (string, error) {
	t, err := template.New(c.Name).Option("missingkey=error").Parse(c.Query)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Condition is a parsed check condition: comparisons of "result" joined by && or ||.
type Condition struct {
	terms []condTerm
	or    bool
}

type condTerm struct {
	op    string
	bound float64
}

// ParseCondition reads "result < 0.99", "result >= 0.5 && result <= 2", "result == 0".
func ParseCondition(s string) (Condition, error) {
	var c Condition
	s = strings.TrimSpace(s)
	if s == "" {
		return c, fmt.Errorf("condition is empty")
	}
	sep := "&&"
	if strings.Contains(s, "||") {
		if strings.Contains(s, "&&") {
			return c, fmt.Errorf("mixing && and || is not supported")
		}
		sep, c.or = "||", true
	}
	for _, part := range strings.Split(s, sep) {
		f := strings.Fields(part)
		if len(f) != 3 || f[0] != "result" {
			return c, fmt.Errorf("want \"result <op> <number>\", got %q", strings.TrimSpace(part))
		}
		switch f[1] {
		case "<", "<=", ">", ">=", "==", "!=":
		default:
			return c, fmt.Errorf("unknown operator %q (use < <= > >= == !=)", f[1])
		}
		n, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return c, fmt.Errorf("%q is not a number", f[2])
		}
		c.terms = append(c.terms, condTerm{op: f[1], bound: n})
	}
	return c, nil
}

// Holds evaluates the condition for a result.
func (c Condition) Holds(result float64) bool {
	for _, t := range c.terms {
		var ok bool
		switch t.op {
		case "<":
			ok = result < t.bound
		case "<=":
			ok = result <= t.bound
		case ">":
			ok = result > t.bound
		case ">=":
			ok = result >= t.bound
		case "==":
			ok = result == t.bound
		case "!=":
			ok = result != t.bound
		}
		if c.or && ok {
			return true
		}
		if !c.or && !ok {
			return false
		}
	}
	return !c.or
}

// validateChecks checks names, templates and conditions, naming the field.
func validateChecks(prefix string, checks []MetricCheck) error {
	seen := map[string]bool{}
	for i, c := range checks {
		f := fmt.Sprintf("%schecks[%d].", prefix, i)
		if c.Name == "" {
			return FieldError(f+"name", "is required")
		}
		if seen[c.Name] {
			return FieldError(f+"name", "duplicate check %q", c.Name)
		}
		seen[c.Name] = true
		if strings.TrimSpace(c.Query) == "" {
			return FieldError(f+"query", "is required")
		}
		if _, err := c.Render(QueryVars{Model: "m", Version: "v", Target: "t", Window: "1m"}); err != nil {
			return FieldError(f+"query", "bad template: %v", err)
		}
		if _, err := ParseCondition(c.Condition); err != nil {
			return FieldError(f+"condition", "%v", err)
		}
		if c.Count < 0 || c.Count > 100 {
			return FieldError(f+"count", "must be between 0 and 100")
		}
		if c.Interval < 0 {
			return FieldError(f+"interval", "must not be negative")
		}
	}
	return nil
}

// EvaluateCheck judges one query result: empty is inconclusive, never a pass.
func EvaluateCheck(c MetricCheck, value float64, empty bool) (phase, message string) {
	if empty {
		return PhaseInconclusive, fmt.Sprintf("%s: query returned no data", c.Name)
	}
	cond, err := ParseCondition(c.Condition)
	if err != nil {
		return PhaseError, fmt.Sprintf("%s: %v", c.Name, err)
	}
	if cond.Holds(value) {
		return PhaseSuccessful, fmt.Sprintf("%s: %g satisfies %s", c.Name, value, c.Condition)
	}
	return PhaseFailed, fmt.Sprintf("%s: %g does not satisfy %s", c.Name, value, c.Condition)
}

// Worst combines measurement phases: failed > error > inconclusive > successful.
func Worst(phases ...string) string {
	rank := map[string]int{PhaseSuccessful: 0, PhaseInconclusive: 1, PhaseError: 2, PhaseFailed: 3}
	worst := PhaseSuccessful
	for _, p := range phases {
		if rank[p] > rank[worst] {
			worst = p
		}
	}
	return worst
}
