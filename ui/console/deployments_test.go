package console

import (
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
)

// A drifted deployment shows the status, when it was first seen and each
// field the platform serves differently.
func TestDeploymentPageShowsPlatformDrift(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 12, 7, 10, 4, 5, 0, time.UTC)
	g := &api.GuardianStatus{Running: true, Stable: "2", Platform: &modelplane.PlatformSync{Status: modelplane.Drifted, FirstSeen: &first, CheckedAt: first.Add(time.Minute),
		Diffs: []modelplane.FieldDiff{{Field: "traffic.1", Applied: "0%", Actual: "30%"}, {Field: "traffic.2", Applied: "100%", Actual: "70%"}}}}
	v := &view{Title: "churn on prod", Data: []deploymentView{{D: modelplane.Deployment{Model: "churn", Target: "prod", Stable: "2", Traffic: modelplane.TrafficSplit{"2": 100}}, Guardian: g, Detail: true}}}
	var b strings.Builder
	if err := pages["deployments"].ExecuteTemplate(&b, "layout", v); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`<span class="badge drifted">drifted</span>`, `since <time datetime="2026-12-07T10:04:05Z">2026-12-07 10:04:05Z</time>`,
		`<code>traffic.1</code>: applied 0%, serving 30%`, `<code>traffic.2</code>: applied 100%, serving 70%`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
