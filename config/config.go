// Package config is modelplane's configuration: one YAML file plus
// environment overrides. Every key has an environment variable named
// MODELPLANE_ + the key's path in upper case joined by "_" (temporal.tls.ca_file
// → MODELPLANE_TEMPORAL_TLS_CA_FILE). Secrets are never read from the file:
// they come from the environment (or a file the config names), so a config
// file can be committed and shared.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Config is everything the server, worker and dev commands read.
type Config struct {
	// DB is the metadata store: a SQLite path or a postgres:// URL.
	DB       string   `json:"db" doc:"metadata store: a SQLite file path or a postgres:// URL"`
	API      API      `json:"api"`
	Temporal Temporal `json:"temporal"`
	Worker   Worker   `json:"worker"`
	Log      Log      `json:"log"`
	Tracing  Tracing  `json:"tracing"`
	Events   Events   `json:"events"`
	Alerts   Alerts   `json:"alerts"`
	MLflow   MLflow   `json:"mlflow"`
	MCP      MCP      `json:"mcp_registry"`
	OIDC     OIDC     `json:"oidc"`
	Policy   Policy   `json:"policy"`
	Codec    Codec    `json:"codec"`
	// TemporalServer configures `modelplane temporal`, the Temporal server
	// build that verifies callers and stamps their principal on approvals.
	TemporalServer TemporalServer `json:"temporal_server"`
	Console        Console        `json:"console"`
	Gateway        Gateway        `json:"gateway"`
}

// Gateway configures the MCP gateway: /mcp/ beside the API, or alone
// under `modelplane gateway`.
type Gateway struct {
	Disabled       bool     `json:"disabled" doc:"do not serve the MCP gateway (/mcp/) on the API port"`
	Addr           string   `json:"addr" doc:"listen address of modelplane gateway, when it runs on its own"`
	PublicURL      string   `json:"public_url" doc:"the gateway's external base URL: OIDC tokens must carry public_url + /mcp as their audience (default: api.public_url, else http:// + the listen address)"`
	RulesFile      string   `json:"rules_file" doc:"YAML file with the gateway's content rules, budgets and upstream credentials (see gateway/README.md); empty: default content rules, no budgets"`
	DefaultChannel string   `json:"default_channel" doc:"the channel served at /mcp/{server}"`
	Refresh        Duration `json:"refresh" doc:"how often each served server re-reads its channel and approved contract"`
}

// Console configures the web console served beside the API (/ next to /v1).
type Console struct {
	Disabled bool   `json:"disabled" doc:"do not serve the console (the API alone)"`
	ClientID string `json:"client_id" doc:"OIDC client the console signs people in with, at the oidc section's issuer (add it to oidc.audience); empty: people sign in with an API token"`
	// Secrets come from the environment or a file, never the config.
	ClientSecretFile string `json:"client_secret_file" doc:"file holding the console's OIDC client secret (or set MODELPLANE_CONSOLE_CLIENT_SECRET; none for a public client, which uses PKCE alone)"`
	SessionKeyFile   string `json:"session_key_file" doc:"file holding 64 hex characters that seal session cookies (or set MODELPLANE_CONSOLE_SESSION_KEY); empty: a key per process, so a restart signs everyone out"`
	TemporalUIURL    string `json:"temporal_ui_url" doc:"the Temporal Web UI's URL, linked from each promotion"`
}

// API configures the HTTP API.
type API struct {
	Addr            string   `json:"addr" doc:"API listen address"`
	TokensFile      string   `json:"tokens_file" doc:"static API tokens (JSON, secrets stored as SHA-256 digests); see modelplane token create"`
	ShutdownTimeout Duration `json:"shutdown_timeout" doc:"how long in-flight requests may take after SIGTERM"`
	PublicURL       string   `json:"public_url" doc:"the API's external URL (links in the Web UI details and codec endpoint)"`
}

// Temporal says where the Temporal cluster is and how to reach it.
type Temporal struct {
	Address   string `json:"address" doc:"Temporal frontend host:port"`
	Namespace string `json:"namespace" doc:"Temporal namespace"`
	TLS       TLS    `json:"tls"`
	// APIKeyFile holds a Temporal Cloud API key; MODELPLANE_TEMPORAL_API_KEY wins.
	APIKeyFile string `json:"api_key_file" doc:"file holding a Temporal API key (or set MODELPLANE_TEMPORAL_API_KEY); implies TLS"`
	// AllowPlaintextAPIKey is for a private network (compose) where the
	// frontend (`modelplane temporal`) has no certificate.
	AllowPlaintextAPIKey bool `json:"allow_plaintext_api_key" doc:"send the API key without TLS when no TLS is configured (a private network only, e.g. compose)"`
}

// TLS configures TLS or mTLS to the Temporal frontend.
type TLS struct {
	Enabled            bool   `json:"enabled" doc:"use TLS (implied by any of the files below)"`
	CAFile             string `json:"ca_file" doc:"CA bundle that signs the frontend's certificate (default: system roots)"`
	CertFile           string `json:"cert_file" doc:"client certificate for mTLS"`
	KeyFile            string `json:"key_file" doc:"client private key for mTLS"`
	ServerName         string `json:"server_name" doc:"expected server name (default: the address's host)"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify" doc:"do not verify the server certificate (testing only)"`
}

// Worker tunes the Temporal worker.
type Worker struct {
	TaskQueue               string   `json:"task_queue" doc:"task queue the worker polls and the API starts workflows on"`
	MaxConcurrentActivities int      `json:"max_concurrent_activities" doc:"activity slots (0: SDK default, 1000)"`
	MaxConcurrentWorkflows  int      `json:"max_concurrent_workflow_tasks" doc:"workflow task slots (0: SDK default, 1000)"`
	ActivityPollers         int      `json:"activity_pollers" doc:"concurrent activity task pollers (0: SDK default)"`
	WorkflowPollers         int      `json:"workflow_pollers" doc:"concurrent workflow task pollers (0: SDK default)"`
	StopTimeout             Duration `json:"stop_timeout" doc:"on SIGTERM, how long in-flight activities may run before the worker stops"`
	MetricsAddr             string   `json:"metrics_addr" doc:"worker's /metrics and /healthz listen address (empty: off)"`
}

// Log configures logging.
type Log struct {
	Format string `json:"format" doc:"json or text"`
	Level  string `json:"level" doc:"debug, info, warn or error"`
}

// Tracing configures OpenTelemetry traces (off by default).
type Tracing struct {
	Exporter    string  `json:"exporter" doc:"none or otlp"`
	Endpoint    string  `json:"endpoint" doc:"OTLP/gRPC collector host:port"`
	Insecure    bool    `json:"insecure" doc:"plaintext to the collector"`
	SampleRatio float64 `json:"sample_ratio" doc:"fraction of traces kept (0–1)"`
}

// Events configures where lifecycle CloudEvents go.
type Events struct {
	Webhook string `json:"webhook" doc:"POST lifecycle CloudEvents here (signed with MODELPLANE_EVENTS_WEBHOOK_SECRET)"`
	// SecretFile holds the webhook's signing secret; MODELPLANE_EVENTS_WEBHOOK_SECRET wins.
	SecretFile string `json:"secret_file" doc:"file holding the events webhook's signing secret (or set MODELPLANE_EVENTS_WEBHOOK_SECRET)"`
	NATS       string `json:"nats" doc:"publish lifecycle CloudEvents to this NATS server (JetStream)"`
	NATSStream string `json:"nats_stream" doc:"JetStream stream"`
	NATSPrefix string `json:"nats_prefix" doc:"subject prefix"`
}

// Alerts names the Alertmanager labels that carry model, target and version.
type Alerts struct {
	ModelLabel   string `json:"model_label" doc:"Alertmanager label naming the model"`
	TargetLabel  string `json:"target_label" doc:"Alertmanager label naming the target"`
	VersionLabel string `json:"version_label" doc:"Alertmanager label naming the version"`
}

// MLflow configures the MLflow Model Registry (credentials: MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD).
type MLflow struct {
	TrackingURI    string   `json:"tracking_uri" doc:"MLflow tracking server (also MLFLOW_TRACKING_URI)"`
	ReconcileEvery Duration `json:"reconcile_every" doc:"how often auto_promote rules are reconciled with MLflow"`
	// WebhookSecretFile holds the secret MLflow signs webhooks with;
	// MODELPLANE_MLFLOW_WEBHOOK_SECRET wins.
	WebhookSecretFile string `json:"webhook_secret_file" doc:"file holding the MLflow webhook secret (or set MODELPLANE_MLFLOW_WEBHOOK_SECRET)"`
}

// MCP configures the MCP registry (token: MODELPLANE_MCP_REGISTRY_TOKEN).
type MCP struct {
	URL             string   `json:"url" doc:"MCP registry base URL"`
	RevalidateEvery Duration `json:"revalidate_every" doc:"how often published MCP servers are revalidated (0: off)"`
	// TokenFile holds the registry publish token; MODELPLANE_MCP_REGISTRY_TOKEN wins.
	TokenFile string `json:"token_file" doc:"file holding the MCP registry publish token (or set MODELPLANE_MCP_REGISTRY_TOKEN)"`
}

// OIDC configures JWT validation for the API (and the Temporal Web UI docs).
type OIDC struct {
	Issuer       string            `json:"issuer" doc:"OIDC issuer URL; enables JWT bearer tokens"`
	Audience     []string          `json:"audience" doc:"accepted audiences (comma-separated in the environment)"`
	JWKSURL      string            `json:"jwks_url" doc:"JWKS URL (default: discovered from the issuer)"`
	UserClaim    string            `json:"user_claim" doc:"claim naming the user (default preferred_username, then email, then sub)"`
	TeamsClaim   string            `json:"teams_claim" doc:"claim listing teams/groups (dotted path allowed)"`
	RolesClaim   string            `json:"roles_claim" doc:"claim listing roles"`
	TeamPrefix   string            `json:"team_prefix" doc:"only groups with this prefix are teams (prefix stripped)"`
	RoleMap      map[string]string `json:"role_map" doc:"claim value → modelplane role (requester, approver, admin, auditor)"`
	DefaultRoles []string          `json:"default_roles" doc:"roles every valid token gets"`
}

// Policy configures the OPA policy engine.
type Policy struct {
	Dir         string   `json:"dir" doc:"policy directory (*.rego + data.json); empty: the built-in default bundle"`
	ReloadEvery Duration `json:"reload_every" doc:"how often the directory is checked for changes"`
}

// Codec configures payload encryption (keys: MODELPLANE_CODEC_KEYS or keys_file).
type Codec struct {
	KeysFile     string   `json:"keys_file" doc:"file of id:base64key lines; the first key encrypts (also MODELPLANE_CODEC_KEYS)"`
	AllowOrigins []string `json:"allow_origins" doc:"Web UI origins allowed to call the codec endpoint"`
}

// TemporalServer configures `modelplane temporal`: Temporal's own server on
// PostgreSQL with modelplane's claim mapper, authorizer and principal stamp
// on its frontend, and the Web UI with OIDC sign-in.
type TemporalServer struct {
	DB               string `json:"db" doc:"Temporal's persistence: a postgres:// URL (its database is created and migrated at start)"`
	VisibilityDB     string `json:"visibility_db" doc:"Temporal's visibility store: a postgres:// URL (default: db with database temporal_visibility)"`
	BindIP           string `json:"bind_ip" doc:"IP the frontend binds (0.0.0.0 in a container); the other services bind 127.0.0.1 only"`
	BroadcastAddress string `json:"broadcast_address" doc:"address other hosts know the frontend by: the cluster's RPC address (default: bind_ip, or the host's if 0.0.0.0)"`
	Port             int    `json:"port" doc:"frontend gRPC port; history, matching, worker and internal-frontend use the next 4, their membership the 5 after"`
	HistoryShards    int    `json:"history_shards" doc:"number of history shards (fixed once the database is created)"`
	MetricsAddr      string `json:"metrics_addr" doc:"Temporal's Prometheus /metrics listen address (empty: off)"`
	// ServiceKeysFile lists the SHA-256 digests of the credentials
	// modelplane's API and worker present (temporal.api_key_file on their side).
	ServiceKeysFile string     `json:"service_keys_file" doc:"SHA-256 digests (one per line) of the service keys modelplane's API and worker present (or the keys themselves, comma-separated, in MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS); required with the Web UI"`
	UI              TemporalUI `json:"ui"`
}

// TemporalUI configures the Web UI that `modelplane temporal` serves.
type TemporalUI struct {
	Addr      string `json:"addr" doc:"Web UI listen address (empty: no Web UI)"`
	PublicURL string `json:"public_url" doc:"the Web UI's external URL; the OIDC callback is public_url + /auth/sso/callback"`
	ClientID  string `json:"client_id" doc:"OIDC client the Web UI signs people in with (the ID token's audience; verified by the frontend with the oidc section's issuer and claims)"`
	// The client secret comes from the environment or a file, never the config.
	ClientSecretFile string `json:"client_secret_file" doc:"file holding the Web UI's OIDC client secret (or set MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET)"`
}

// Duration is a time.Duration written as "30s" in YAML and the environment.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("want a duration string like \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		DB:             ".modelplane/modelplane.db",
		API:            API{Addr: "127.0.0.1:8080", ShutdownTimeout: Duration(10 * time.Second)},
		Temporal:       Temporal{Address: "127.0.0.1:7233", Namespace: "default"},
		Worker:         Worker{TaskQueue: "modelplane", StopTimeout: Duration(30 * time.Second)},
		Log:            Log{Format: "json", Level: "info"},
		Tracing:        Tracing{Exporter: "none", SampleRatio: 1},
		Events:         Events{NATSStream: "MODELPLANE", NATSPrefix: "modelplane.events"},
		Alerts:         Alerts{ModelLabel: "model", TargetLabel: "target", VersionLabel: "version"},
		MLflow:         MLflow{ReconcileEvery: Duration(5 * time.Minute)},
		Policy:         Policy{ReloadEvery: Duration(5 * time.Second)},
		TemporalServer: TemporalServer{BindIP: "127.0.0.1", Port: 7233, HistoryShards: 4},
		Gateway:        Gateway{Addr: "127.0.0.1:8090", DefaultChannel: "prod", Refresh: Duration(time.Second)},
	}
}

// aliases are environment names that predate the config file; they keep working.
var aliases = map[string]string{
	"MODELPLANE_NAMESPACE":            "MODELPLANE_TEMPORAL_NAMESPACE",
	"MODELPLANE_TOKENS_FILE":          "MODELPLANE_API_TOKENS_FILE",
	"MLFLOW_TRACKING_URI":             "MODELPLANE_MLFLOW_TRACKING_URI",
	"MODELPLANE_MCP_REVALIDATE_EVERY": "MODELPLANE_MCP_REGISTRY_REVALIDATE_EVERY",
}

// Load reads path (if not empty) over the defaults, then applies the
// environment. Unknown keys in the file are errors naming the key.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		if err := applyFile(reflect.ValueOf(&c).Elem(), doc); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	lookup := func(name string) (string, bool) {
		if v := getenv(name); v != "" {
			return v, true
		}
		for old, cur := range aliases {
			if cur == name {
				if v := getenv(old); v != "" {
					return v, true
				}
			}
		}
		return "", false
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "MODELPLANE", "", lookup); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks values, naming the key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("config %s: "+format, append([]any{key}, a...)...))
	}
	if c.DB == "" {
		bad("db", "is required")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "want json or text, got %q", c.Log.Format)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Tracing.Exporter {
	case "", "none":
	case "otlp":
		if c.Tracing.Endpoint == "" {
			bad("tracing.endpoint", "is required with exporter otlp")
		}
	default:
		bad("tracing.exporter", "want none or otlp, got %q", c.Tracing.Exporter)
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		bad("tracing.sample_ratio", "want a number between 0 and 1, got %v", c.Tracing.SampleRatio)
	}
	if c.Worker.TaskQueue == "" {
		bad("worker.task_queue", "is required")
	}
	for k, v := range map[string]int{"worker.max_concurrent_activities": c.Worker.MaxConcurrentActivities, "worker.max_concurrent_workflow_tasks": c.Worker.MaxConcurrentWorkflows,
		"worker.activity_pollers": c.Worker.ActivityPollers, "worker.workflow_pollers": c.Worker.WorkflowPollers} {
		if v < 0 {
			bad(k, "must not be negative, got %d", v)
		}
	}
	if (c.Temporal.TLS.CertFile == "") != (c.Temporal.TLS.KeyFile == "") {
		bad("temporal.tls.cert_file", "cert_file and key_file go together (mTLS)")
	}
	if d := c.MLflow.ReconcileEvery.D(); d != 0 && d < 10*time.Second {
		bad("mlflow.reconcile_every", "want at least 10s, got %s", d)
	}
	if d := c.MCP.RevalidateEvery.D(); d != 0 && d < 10*time.Second {
		bad("mcp_registry.revalidate_every", "want at least 10s, got %s", d)
	}
	if d := c.Policy.ReloadEvery.D(); d != 0 && d < 100*time.Millisecond {
		bad("policy.reload_every", "want at least 100ms, got %s", d)
	}
	for claim, role := range c.OIDC.RoleMap {
		switch role {
		case "requester", "approver", "admin", "auditor":
		default:
			bad("oidc.role_map", "maps %q to unknown role %q", claim, role)
		}
	}
	return errors.Join(errs...)
}

// Key is one documented configuration key.
type Key struct {
	Path, Env, Type, Default, Doc string
}

// Keys lists every key with its environment variable, for `modelplane config keys` and the README.
func Keys() []Key {
	var out []Key
	def := Default()
	walk(reflect.ValueOf(def), "MODELPLANE", "", func(path, env string, f reflect.StructField, v reflect.Value) {
		d := fmt.Sprint(v.Interface())
		switch x := v.Interface().(type) {
		case Duration:
			d = x.D().String()
			if x == 0 {
				d = ""
			}
		case []string, map[string]string:
			d = ""
		case bool:
			if !x {
				d = ""
			}
		case int, float64:
			if d == "0" {
				d = ""
			}
		}
		typ := f.Type.Name()
		switch f.Type.Kind() {
		case reflect.Slice:
			typ = "list"
		case reflect.Map:
			typ = "map"
		}
		if f.Type == reflect.TypeOf(Duration(0)) {
			typ = "duration"
		}
		out = append(out, Key{Path: path, Env: env, Type: typ, Default: d, Doc: f.Tag.Get("doc")})
	})
	return out
}

func walk(v reflect.Value, envPrefix, pathPrefix string, fn func(path, env string, f reflect.StructField, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path, env := name, envPrefix+"_"+strings.ToUpper(name)
		if pathPrefix != "" {
			path = pathPrefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct {
			walk(v.Field(i), env, path, fn)
			continue
		}
		fn(path, env, f, v.Field(i))
	}
}

func applyEnv(v reflect.Value, envPrefix, pathPrefix string, lookup func(string) (string, bool)) error {
	var errs []error
	walk(v, envPrefix, pathPrefix, func(path, env string, f reflect.StructField, fv reflect.Value) {
		s, ok := lookup(env)
		if !ok {
			return
		}
		if err := setFromString(fv, s); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", env, path, err))
		}
	})
	return errors.Join(errs...)
}

func setFromString(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(Duration(0)) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	case reflect.Map:
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("want key=value pairs, got %q", p)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Secrets are the credentials a server or worker holds. Each comes from its
// environment variable or from the file the config names, never from the
// config file itself, and is read once, at start.
type Secrets struct {
	TemporalAPIKey      string
	MCPRegistryToken    string
	EventsWebhookSecret string
	MLflowWebhookSecret string
}

// Secrets reads every secret the config refers to; an unreadable file is an
// error naming its variable.
func (c Config) Secrets(getenv func(string) string) (Secrets, error) {
	var s Secrets
	var err error
	for _, x := range []struct {
		dst       *string
		env, file string
	}{
		{&s.TemporalAPIKey, "MODELPLANE_TEMPORAL_API_KEY", c.Temporal.APIKeyFile},
		{&s.MCPRegistryToken, "MODELPLANE_MCP_REGISTRY_TOKEN", c.MCP.TokenFile},
		{&s.EventsWebhookSecret, "MODELPLANE_EVENTS_WEBHOOK_SECRET", c.Events.SecretFile},
		{&s.MLflowWebhookSecret, "MODELPLANE_MLFLOW_WEBHOOK_SECRET", c.MLflow.WebhookSecretFile},
	} {
		if *x.dst, err = Secret(getenv, x.env, x.file); err != nil {
			return s, err
		}
	}
	return s, nil
}

// String never shows a secret: a Secrets logged by mistake says which are set.
func (s Secrets) String() string {
	set := func(v string) string {
		if v == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("temporal_api_key=%s mcp_registry_token=%s events_webhook_secret=%s mlflow_webhook_secret=%s",
		set(s.TemporalAPIKey), set(s.MCPRegistryToken), set(s.EventsWebhookSecret), set(s.MLflowWebhookSecret))
}

// Secret reads a secret from the environment variable env, else from file
// (trimmed), else "". Secrets never live in the config file itself.
func Secret(getenv func(string) string, env, file string) (string, error) {
	if v := getenv(env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", env, err)
	}
	return string(bytes.TrimSpace(b)), nil
}

// Markdown renders Keys as the README's table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| Key | Environment | Type | Default | Meaning |\n|---|---|---|---|---|\n")
	for _, k := range Keys() {
		d := k.Default
		if d != "" {
			d = "`" + d + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", k.Path, k.Env, k.Type, d, k.Doc)
	}
	return b.String()
}
