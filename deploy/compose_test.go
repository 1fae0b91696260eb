package deploy_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane/internal/proc"
	"sigs.k8s.io/yaml"
)

// envExample is what deploy/README.md tells people to copy to .env: every
// required variable must be there, so the documented setup starts.
func envExample(t testing.TB) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(string(read(t, "deploy/compose/env.example")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env.example: not KEY=VALUE: %q", line)
		}
		env[k] = v
	}
	return env
}

var interpRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|^\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate applies compose's variable syntax: $$, $VAR, ${VAR},
// ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}.
func interpolate(s string, env map[string]string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			out.WriteByte(s[i])
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			out.WriteByte('$')
			i++
			continue
		}
		m := interpRef.FindStringSubmatch(s[i:])
		if m == nil {
			return "", fmt.Errorf("bad interpolation at %q", s[i:min(len(s), i+20)])
		}
		name, op, arg := m[1], m[2], m[3]
		if name == "" {
			name = m[4]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				v = arg
			}
		case "-":
			if !set {
				v = arg
			}
		case ":?":
			if v == "" {
				return "", fmt.Errorf("required variable %s is missing: %s", name, arg)
			}
		case "?":
			if !set {
				return "", fmt.Errorf("required variable %s is missing: %s", name, arg)
			}
		}
		out.WriteString(v)
		i += len(m[0]) - 1
	}
	return out.String(), nil
}

// interpolateCompose parses the file and interpolates its string values, as
// compose does (comments and keys are left alone); the result is JSON.
func interpolateCompose(raw []byte, env map[string]string) ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		var err error
		switch x := v.(type) {
		case string:
			return interpolate(x, env)
		case map[string]any:
			for k, e := range x {
				if x[k], err = walk(e); err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
			}
		case []any:
			for i, e := range x {
				if x[i], err = walk(e); err != nil {
					return nil, err
				}
			}
		}
		return v, nil
	}
	doc, err := walk(doc)
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// compose is the part of the compose model our rules read.
type composeFile struct {
	Services map[string]struct {
		Image     string         `json:"image"`
		Build     any            `json:"build"`
		Command   []string       `json:"command"`
		DependsOn map[string]any `json:"depends_on"`
		// Kept raw: environment may be a map or a list.
		Environment any      `json:"environment"`
		Ports       []string `json:"ports"`
		Volumes     []string `json:"volumes"`
		Healthcheck *struct {
			Test     []string `json:"test"`
			Interval string   `json:"interval"`
			Timeout  string   `json:"timeout"`
			Start    string   `json:"start_period"`
		} `json:"healthcheck"`
	} `json:"services"`
	Volumes map[string]any `json:"volumes"`
}

// envMap normalises a service's environment (map or KEY=VALUE list).
func envMap(v any) map[string]string {
	out := map[string]string{}
	switch e := v.(type) {
	case map[string]any:
		for k, x := range e {
			out[k] = fmt.Sprint(x)
		}
	case []any:
		for _, x := range e {
			k, val, _ := strings.Cut(fmt.Sprint(x), "=")
			out[k] = val
		}
	}
	return out
}

var (
	secretName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|SERVICE_KEY|PRIVATE_KEY)`)
	// A required variable (${VAR:?...}) and nothing else.
	requiredOnly = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$`)
	// scheme://user:password@ where the password is not interpolated.
	urlPassword = regexp.MustCompile(`://[^/\s:@]+:([^@\s]+)@`)
)

// composeProblems applies our rules to the raw file (secrets must stay
// interpolations) and to its interpolated model (everything else).
func composeProblems(raw []byte, env map[string]string, rootDir string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	var rawModel composeFile
	if err := yaml.Unmarshal(raw, &rawModel); err != nil {
		return []string{"parse: " + err.Error()}
	}
	for name, s := range rawModel.Services {
		for k, v := range envMap(s.Environment) {
			// A switch (MODELPLANE_TEMPORAL_ALLOW_PLAINTEXT_API_KEY) is no secret.
			if secretName.MatchString(k) && !requiredOnly.MatchString(v) && v != "true" && v != "false" {
				bad("services.%s.environment.%s: a secret must be a required variable (${VAR:?...}) set in .env, not %q", name, k, v)
			}
			if m := urlPassword.FindStringSubmatch(v); m != nil && !requiredOnly.MatchString(m[1]) {
				bad("services.%s.environment.%s: URL carries a literal password; interpolate a required variable", name, k)
			}
		}
	}

	text, err := interpolateCompose(raw, env)
	if err != nil {
		return append(problems, "interpolate with env.example: "+err.Error())
	}
	var c composeFile
	if err := yaml.Unmarshal(text, &c); err != nil {
		return append(problems, "parse interpolated: "+err.Error())
	}
	for _, want := range []string{"postgres", "temporal", "modelplane-api", "modelplane-worker", "prometheus"} {
		if _, ok := c.Services[want]; !ok {
			bad("service %s missing", want)
		}
	}
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Services[name]
		for dep, cond := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				bad("services.%s.depends_on: no service %q", name, dep)
				continue
			}
			m, _ := cond.(map[string]any)
			if m == nil {
				bad("services.%s.depends_on.%s: give a condition", name, dep)
				continue
			}
			if m["condition"] == "service_healthy" && target.Healthcheck == nil {
				bad("services.%s.depends_on.%s: service_healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		// Pinned images: a tag that is not latest (a digest also does).
		if s.Image == "" {
			bad("services.%s: no image", name)
		} else if !strings.Contains(s.Image, "@sha256:") {
			ref := s.Image
			if i := strings.LastIndex(ref, ":"); i <= strings.LastIndex(ref, "/") {
				bad("services.%s.image %q has no tag", name, ref)
			} else if ref[i+1:] == "latest" {
				bad("services.%s.image %q uses latest", name, ref)
			}
		}
		if h := s.Healthcheck; h != nil {
			if len(h.Test) == 0 {
				bad("services.%s.healthcheck: no test", name)
			}
			for _, d := range []string{h.Interval, h.Timeout, h.Start} {
				if _, err := time.ParseDuration(d); d != "" && err != nil {
					bad("services.%s.healthcheck: %v", name, err)
				}
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				bad("services.%s.ports %q: publish on 127.0.0.1 only (a dev stack)", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, "./") || strings.HasPrefix(src, "/"):
				if _, err := os.Stat(filepath.Join(rootDir, src)); err != nil {
					bad("services.%s.volumes: bind source %s does not exist", name, src)
				}
			default:
				if _, ok := c.Volumes[src]; !ok {
					bad("services.%s.volumes: named volume %s not declared", name, src)
				}
			}
		}
	}

	api, worker, temporal := c.Services["modelplane-api"], c.Services["modelplane-worker"], c.Services["temporal"]
	if api.Image != worker.Image || fmt.Sprint(api.Build) != fmt.Sprint(worker.Build) {
		bad("modelplane-api and modelplane-worker must run one image (image %q vs %q)", api.Image, worker.Image)
	}
	if temporal.Image != api.Image || fmt.Sprint(temporal.Build) != fmt.Sprint(api.Build) {
		bad("temporal must run modelplane's image (`modelplane temporal`), got %q", temporal.Image)
	}
	if api.Build == nil {
		bad("modelplane-api: no build section (the image comes from the Dockerfile)")
	}
	if len(api.Command) == 0 || api.Command[0] != "server" {
		bad("modelplane-api: command %q, want server", api.Command)
	}
	if len(worker.Command) == 0 || worker.Command[0] != "worker" {
		bad("modelplane-worker: command %q, want worker", worker.Command)
	}
	for _, n := range []string{"modelplane-api", "modelplane-worker"} {
		e := envMap(c.Services[n].Environment)
		if u, err := url.Parse(e["MODELPLANE_DB"]); err != nil || u.Scheme != "postgres" || u.Host != "postgres:5432" {
			bad("%s: MODELPLANE_DB %q is not a postgres:// URL to the postgres service", n, e["MODELPLANE_DB"])
		}
		if e["MODELPLANE_TEMPORAL_ADDRESS"] != "temporal:7233" {
			bad("%s: MODELPLANE_TEMPORAL_ADDRESS %q, want temporal:7233", n, e["MODELPLANE_TEMPORAL_ADDRESS"])
		}
	}
	problems = append(problems, composeTemporalProblems(c)...)
	if img := c.Services["postgres"].Image; !strings.HasPrefix(img, "postgres:15") {
		bad("postgres: image %q, want PostgreSQL 15", img)
	}
	return problems
}

// composeTemporalProblems checks the `modelplane temporal` service: its two
// databases on the postgres service, a frontend other containers reach, a
// healthcheck the image can run, a signed-in Web UI, and the API and worker
// presenting the service key the frontend knows.
func composeTemporalProblems(c composeFile) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	s := c.Services["temporal"]
	if len(s.Command) == 0 || s.Command[0] != "temporal" {
		bad("temporal: command %q, want temporal", s.Command)
	}
	e := envMap(s.Environment)
	for k, db := range map[string]string{"MODELPLANE_TEMPORAL_SERVER_DB": "/temporal", "MODELPLANE_TEMPORAL_SERVER_VISIBILITY_DB": "/temporal_visibility"} {
		if u, err := url.Parse(e[k]); err != nil || u.Scheme != "postgres" || u.Host != "postgres:5432" || u.Path != db {
			bad("temporal: %s %q is not a postgres:// URL to the postgres service's %s database", k, e[k], db)
		}
	}
	if e["MODELPLANE_TEMPORAL_SERVER_BIND_IP"] != "0.0.0.0" {
		bad("temporal: MODELPLANE_TEMPORAL_SERVER_BIND_IP %q, want 0.0.0.0 (the other containers call it)", e["MODELPLANE_TEMPORAL_SERVER_BIND_IP"])
	}
	if h := s.Healthcheck; h == nil || strings.Join(h.Test, " ") != "CMD /modelplane temporal --check" {
		bad("temporal: healthcheck must be [CMD, /modelplane, temporal, --check] (the image has no shell)")
	}
	for _, k := range []string{"MODELPLANE_TEMPORAL_SERVER_UI_ADDR", "MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_ID", "MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET", "MODELPLANE_OIDC_ISSUER"} {
		if e[k] == "" {
			bad("temporal: %s is not set (the Web UI signs people in)", k)
		}
	}
	key := e["MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS"]
	if key == "" {
		bad("temporal: no MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS: the frontend would be open")
	}
	for _, n := range []string{"modelplane-api", "modelplane-worker"} {
		ce := envMap(c.Services[n].Environment)
		if ce["MODELPLANE_TEMPORAL_API_KEY"] == "" || ce["MODELPLANE_TEMPORAL_API_KEY"] != key {
			bad("%s: MODELPLANE_TEMPORAL_API_KEY must be the key temporal knows (MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS)", n)
		}
		if ce["MODELPLANE_TEMPORAL_ALLOW_PLAINTEXT_API_KEY"] != "true" {
			bad("%s: the frontend has no certificate: set MODELPLANE_TEMPORAL_ALLOW_PLAINTEXT_API_KEY=true", n)
		}
	}
	return problems
}

// apiPort is the port in the API's --addr; workerMetricsPort the worker's metrics port.
func composePorts(t testing.TB, c composeFile) (api, worker string) {
	t.Helper()
	cmd := c.Services["modelplane-api"].Command
	for i, a := range cmd {
		if a == "--addr" && i+1 < len(cmd) {
			_, api, _ = strings.Cut(cmd[i+1], ":")
		}
	}
	_, worker, _ = strings.Cut(envMap(c.Services["modelplane-worker"].Environment)["MODELPLANE_WORKER_METRICS_ADDR"], ":")
	if api == "" || worker == "" {
		t.Fatalf("cannot tell the API port (%q) or the worker metrics port (%q) from docker-compose.yml", api, worker)
	}
	return api, worker
}

func TestComposeRules(t *testing.T) {
	raw := read(t, "docker-compose.yml")
	env := envExample(t)
	expectNone(t, "docker-compose.yml", composeProblems(raw, env, root(t)))

	s := string(raw)
	for name, c := range map[string]struct{ old, new, want string }{
		"dangling depends_on": {"      modelplane-worker:\n        condition: service_started\n    environment", "      modelplane-workr:\n        condition: service_started\n    environment", `no service "modelplane-workr"`},
		"two images":          {"    command: [\"worker\"]", "    image: modelplane:other\n    command: [\"worker\"]", "one image"},
		"plaintext password":  {"      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (see deploy/compose/env.example)}", "      POSTGRES_PASSWORD: temporal", "POSTGRES_PASSWORD"},
		"plaintext secret":    {"MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET: ${OIDC_UI_CLIENT_SECRET:?set OIDC_UI_CLIENT_SECRET in .env (see deploy/compose/env.example)}", "MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET: s3cret", "UI_CLIENT_SECRET"},
		"defaulted key":       {"MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS: ${MODELPLANE_TEMPORAL_SERVICE_KEY:?set MODELPLANE_TEMPORAL_SERVICE_KEY in .env (see deploy/compose/env.example)}", "MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS: ${MODELPLANE_TEMPORAL_SERVICE_KEY:-dev}", "SERVICE_KEYS"},
		"open frontend":       {"      MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS: ${MODELPLANE_TEMPORAL_SERVICE_KEY:?set MODELPLANE_TEMPORAL_SERVICE_KEY in .env (see deploy/compose/env.example)}\n", "", "frontend would be open"},
		"temporal elsewhere":  {"@postgres:5432/temporal_visibility", "@db:5432/temporal_visibility", "MODELPLANE_TEMPORAL_SERVER_VISIBILITY_DB"},
		"shell healthcheck":   {`test: ["CMD", "/modelplane", "temporal", "--check"]`, `test: ["CMD-SHELL", "curl -f localhost:7233"]`, "no shell"},
		"key over TLS":        {`MODELPLANE_TEMPORAL_ALLOW_PLAINTEXT_API_KEY: "true"`, `MODELPLANE_TEMPORAL_ALLOW_PLAINTEXT_API_KEY: "false"`, "no certificate"},
		"password in url":     {"${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (see deploy/compose/env.example)}@postgres", "hunter2@postgres", "literal password"},
		"defaulted secret":    {"MODELPLANE_TOKENS: ${MODELPLANE_TOKENS:?set MODELPLANE_TOKENS in .env (see deploy/compose/env.example)}", "MODELPLANE_TOKENS: ${MODELPLANE_TOKENS:-admin:admin:dev}", "MODELPLANE_TOKENS"},
		"latest image":        {"prom/prometheus:v3.5.0", "prom/prometheus:latest", "latest"},
		"public port":         {"\"127.0.0.1:8080:8080\"", "\"8080:8080\"", "127.0.0.1"},
		"undeclared volume":   {"  prometheus-data: {}\n", "", "prometheus-data not declared"},
		"undocumented var":    {"${POSTGRES_USER:-modelplane}:${POSTGRES_PASSWORD:?", "${POSTGRES_USER:-modelplane}:${PG_PASS:?set it}${POSTGRES_PASSWORD:?", "PG_PASS is missing"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			expectProblem(t, composeProblems([]byte(mustReplace(t, s, c.old, c.new)), env, root(t)), c.want)
		})
	}
	t.Run("negative/healthy without healthcheck", func(t *testing.T) {
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m["services"].(map[string]any)["temporal"].(map[string]any), "healthcheck")
		b, _ := yaml.Marshal(m)
		expectProblem(t, composeProblems(b, env, root(t)), "temporal has no healthcheck")
	})
}

// TestComposeSchema validates the interpolated compose file (what compose
// itself validates) against the official compose-spec schema.
func TestComposeSchema(t *testing.T) {
	check := tool(t, "schemacheck")
	schema := tool(t, "compose-spec.json")
	js, err := interpolateCompose(read(t, "docker-compose.yml"), envExample(t))
	if err != nil {
		t.Fatal(err)
	}
	// Back to YAML so the negative controls can edit it as text.
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	text := string(y)
	validate := func(doc string) (string, error) {
		return run(t, nil, check, "-schema", schema, writeTemp(t, "docker-compose.yml", []byte(doc)))
	}
	if out, err := validate(text); err != nil {
		t.Fatalf("docker-compose.yml does not match the compose-spec schema:\n%s", out)
	}
	for name, c := range map[string]struct{ old, new, want string }{
		"unknown service key": {"    read_only: true", "    read_only: true\n    restart_policy: always", "restart_policy"},
		"bad condition":       {"condition: service_started", "condition: service_up", "condition"},
		"wrong type":          {"      retries: 20", "      retries: [20]", "retries"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			out, err := validate(mustReplace(t, text, c.old, c.new))
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("broken copy passed the schema (err %v), want a complaint about %q:\n%s", err, c.want, out)
			}
		})
	}
}

// TestPrometheusConfig checks that Prometheus scrapes both modelplane
// services on the ports they listen on, and that promtool accepts the file.
func TestPrometheusConfig(t *testing.T) {
	raw := read(t, "deploy/prometheus/prometheus.yml")
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	text, err := interpolateCompose(read(t, "docker-compose.yml"), envExample(t))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(text, &c); err != nil {
		t.Fatal(err)
	}
	apiPort, workerPort := composePorts(t, c)
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		if strings.HasPrefix(sc.JobName, "modelplane") && sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s, want /metrics", sc.JobName, sc.MetricsPath)
		}
	}
	for _, want := range []string{"modelplane-api:" + apiPort, "modelplane-worker:" + workerPort} {
		if !slices.Contains(targets, want) {
			t.Errorf("prometheus.yml does not scrape %s (targets %q)", want, targets)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		proc.Missing(t, "promtool missing: run hack/ensure-monitoring.sh (Debian's prometheus package)", requireEnv)
	}
	if out, err := run(t, nil, promtool, "check", "config", "deploy/prometheus/prometheus.yml"); err != nil {
		t.Fatalf("promtool rejects deploy/prometheus/prometheus.yml:\n%s", out)
	}
	t.Run("negative/bad interval", func(t *testing.T) {
		broken := mustReplace(t, string(raw), "scrape_interval: 15s", "scrape_interval: 15 seconds")
		if out, err := run(t, nil, promtool, "check", "config", writeTemp(t, "prometheus.yml", []byte(broken))); err == nil {
			t.Errorf("promtool accepted a broken config:\n%s", out)
		}
	})
}
