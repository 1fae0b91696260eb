package console

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

type navItem struct{ Key, Label, Path string }

var nav = []navItem{
	{"inbox", "Approvals", "/inbox"},
	{"promotions", "Promotions", "/promotions"},
	{"deployments", "Deployments", "/deployments"},
	{"models", "Models", "/models"},
	{"audit", "Audit", "/audit"},
	{"scorecard", "Scorecard", "/scorecard"},
	{"mcp", "MCP servers", "/mcp"},
}

// causes says each rollback cause the way an on-call engineer would.
var causes = map[modelplane.RollbackCause]string{
	modelplane.CauseAnalysis:         "the canary's analysis failed its thresholds",
	modelplane.CauseDrift:            "a drift signal reported the model drifting",
	modelplane.CauseHealth:           "a health check after the promotion failed",
	modelplane.CauseManual:           "a person rolled it back",
	modelplane.CauseDecisionTimeout:  "nobody decided an inconclusive analysis in time",
	modelplane.CausePolicy:           "the policy stopped the rollout",
	modelplane.CausePlatformRollback: "the serving platform rolled back on its own",
	modelplane.CausePlatformStuck:    "the serving platform's rollout stopped making progress",
	modelplane.CauseProvider:         "the serving platform reported an error",
}

var funcs = template.FuncMap{
	"navItems": func() []navItem { return nav },
	"join":     strings.Join,
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(t time.Time) string { return human(time.Since(t)) + " ago" },
	"left": func(t time.Time) string {
		d := time.Until(t)
		if d <= 0 {
			return "overdue by " + human(-d)
		}
		return human(d) + " left"
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"cause": func(c string) string {
		if s, ok := causes[modelplane.RollbackCause(c)]; ok {
			return s
		}
		return c
	},
	"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"num": func(f *float64) string {
		if f == nil {
			return "—"
		}
		return fmt.Sprintf("%.4g", *f)
	},
	"traffic": func(t modelplane.TrafficSplit) string {
		if len(t) == 0 {
			return "—"
		}
		return trafficString(t)
	},
	"detail": func(m map[string]any, k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	},
	"has":      func(p *modelplane.Principal, role string) bool { return p != nil && p.Has(role) },
	"terminal": modelplane.Terminal,
	"driftArgs": func(csrf, model, target, version, back string) map[string]string {
		return map[string]string{"CSRF": csrf, "Model": model, "Target": target, "Version": version, "Back": back, "ID": model + "-" + target}
	},
	"firstTeam": func(p *modelplane.Principal) string {
		if p == nil || len(p.Teams) == 0 {
			return ""
		}
		return p.Teams[0]
	},
	"add": func(a, b int) int { return a + b },
	"pct": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
	"strategies": func() []string {
		return []string{modelplane.StrategyCanary, modelplane.StrategyShadow, modelplane.StrategyBlueGreen, modelplane.StrategyDirect}
	},
}

func trafficString(t modelplane.TrafficSplit) string {
	vs := make([]string, 0, len(t))
	for v := range t {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s %d%%", v, t[v])
	}
	return strings.Join(parts, " · ")
}

// human says a duration the short way: 3d 4h, 2h 5m, 40s.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(math.Mod(d.Minutes(), 60)))
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(math.Mod(d.Seconds(), 60)))
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
