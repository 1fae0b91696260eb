package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "modelplane.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFileThenEnvironment(t *testing.T) {
	p := write(t, `
db: postgres://mp@db:5432/modelplane
temporal:
  address: temporal.example:7233
  namespace: ml
  tls:
    ca_file: /etc/ca.pem
worker:
  max_concurrent_activities: 64
  stop_timeout: 45s
oidc:
  issuer: https://idp.example
  audience: [modelplane, api]
  role_map: {ml-approvers: approver}
`)
	c, err := Load(p, env(map[string]string{
		"MODELPLANE_TEMPORAL_NAMESPACE":      "prod-ml",
		"MODELPLANE_WORKER_ACTIVITY_POLLERS": "4",
		"MLFLOW_TRACKING_URI":                "http://mlflow:5000", // legacy name still honoured
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "postgres://mp@db:5432/modelplane" || c.Temporal.Address != "temporal.example:7233" || c.Temporal.TLS.CAFile != "/etc/ca.pem" {
		t.Fatalf("file values not applied: %+v", c)
	}
	if c.Temporal.Namespace != "prod-ml" {
		t.Fatalf("env must override the file: namespace %q", c.Temporal.Namespace)
	}
	if c.Worker.MaxConcurrentActivities != 64 || c.Worker.ActivityPollers != 4 || c.Worker.StopTimeout.D() != 45*time.Second {
		t.Fatalf("worker: %+v", c.Worker)
	}
	if len(c.OIDC.Audience) != 2 || c.OIDC.RoleMap["ml-approvers"] != "approver" {
		t.Fatalf("oidc: %+v", c.OIDC)
	}
	if c.MLflow.TrackingURI != "http://mlflow:5000" {
		t.Fatalf("legacy env alias ignored: %q", c.MLflow.TrackingURI)
	}
	if c.API.Addr != "127.0.0.1:8080" || c.Worker.TaskQueue != "modelplane" {
		t.Fatalf("defaults lost: %+v", c.API)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := []struct{ file, env, want string }{
		{file: "temporal:\n  adress: x:1\n", want: "unknown key temporal.adress"},
		{file: "worker:\n  stop_timeout: 30\n", want: "key worker.stop_timeout"},
		{file: "worker:\n  stop_timeout: soon\n", want: "key worker.stop_timeout: invalid duration"},
		{file: "worker:\n  max_concurrent_activities: many\n", want: "key worker.max_concurrent_activities"},
		{file: "log:\n  format: xml\n", want: "config log.format"},
		{file: "temporal:\n  tls:\n    cert_file: c.pem\n", want: "config temporal.tls.cert_file"},
		{file: "oidc:\n  role_map: {x: root}\n", want: "config oidc.role_map"},
		{env: "MODELPLANE_WORKER_ACTIVITY_POLLERS=lots", want: "MODELPLANE_WORKER_ACTIVITY_POLLERS (worker.activity_pollers)"},
		{env: "MODELPLANE_TRACING_EXPORTER=otlp", want: "config tracing.endpoint"},
		{env: "MODELPLANE_WORKER_MAX_CONCURRENT_ACTIVITIES=-1", want: "config worker.max_concurrent_activities"},
	}
	for _, tc := range cases {
		p := ""
		if tc.file != "" {
			p = write(t, tc.file)
		}
		m := map[string]string{}
		if k, v, ok := strings.Cut(tc.env, "="); ok {
			m[k] = v
		}
		_, err := Load(p, env(m))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: want error containing %q, got %v", tc.file, tc.env, tc.want, err)
		}
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Every key is documented in the README with its environment variable.
func TestReadmeDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if k.Doc == "" {
			t.Errorf("%s has no doc tag", k.Path)
		}
		if !strings.Contains(string(b), "`"+k.Path+"`") || !strings.Contains(string(b), k.Env) {
			t.Errorf("README does not document %s (%s)", k.Path, k.Env)
		}
	}
}

func TestSecretFromEnvOrFile(t *testing.T) {
	p := write(t, "  s3cret\n")
	if v, _ := Secret(env(map[string]string{"K": "fromenv"}), "K", p); v != "fromenv" {
		t.Fatalf("env first: %q", v)
	}
	if v, _ := Secret(env(nil), "K", p); v != "s3cret" {
		t.Fatalf("file: %q", v)
	}
	if _, err := Secret(env(nil), "K", "/nonexistent"); err == nil || !strings.Contains(err.Error(), "K") {
		t.Fatalf("missing file: %v", err)
	}
}
