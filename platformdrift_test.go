package modelplane_test

import (
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func TestCompareServed(t *testing.T) {
	applied := modelplane.Deployment{Model: "churn", Target: "prod", Stable: "2", Traffic: modelplane.TrafficSplit{"2": 100}}
	cases := []struct {
		name   string
		actual modelplane.EndpointState
		ignore []string
		status modelplane.SyncStatus
		diffs  string
	}{
		{"same, with a warm previous version", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"2": 100}, Versions: []string{"1", "2"}}, nil, modelplane.InSync, ""},
		{"split by hand", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"2": 70, "1": 30}, Versions: []string{"1", "2"}}, nil, modelplane.Drifted,
			"traffic.1: 0% → 30%; traffic.2: 100% → 70%"},
		{"one weight ignored", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"2": 70, "1": 30}, Versions: []string{"1", "2"}}, []string{"traffic.1"}, modelplane.Drifted,
			"traffic.2: 100% → 70%"},
		{"all weights ignored", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"1": 100}, Versions: []string{"1", "2"}}, []string{"traffic"}, modelplane.InSync, ""},
		{"a mirror nobody applied", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"2": 100}, Versions: []string{"1", "2"}, Shadow: &modelplane.Shadow{Version: "1", Percent: 10}}, nil, modelplane.Drifted,
			"shadow: none → 1 at 10%"},
		{"the mirror ignored", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"2": 100}, Versions: []string{"1", "2"}, Shadow: &modelplane.Shadow{Version: "1", Percent: 10}}, []string{"shadow"}, modelplane.InSync, ""},
		{"nothing serves", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}, Versions: []string{"1", "2"}}, nil, modelplane.Missing,
			"endpoint: 2=100 → absent"},
		{"the serving version undeployed", modelplane.EndpointState{Traffic: modelplane.TrafficSplit{"1": 100}, Versions: []string{"1"}}, nil, modelplane.Drifted,
			"traffic.1: 0% → 100%; traffic.2: 100% → 0%; versions.2: deployed → absent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, diffs := modelplane.CompareServed(applied, c.actual, modelplane.DriftPolicy{Ignore: c.ignore})
			var got []string
			for _, d := range diffs {
				got = append(got, d.String())
			}
			if status != c.status || strings.Join(got, "; ") != c.diffs {
				t.Fatalf("got %s %q, want %s %q", status, strings.Join(got, "; "), c.status, c.diffs)
			}
		})
	}
}

func TestDriftPolicyNamesTheBadField(t *testing.T) {
	for p, want := range map[*modelplane.DriftPolicy]string{
		{Mode: "fix"}:                            "drift.mode",
		{Ignore: []string{"traffic", "weights"}}: "drift.ignore[1]",
		{Ignore: []string{"shadow.1"}}:           "drift.ignore[0]",
		{Ignore: []string{"traffic."}}:           "drift.ignore[0]",
	} {
		err := p.Validate("drift.")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want an error naming %s", *p, err, want)
		}
	}
	ok := modelplane.DriftPolicy{Mode: modelplane.DriftCorrect, Ignore: []string{"traffic.1", "versions", "shadow"}}
	if err := ok.Validate("drift."); err != nil {
		t.Fatal(err)
	}
	if (modelplane.DriftPolicy{}).EffectiveMode() != modelplane.DriftWarn {
		t.Fatal("the default mode is not warn")
	}
}
