package modelplane_test

import (
	"errors"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

func TestParseCondition(t *testing.T) {
	cases := []struct {
		cond string
		in   float64
		want bool
	}{
		{"result < 0.99", 0.5, true},
		{"result < 0.99", 0.99, false},
		{"result >= 0.5 && result <= 2", 1, true},
		{"result >= 0.5 && result <= 2", 3, false},
		{"result < 0.1 || result > 0.9", 0.95, true},
		{"result < 0.1 || result > 0.9", 0.5, false},
		{"result == 0", 0, true},
		{"result != 0", 0, false},
	}
	for _, c := range cases {
		cond, err := modelplane.ParseCondition(c.cond)
		if err != nil {
			t.Fatalf("%q: %v", c.cond, err)
		}
		if got := cond.Holds(c.in); got != c.want {
			t.Errorf("%q with %g = %v, want %v", c.cond, c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "x < 1", "result <", "result ~ 1", "result < one", "result < 1 && result > 0 || result == 3"} {
		if _, err := modelplane.ParseCondition(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestQueryTemplate(t *testing.T) {
	c := modelplane.MetricCheck{Name: "e", Query: `sum(rate(x{model="{{.Model}}",version="{{.Version}}",target="{{.Target}}"}[{{.Window}}]))`}
	q, err := c.Render(modelplane.QueryVars{Model: "churn", Version: "2", Target: "prod", Window: modelplane.PromDuration(90 * time.Second)})
	if err != nil || q != `sum(rate(x{model="churn",version="2",target="prod"}[90s]))` {
		t.Fatalf("rendered %q, %v", q, err)
	}
	if modelplane.PromDuration(5*time.Minute) != "5m" || modelplane.PromDuration(1500*time.Millisecond) != "2s" {
		t.Fatal("PromDuration")
	}
	if _, err := (modelplane.MetricCheck{Name: "x", Query: "{{.Nope}}"}).Render(modelplane.QueryVars{}); err == nil {
		t.Fatal("unknown variable accepted")
	}
}

func TestChecksValidationNamesTheField(t *testing.T) {
	base := modelplane.MetricCheck{Name: "a", Query: "up", Condition: "result > 0"}
	cases := map[string][]modelplane.MetricCheck{
		"analysis.checks[0].name":      {{Query: "up", Condition: "result > 0"}},
		"analysis.checks[1].name":      {base, base},
		"analysis.checks[0].query":     {{Name: "a", Query: "{{.Model", Condition: "result > 0"}},
		"analysis.checks[0].condition": {{Name: "a", Query: "up", Condition: "result >> 0"}},
		"analysis.checks[0].count":     {{Name: "a", Query: "up", Condition: "result > 0", Count: -1}},
	}
	for field, checks := range cases {
		_, err := modelplane.NormalizeAnalysis(modelplane.Analysis{Checks: checks}, modelplane.Analysis{})
		var e *modelplane.Error
		if !errors.As(err, &e) || e.Field != field {
			t.Errorf("want field %s, got %v", field, err)
		}
	}
}

func TestEvaluateCheckAndWorst(t *testing.T) {
	c := modelplane.MetricCheck{Name: "err", Condition: "result < 0.05"}
	if p, _ := modelplane.EvaluateCheck(c, 0.01, false); p != modelplane.PhaseSuccessful {
		t.Fatal(p)
	}
	if p, _ := modelplane.EvaluateCheck(c, 0.2, false); p != modelplane.PhaseFailed {
		t.Fatal(p)
	}
	if p, _ := modelplane.EvaluateCheck(c, 0, true); p != modelplane.PhaseInconclusive {
		t.Fatalf("empty = %s, want inconclusive (never a pass)", p)
	}
	if w := modelplane.Worst("successful", "inconclusive", "error"); w != "error" {
		t.Fatal(w)
	}
	if w := modelplane.Worst("error", "failed", "successful"); w != "failed" {
		t.Fatal(w)
	}
}
