package kserve

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func TestCapabilities(t *testing.T) {
	if got := modelplane.CapabilitiesOf(New(Options{})); got != (modelplane.Capabilities{}) {
		t.Fatalf("capabilities = %+v, want none (no shadow, native rollout or pipelines)", got)
	}
}

func TestPlanTraffic(t *testing.T) {
	known := map[string]string{"v1": "u1", "v2": "u2", "v3": "u3"}
	none := observed{name: "m", namespace: "ns"}
	stable := observed{exists: true, stable: "v1"}
	canary := observed{exists: true, stable: "v1", candidate: "v2", canary: pct(10)}
	failedCanary := canary
	failedCanary.generation, failedCanary.observedGen = 3, 3
	failedCanary.ready = condition{status: "False", reason: "RevisionFailed"}
	show := func(d desired) string {
		c := "-"
		if d.canary != nil {
			c = string(rune('0' + *d.canary/10))
		}
		return d.spec + "/" + d.stable + "/" + c
	}
	for name, tc := range map[string]struct {
		cur   observed
		split modelplane.TrafficSplit
		want  string
	}{
		"first deployment":         {none, modelplane.TrafficSplit{"v1": 100}, "v1/v1/-"},
		"canary":                   {stable, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "v2/v1/1"},
		"canary with zero entries": {stable, modelplane.TrafficSplit{"v1": 50, "v2": 50, "v3": 0}, "v2/v1/5"},
		"promote":                  {canary, modelplane.TrafficSplit{"v2": 100}, "v2/v2/-"},
		"promote with zero stable": {canary, modelplane.TrafficSplit{"v1": 0, "v2": 100}, "v2/v2/-"},
		"rollback pins":            {canary, modelplane.TrafficSplit{"v1": 100}, "v2/v1/0"},
		"rollback of failed":       {failedCanary, modelplane.TrafficSplit{"v1": 100}, "v1/v1/-"},
		"direct":                   {stable, modelplane.TrafficSplit{"v3": 100}, "v3/v3/-"},
		"stable again":             {stable, modelplane.TrafficSplit{"v1": 100}, "v1/v1/-"},
	} {
		d, err := planTraffic(tc.cur, tc.split, known)
		if err != nil || show(d) != tc.want {
			t.Errorf("%s: plan = %s, %v; want %s", name, show(d), err, tc.want)
		}
	}
	for name, tc := range map[string]struct {
		cur   observed
		split modelplane.TrafficSplit
	}{
		"split first":    {none, modelplane.TrafficSplit{"v1": 50, "v2": 50}},
		"no stable":      {stable, modelplane.TrafficSplit{"v2": 50, "v3": 50}},
		"three":          {stable, modelplane.TrafficSplit{"v1": 40, "v2": 30, "v3": 30}},
		"unknown":        {stable, modelplane.TrafficSplit{"v1": 50, "v9": 50}},
		"unknown zero":   {stable, modelplane.TrafficSplit{"v1": 100, "v9": 0}},
		"sum":            {stable, modelplane.TrafficSplit{"v1": 50}},
		"negative share": {stable, modelplane.TrafficSplit{"v1": 110, "v2": -10}},
	} {
		if _, err := planTraffic(tc.cur, tc.split, known); !errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	base := map[string]string{KeyNamespace: "ml", KeyModelFormat: "sklearn"}
	for key, bad := range map[string]string{
		KeyNamespace:      "",
		KeyModelFormat:    "",
		KeyName:           "Not_DNS",
		KeyRuntime:        "Bad Runtime",
		KeyServiceAccount: "a/b",
		KeyErrorRateQuery: "{{.Nope",
	} {
		cfg := map[string]string{}
		for k, v := range base {
			cfg[k] = v
		}
		cfg[key] = bad
		_, err := parseConfig(modelplane.Target{Config: cfg}, "m")
		if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "config."+key) {
			t.Errorf("%s=%q: err = %v, want ErrInvalid naming config.%s", key, bad, err, key)
		}
	}
	c, err := parseConfig(modelplane.Target{Config: base}, "fraud")
	if err != nil || c.name != "fraud" {
		t.Fatalf("valid config: %+v, %v", c, err)
	}
}

func TestDerivedNamesAreDNSLabelsAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, m := range []string{"fraud", "Fraud_Model", "fraud-model", "9lives", strings.Repeat("x", 80), strings.Repeat("x", 81)} {
		n := deriveName(m)
		if len(n) > maxName || !dns1035Label.MatchString(n) {
			t.Errorf("deriveName(%q) = %q: not a DNS-1035 label of <= %d", m, n, maxName)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("deriveName(%q) = deriveName(%q) = %q", m, o, n)
		}
		seen[n] = m
	}
}

func TestPollStatus(t *testing.T) {
	at := func(obs int64, status, reason string) observed {
		return observed{exists: true, name: "m", namespace: "ns", generation: 5, observedGen: obs,
			ready: condition{status: status, reason: reason, message: "boom"}}
	}
	for name, tc := range map[string]struct {
		o            observed
		done, failed bool
	}{
		"older generation ready":  {at(3, "True", ""), false, false},
		"older generation failed": {at(3, "False", "RevisionFailed"), false, false},
		"observed, starting":      {at(4, "Unknown", "Deploying"), false, false},
		"observed, progressing":   {at(4, "False", "RevisionMissing"), false, false},
		"ready":                   {at(4, "True", ""), true, false},
		"failed":                  {at(4, "False", "RevisionFailed"), true, true},
	} {
		st := pollStatus(tc.o, 4)
		if st.Done != tc.done || st.Failed != tc.failed || (tc.failed && !strings.Contains(st.Reason, "boom")) {
			t.Errorf("%s: %+v, want done=%v failed=%v", name, st, tc.done, tc.failed)
		}
	}
}
