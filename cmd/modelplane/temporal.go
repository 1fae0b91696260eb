package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/telemetry"
	"github.com/modelplane/modelplane/temporalserver"
	"github.com/modelplane/modelplane/ui"
	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	tlog "go.temporal.io/server/common/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Environment variables `modelplane temporal` reads besides its config keys.
const (
	envUIClientSecret = "MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET"
	// envServiceKeys holds service keys in plaintext (comma-separated), for
	// compose and CI; a deployment lists their digests in service_keys_file.
	envServiceKeys = "MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS"
)

func temporalCmd() *cobra.Command {
	var file string
	var check bool
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run the Temporal server on PostgreSQL, with the Web UI and sign-in, for modelplane's API and worker",
		Long: `Runs Temporal's own server (the build modelplane embeds) on PostgreSQL, listening
for other hosts, and optionally the Temporal Web UI with OIDC sign-in. Its
frontend verifies every caller: people by their API token or OIDC ID token,
modelplane's API and worker by a service key.

Settings: the temporal_server section (db is required), oidc and
api.tokens_file; see ` + "`modelplane config keys`" + `.

With --check it asks a running server on this host whether it serves and
has its namespace (exit 0) and exits; for container healthchecks.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file, os.Getenv)
			if err != nil {
				return err
			}
			if check {
				return checkTemporal(cmd.Context(), cfg)
			}
			return runTemporal(cfg)
		},
	}
	cmd.Flags().StringVar(&file, "config", os.Getenv("MODELPLANE_CONFIG"), "config file (YAML); environment variables MODELPLANE_* override it")
	cmd.Flags().BoolVar(&check, "check", false, "check the server running on this host and exit (0: frontend serving, namespace present, Web UI up if configured)")
	return cmd
}

func runTemporal(cfg config.Config) error {
	ctx, stop := signalContext()
	defer stop()
	log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	tc, uiCfg, err := temporalSettings(cfg, os.Getenv)
	if err != nil {
		return err
	}
	if tc.Auth, err = temporalAuth(ctx, cfg, os.Getenv); err != nil {
		return err
	}
	if tc.Auth == nil {
		log.Warn("temporal frontend is open: anyone who reaches it acts as the system; set temporal_server.service_keys_file")
	}
	format := "json"
	if cfg.Log.Format == "text" {
		format = "console"
	}
	tc.Logger = tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: strings.ToLower(cfg.Log.Level), Format: format}))
	began := time.Now()
	srv, err := temporalserver.Start(tc)
	if err != nil {
		return err
	}
	defer func() {
		log.Info("temporal server stopping")
		if err := srv.Stop(); err != nil {
			log.Error("temporal server stop", "error", err)
		}
	}()
	attrs := []any{"frontend", net.JoinHostPort(tc.IP, strconv.Itoa(tc.Port)), "namespace", tc.Namespace, "took", time.Since(began).Round(time.Millisecond).String()}
	var webUI *ui.Server
	if uiCfg != nil {
		uiCfg.TemporalAddress = srv.HostPort
		var err error
		webUI, err = ui.Start(*uiCfg)
		if err != nil {
			return err
		}
		defer webUI.Stop()
		attrs = append(attrs, "web_ui", webUI.URL)
	}
	if tc.MetricsAddr != "" {
		attrs = append(attrs, "metrics", "http://"+tc.MetricsAddr+"/metrics")
	}
	log.Info("temporal server running", attrs...)
	var uiErr <-chan error // nil without a UI: never ready
	if webUI != nil {
		uiErr = webUI.Err()
	}
	select {
	case <-ctx.Done():
	case err := <-uiErr:
		if err != nil {
			return err
		}
		<-ctx.Done()
	}
	return nil
}

// temporalSettings turns the config into the server's and the Web UI's
// settings; every refusal names the key to fix.
func temporalSettings(cfg config.Config, getenv func(string) string) (temporalserver.Config, *ui.Config, error) {
	ts := cfg.TemporalServer
	var tc temporalserver.Config
	switch {
	case ts.DB == "":
		return tc, nil, errors.New("config temporal_server.db is required: a postgres:// URL for Temporal's database (MODELPLANE_TEMPORAL_SERVER_DB)")
	case !strings.HasPrefix(ts.DB, "postgres://") && !strings.HasPrefix(ts.DB, "postgresql://"):
		return tc, nil, errors.New("config temporal_server.db: `modelplane temporal` runs on PostgreSQL only; want a postgres:// URL (SQLite is for `modelplane dev`)")
	}
	if err := temporalserver.ValidatePostgresURL(ts.DB); err != nil {
		return tc, nil, fmt.Errorf("config temporal_server.db: %w", err)
	}
	if ts.VisibilityDB != "" {
		if err := temporalserver.ValidatePostgresURL(ts.VisibilityDB); err != nil {
			return tc, nil, fmt.Errorf("config temporal_server.visibility_db: %w", err)
		}
	}
	if net.ParseIP(ts.BindIP) == nil {
		return tc, nil, fmt.Errorf("config temporal_server.bind_ip: %q is not an IP address", ts.BindIP)
	}
	if ts.Port < 1 || ts.Port+temporalserver.Ports-1 > 65535 {
		return tc, nil, fmt.Errorf("config temporal_server.port: %d leaves no room for the %d ports after it", ts.Port, temporalserver.Ports-1)
	}
	if ts.HistoryShards < 1 {
		return tc, nil, fmt.Errorf("config temporal_server.history_shards: want at least 1, got %d", ts.HistoryShards)
	}
	if ts.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(ts.MetricsAddr); err != nil {
			return tc, nil, fmt.Errorf("config temporal_server.metrics_addr: %w", err)
		}
	}
	tc = temporalserver.Config{
		Postgres: &temporalserver.Postgres{URL: ts.DB, VisibilityURL: ts.VisibilityDB},
		IP:       ts.BindIP, BroadcastAddress: ts.BroadcastAddress, Port: ts.Port, HistoryShards: ts.HistoryShards,
		MetricsAddr: ts.MetricsAddr, Namespace: cfg.Temporal.Namespace,
	}
	u := ts.UI
	if u.Addr == "" {
		return tc, nil, nil
	}
	host, p, err := net.SplitHostPort(u.Addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return tc, nil, fmt.Errorf("config temporal_server.ui.addr: %q is not host:port", u.Addr)
	}
	// The UI always signs people in here: its users act as themselves.
	if cfg.OIDC.Issuer == "" {
		return tc, nil, errors.New("config oidc.issuer is required with temporal_server.ui.addr: the Web UI signs people in with that provider")
	}
	if u.ClientID == "" {
		return tc, nil, errors.New("config temporal_server.ui.client_id is required with temporal_server.ui.addr: the Web UI's OIDC client")
	}
	secret, err := config.Secret(getenv, envUIClientSecret, u.ClientSecretFile)
	if err != nil {
		return tc, nil, fmt.Errorf("config temporal_server.ui.client_secret_file: %w", err)
	}
	if secret == "" {
		return tc, nil, fmt.Errorf("config temporal_server.ui.client_secret_file (or %s) is required with temporal_server.ui.addr: the Web UI's OIDC client secret", envUIClientSecret)
	}
	if ip := net.ParseIP(host); u.PublicURL == "" && (host == "" || (ip != nil && ip.IsUnspecified())) {
		return tc, nil, fmt.Errorf("config temporal_server.ui.public_url is required when the Web UI listens on %s: browsers return there after sign-in", u.Addr)
	}
	return tc, &ui.Config{Host: host, Port: port, Namespace: cfg.Temporal.Namespace,
		OIDC: &ui.OIDC{Issuer: cfg.OIDC.Issuer, ClientID: u.ClientID, ClientSecret: secret, PublicURL: u.PublicURL}}, nil
}

// temporalAuth is what the frontend verifies callers with: people through
// the API's identity chain (static tokens, OIDC with the Web UI's client as
// an accepted audience) and modelplane's services by their key. Nil means
// an open frontend, allowed only without a signed-in Web UI.
func temporalAuth(ctx context.Context, cfg config.Config, getenv func(string) string) (*temporalserver.Auth, error) {
	digests, err := serviceKeyDigests(cfg.TemporalServer.ServiceKeysFile, getenv(envServiceKeys))
	if err != nil {
		return nil, err
	}
	if len(digests) == 0 {
		if cfg.TemporalServer.UI.Addr != "" {
			return nil, fmt.Errorf("config temporal_server.service_keys_file (or %s) is required with temporal_server.ui.addr: a signed-in Web UI must not sit in front of an open frontend", envServiceKeys)
		}
		return nil, nil
	}
	a := &temporalserver.Auth{ServiceKeyDigests: digests}
	if cfg.API.TokensFile == "" && getenv("MODELPLANE_TOKENS") == "" && cfg.OIDC.Issuer == "" {
		return a, nil // services only
	}
	people := cfg
	if id := cfg.TemporalServer.UI.ClientID; id != "" {
		// The Web UI forwards the ID token, whose audience is its client.
		people.OIDC.Audience = append(slices.Clone(cfg.OIDC.Audience), id)
	}
	if a.Users, _, err = buildAuthenticator(ctx, people, nil); err != nil {
		return nil, err
	}
	return a, nil
}

// serviceKeyDigests reads the digests file (one hex SHA-256 per line, #
// comments) and digests the plaintext keys from the environment.
func serviceKeyDigests(path, plain string) ([]string, error) {
	var out []string
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("config temporal_server.service_keys_file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if b, err := hex.DecodeString(line); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("config temporal_server.service_keys_file %s: line %d is not a SHA-256 digest (64 hex digits; see `printf %%s KEY | sha256sum`)", path, n)
			}
			out = append(out, strings.ToLower(line))
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("config temporal_server.service_keys_file: %w", err)
		}
	}
	for _, k := range strings.Split(plain, ",") {
		if k = strings.TrimSpace(k); k != "" {
			if len(k) < 16 {
				return nil, fmt.Errorf("%s: a service key must have at least 16 characters", envServiceKeys)
			}
			out = append(out, identity.Digest(k))
		}
	}
	return out, nil
}

// checkTemporal asks the server on this host whether its frontend answers,
// through internal-frontend (loopback, no credentials) whether the namespace
// exists, and whether the Web UI (if configured) answers.
func checkTemporal(ctx context.Context, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ts := cfg.TemporalServer
	host := ts.BindIP
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	dial := func(port int) (*grpc.ClientConn, error) {
		return grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(port)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	fe, err := dial(ts.Port)
	if err != nil {
		return err
	}
	defer fe.Close()
	res, err := healthpb.NewHealthClient(fe).Check(ctx, &healthpb.HealthCheckRequest{Service: workflowservice.WorkflowService_ServiceDesc.ServiceName})
	switch status.Code(err) {
	case codes.OK:
		if res.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("temporal frontend on port %d: %s", ts.Port, res.Status)
		}
	case codes.Unauthenticated, codes.PermissionDenied:
		// It answered: the authorizer refused an anonymous health check.
	default:
		return fmt.Errorf("temporal frontend on port %d: %w", ts.Port, err)
	}
	host = "127.0.0.1" // internal-frontend binds loopback only
	ife, err := dial(ts.Port + 4)
	if err != nil {
		return err
	}
	defer ife.Close()
	if _, err := workflowservice.NewWorkflowServiceClient(ife).DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: cfg.Temporal.Namespace}); err != nil {
		return fmt.Errorf("temporal namespace %s: %w", cfg.Temporal.Namespace, err)
	}
	if ts.UI.Addr == "" {
		return nil
	}
	uiHost, uiPort, err := net.SplitHostPort(ts.UI.Addr)
	if err != nil {
		return fmt.Errorf("config temporal_server.ui.addr: %w", err)
	}
	if ip := net.ParseIP(uiHost); ip == nil || ip.IsUnspecified() {
		uiHost = "127.0.0.1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(uiHost, uiPort)+"/healthz", nil)
	if err != nil {
		return err
	}
	hres, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("temporal web UI: %w", err)
	}
	hres.Body.Close()
	if hres.StatusCode != http.StatusOK {
		return fmt.Errorf("temporal web UI: /healthz answered %s", hres.Status)
	}
	return nil
}
