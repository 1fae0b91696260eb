package policy

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// TestCallerValuesKept: a caller seen before gets the very value it got,
// and each caller's value is its own, though the callers before it differ
// only where a key could run fields together (a name and a method, list
// items, a nil list and an empty one, the expiry).
func TestCallerValuesKept(t *testing.T) {
	exp := tuesday.Add(time.Hour)
	later := exp.Add(time.Nanosecond)
	callers := []modelplane.Principal{
		{Name: "ab", Method: "c"},
		{Name: "a", Method: "bc"},
		{Name: "a", Method: "bc", Teams: []string{}},
		{Name: "a", Method: "bc", Teams: []string{""}},
		{Name: "a", Method: "bc", Roles: []string{"x", "y"}},
		{Name: "a", Method: "bc", Roles: []string{"xy"}},
		{Name: "a", Method: "bc", Teams: []string{"x"}, Roles: []string{"y"}},
		{Name: "a", Method: "bc", Expires: &exp},
		{Name: "a", Method: "bc", Expires: &later},
	}
	for i, p := range callers {
		first := callerTerm(p)
		if again := callerTerm(p); again != first {
			t.Errorf("caller %d: asked twice, got a new value", i)
		}
		inputMatchesJSON(t, fmt.Sprintf("caller %d", i), Input{Caller: p})
	}
}

// TestAssetAndTargetValuesKept: the same for assets (their maps in any
// order, metrics JSON cannot carry, nil and empty maps) and targets.
func TestAssetAndTargetValuesKept(t *testing.T) {
	nan := math.NaN()
	assets := []Asset{
		{Kind: "model", Name: "ab", Owner: "c"},
		{Kind: "model", Name: "a", Owner: "bc"},
		{Kind: "model", Name: "a", Owner: "bc", Metrics: map[string]float64{}},
		{Kind: "model", Name: "a", Owner: "bc", Metrics: map[string]float64{"auc": nan}},
		{Kind: "model", Name: "a", Owner: "bc", Metrics: map[string]float64{"auc": 0.9, "f1": 0.8}},
		{Kind: "model", Name: "a", Owner: "bc", Metrics: map[string]float64{"auc": 0.9, "f1": 0.7}},
		{Kind: "model", Name: "a", Owner: "bc", Metrics: map[string]float64{"auc": 0.9, "f1": 0.8, "x": math.Inf(1)}},
		{Kind: "model", Name: "a", Owner: "bc", Lineage: map[string]string{"run_id": "r1"}},
		{Kind: "model", Name: "a", Owner: "bc", Lineage: map[string]string{"run_id": "r2"}},
		{Kind: "model", Name: "a", Owner: "bc", Version: "2", Team: "t", RiskTier: "high", DataDomain: "pii"},
	}
	for i, a := range assets {
		first := assetTerm(a)
		if again := assetTerm(a); again != first {
			t.Errorf("asset %d: asked twice, got a new value", i)
		}
		// Built afresh, as before the table (JSON has no NaN to compare with).
		if want := assetValue(a); first.Value.Compare(want) != 0 {
			t.Errorf("asset %d:\n got %v\nwant %v", i, first, want)
		}
	}
	for i, tg := range []*TargetInfo{{Name: "ab", Environment: "c"}, {Name: "a", Environment: "bc"}, {Name: "a", Environment: "bc", Provider: "sim"}} {
		if targetTerm(tg) != targetTerm(&TargetInfo{Name: tg.Name, Environment: tg.Environment, Provider: tg.Provider}) {
			t.Errorf("target %d: asked twice, got a new value", i)
		}
		inputMatchesJSON(t, fmt.Sprintf("target %d", i), Input{Target: tg})
	}
}

// inputMatchesJSON checks in's value against its JSON form, as
// TestInputValue does.
func inputMatchesJSON(t *testing.T, what string, in Input) {
	t.Helper()
	got, err := inputValue(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := jsonValue(t, in); got.Compare(want) != 0 {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}
