package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modelplane/modelplane/config"
	"sigs.k8s.io/yaml"
)

// Environment variables the binary reads outside the config package's keys:
// secrets (never in the file), aliases, and the config file's own path.
var extraEnv = []string{
	"MODELPLANE_CONFIG",           // path of the config file
	"MODELPLANE_TOKENS",           // static API tokens (secret)
	"MODELPLANE_TEMPORAL_API_KEY", // Temporal Cloud API key (secret)
	// `modelplane temporal`: the Web UI's OIDC client secret and the
	// plaintext service keys (secrets).
	"MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET",
	"MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS",
	"MODELPLANE_NAMESPACE",   // alias of MODELPLANE_TEMPORAL_NAMESPACE
	"MODELPLANE_TOKENS_FILE", // alias of MODELPLANE_API_TOKENS_FILE
}

var mpEnv = regexp.MustCompile(`^MODELPLANE_[A-Z0-9_]+$`)

// unknownEnv names the MODELPLANE_* variables the binary would ignore: a
// misspelled one silently leaves a setting at its default.
func unknownEnv(names []string) []string {
	known := slices.Clone(extraEnv)
	for _, k := range config.Keys() {
		known = append(known, k.Env)
	}
	var problems []string
	for _, n := range names {
		if mpEnv.MatchString(n) && !slices.Contains(known, n) {
			problems = append(problems, fmt.Sprintf("%s is not a configuration variable (see `modelplane config keys`)", n))
		}
	}
	return problems
}

// TestConfigMatchesBinary checks the deployment artifacts against the
// binary's configuration: the chart's config file loads with config.Load
// (unknown keys are errors there), and every MODELPLANE_* variable set by
// compose or the chart is one the binary reads.
func TestConfigMatchesBinary(t *testing.T) {
	// Compose.
	js, err := interpolateCompose(read(t, "docker-compose.yml"), envExample(t))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	var composeVars []string
	for _, s := range c.Services {
		for k := range envMap(s.Environment) {
			composeVars = append(composeVars, k)
		}
	}
	expectNone(t, "docker-compose.yml", unknownEnv(composeVars))
	t.Run("negative/misspelled variable", func(t *testing.T) {
		expectProblem(t, unknownEnv(append(composeVars, "MODELPLANE_TEMPORAL_ADRESS")), "MODELPLANE_TEMPORAL_ADRESS")
	})

	// The chart (needs helm).
	helm := tool(t, "helm")
	load := func(t *testing.T, text string) (problems []string) {
		cs, decodeProblems := decodeChart(text)
		problems = append(problems, decodeProblems...)
		cm := cs.configMaps[fullname+"-config"]
		if cm == nil {
			return append(problems, "no config ConfigMap")
		}
		path := writeTemp(t, "config.yaml", []byte(cm.Data["config.yaml"]))
		for _, d := range cs.deployments {
			env := map[string]string{}
			var names []string
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				names = append(names, e.Name)
				env[e.Name] = e.Value
				if e.ValueFrom != nil {
					env[e.Name] = "from-secret" // a placeholder the loader accepts
				}
			}
			env["MODELPLANE_DB"] = "postgres://u:p@db:5432/modelplane"
			problems = append(problems, unknownEnv(names)...)
			if _, err := config.Load(path, func(k string) string { return env[k] }); err != nil {
				problems = append(problems, fmt.Sprintf("%s: config.Load: %v", d.Name, err))
			}
		}
		return problems
	}
	for name, args := range valueSets {
		t.Run("chart/"+name, func(t *testing.T) {
			text, err := helmTemplate(t, helm, chartDir, args...)
			if err != nil {
				t.Fatal(text)
			}
			expectNone(t, "chart config ("+name+")", load(t, text))
		})
	}
	t.Run("negative/unknown config key", func(t *testing.T) {
		text, err := helmTemplate(t, helm, chartDir, "--set", "extraConfig.worker.task_queu=x")
		if err != nil {
			t.Fatal(text)
		}
		expectProblem(t, load(t, text), "task_queu")
	})
	t.Run("negative/bad config value", func(t *testing.T) {
		text, err := helmTemplate(t, helm, chartDir, "--set", "worker.stopTimeout=30 seconds")
		if err == nil {
			// values.schema.json should have refused it already; config.Load must.
			expectProblem(t, load(t, text), "stop_timeout")
		} else if !strings.Contains(text, "stopTimeout") {
			t.Errorf("refused for another reason: %s", firstLine(text))
		}
	})
}
