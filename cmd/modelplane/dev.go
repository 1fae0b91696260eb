package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/examples/notes"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/identity/devidp"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
	"github.com/modelplane/modelplane/temporalserver"
	"github.com/modelplane/modelplane/ui"
	"github.com/modelplane/modelplane/ui/console"
	"github.com/spf13/cobra"
)

// devUIClient is the OIDC client the dev Web UI signs people in with; its
// ID tokens (audience devUIClient) are what the Temporal frontend verifies.
const devUIClient = "temporal-ui"

// devConsoleClient is the console's own client at the dev provider: a
// public client (PKCE), its ID tokens accepted by the API like the Web UI's.
const devConsoleClient = "modelplane-console"

// devIdP is the running dev OIDC provider and what the banner says of it.
type devIdP struct {
	issuer, uiSecret string
	passwords        map[string]string
	passwordsPath    string
	stop             func()
}

// startDevIdP signs in the dev identities (the same names, roles and teams
// as the dev tokens) with passwords kept in DATA_DIR/passwords.
func startDevIdP(ctx context.Context, addr, dataDir string, inMemory bool, tokens []api.Token, uiHost string, uiPort int, apiAddr string) (*devIdP, error) {
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Name
	}
	d := &devIdP{issuer: "http://" + addr, uiSecret: api.NewSecret("mp_ui_")}
	keyFile := ""
	if !inMemory {
		d.passwordsPath, keyFile = filepath.Join(dataDir, "passwords"), filepath.Join(dataDir, "idp-key.pem")
	}
	var err error
	if d.passwords, err = devidp.LoadOrCreatePasswords(d.passwordsPath, names); err != nil {
		return nil, err
	}
	users := make([]devidp.User, len(tokens))
	for i, t := range tokens {
		users[i] = devidp.User{Name: t.Name, Email: t.Name + "@modelplane.dev", Password: d.passwords[t.Name], Teams: t.Teams, Roles: []string{t.Role}}
	}
	uiURL := "http://" + net.JoinHostPort(uiHost, fmt.Sprint(uiPort))
	p, err := devidp.New(ctx, devidp.Config{Issuer: d.issuer, Users: users, KeyFile: keyFile, Clients: []devidp.Client{
		{ID: devUIClient, Secret: d.uiSecret, RedirectURIs: []string{uiURL + "/auth/sso/callback"}},
		{ID: devConsoleClient, RedirectURIs: []string{"http://" + apiAddr + "/auth/callback"}},
	}})
	if err != nil {
		return nil, fmt.Errorf("dev OIDC provider: %w", err)
	}
	stop, err := devidp.Serve(ctx, addr, p)
	if err != nil {
		return nil, fmt.Errorf("dev OIDC provider on %s: %w", addr, err)
	}
	d.stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = stop(sctx)
	}
	return d, nil
}

// devBanner is what `modelplane dev` prints once it is ready.
type devBanner struct {
	apiAddr, uiURL, temporalAddr, idpURL, dataDir string
	inMemory                                      bool
	tokens                                        []api.Token
	tokensPath                                    string
	passwords                                     map[string]string
	passwordsPath                                 string
}

func printDev(cmd *cobra.Command, b devBanner, took time.Duration) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "modelplane dev is ready in %s\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(out, "  Console         http://%s/   (sign in as a dev user below)\n", b.apiAddr)
	fmt.Fprintf(out, "  API             http://%s/v1   (OpenAPI: /openapi.json)\n", b.apiAddr)
	fmt.Fprintf(out, "  Temporal Web UI %s   (sign in: approvers sign off as themselves)\n", b.uiURL)
	fmt.Fprintf(out, "  MCP gateway     http://%s/mcp/{server}[@channel]   (agents call approved tools here with their token)\n", b.apiAddr)
	fmt.Fprintf(out, "  Example MCP     http://%s%s   (the notes server of the MCP quick start)\n", b.apiAddr, exampleMCPPath)
	fmt.Fprintf(out, "  Sign-in (OIDC)  %s\n", b.idpURL)
	fmt.Fprintf(out, "  Temporal        %s (namespace default; every caller is verified)\n", b.temporalAddr)
	if b.inMemory {
		fmt.Fprintf(out, "  Data            in memory (gone when this process exits)\n")
	} else {
		fmt.Fprintf(out, "  Data            %s/ (temporal.db, modelplane.db)\n", b.dataDir)
	}
	fmt.Fprintf(out, "  Targets         staging, prod, dev, prod-eu, prod-us (simulated provider)\n\n")
	fmt.Fprint(out, "  Dev users: API token (also in ")
	fmt.Fprint(out, orMemory(b.tokensPath), ") and sign-in password for the console and Web UI (also in ", orMemory(b.passwordsPath), "):\n")
	for _, t := range b.tokens {
		fmt.Fprintf(out, "    %-6s %-9s %-7s %s  password %s\n", t.Name, t.Role, strings.Join(t.Teams, ","), t.Secret, b.passwords[t.Name])
	}
	fmt.Fprintf(out, "\n  Approve in the console: open http://%s/, sign in as bob, Approvals → Approve.\n", b.apiAddr)
	fmt.Fprintf(out, "  Or in the Temporal Web UI: open %s, sign in (e.g. as bob), open promotion/<id>,\n", b.uiURL)
	fmt.Fprintln(out, `  More Actions → Send a Signal → approve with {"decision": "approve", "comment": "..."}.`)
	fmt.Fprintln(out, "  The vote counts for the signed-in user, verified by the Temporal frontend, whatever name a payload types.")
}

func orMemory(path string) string {
	if path == "" {
		return "memory only"
	}
	return path
}

func devCmd() *cobra.Command {
	var (
		c                    common
		dataDir, uiHost      string
		apiAddr              string
		uiPort, temporalPort int
		inMemory             bool
		idpAddr              string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal server, Web UI, worker, API and the simulated provider",
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			cfg, err := c.load()
			if err != nil {
				return err
			}
			cfg.API.Addr = apiAddr
			if c.logFormat == "" && os.Getenv("MODELPLANE_LOG_FORMAT") == "" {
				cfg.Log.Format = "text" // a terminal, not a log shipper
			}
			ctx, stop := signalContext()
			defer stop()
			log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, "warn")
			if err != nil {
				return err
			}
			tokensPath := ""
			cfg.DB = ":memory:"
			temporalDB := ""
			if !inMemory {
				if err := os.MkdirAll(dataDir, 0o755); err != nil {
					return err
				}
				cfg.DB, temporalDB, tokensPath = filepath.Join(dataDir, "modelplane.db"), filepath.Join(dataDir, "temporal.db"), filepath.Join(dataDir, "tokens")
			}
			tokens, err := devTokens(tokensPath)
			if err != nil {
				return err
			}
			// People sign in to the Web UI through a real OIDC provider; the
			// Temporal frontend verifies their tokens with the same identity
			// chain as the API and stamps who sent each signal and update.
			idp, err := startDevIdP(ctx, idpAddr, dataDir, inMemory, tokens, uiHost, uiPort, apiAddr)
			if err != nil {
				return err
			}
			defer idp.stop()
			// Dev trusts its own provider: the Web UI signs people in there.
			cfg.OIDC = config.OIDC{Issuer: idp.issuer, Audience: []string{devUIClient, devConsoleClient}}
			auth, _, err := buildAuthenticator(ctx, cfg, tokens)
			if err != nil {
				return err
			}
			serviceKey := api.NewSecret("mp_service_")
			ts, err := temporalserver.Start(temporalserver.Config{DBPath: temporalDB, Port: temporalPort,
				Auth: &temporalserver.Auth{Users: auth, ServiceKeyDigests: []string{identity.Digest(serviceKey)}}})
			if err != nil {
				return err
			}
			defer ts.Stop()
			cfg.Temporal.Address, cfg.Temporal.Namespace = ts.HostPort, "default"
			b, err := connectAs(ctx, log, cfg, serviceKey, true)
			if err != nil {
				return err
			}
			defer b.close()
			b.devTokens = tokens
			if b.mcpRegistry == nil {
				// No registry runs in dev: publishing goes to one in memory
				// that keeps the official registry's rules.
				b.mcpRegistry = mcpregistry.NewMemory()
			}
			// The example MCP server the README's MCP quick start publishes.
			ex := notes.New()
			b.devMounts = map[string]http.Handler{exampleMCPPath: ex.Handler(), exampleMCPPath + "/drift": ex.DriftHandler()}
			b.consoleOpts = &consoleOptions{oidc: &console.OIDC{Issuer: idp.issuer, ClientID: devConsoleClient},
				temporalUIURL: "http://" + net.JoinHostPort(uiHost, fmt.Sprint(uiPort))}
			w, err := b.startWorker(nil)
			if err != nil {
				return err
			}
			defer w.Stop()
			if err := seedDev(ctx, b.store); err != nil {
				return err
			}
			// The API comes up last, so a ready API means everything is ready.
			webUI, err := ui.Start(ui.Config{Host: uiHost, Port: uiPort, TemporalAddress: ts.HostPort, Namespace: "default", CodecEndpoint: codecEndpoint(b, apiAddr),
				OIDC: &ui.OIDC{Issuer: idp.issuer, ClientID: devUIClient, ClientSecret: idp.uiSecret}})
			if err != nil {
				return err
			}
			defer webUI.Stop()
			srv, err := b.startAPI(auth, b.sim)
			if err != nil {
				return err
			}
			printDev(cmd, devBanner{apiAddr: apiAddr, uiURL: webUI.URL, temporalAddr: ts.HostPort, idpURL: idp.issuer, dataDir: dataDir, inMemory: inMemory,
				tokens: tokens, tokensPath: tokensPath, passwords: idp.passwords, passwordsPath: idp.passwordsPath}, time.Since(start))
			select {
			case <-ctx.Done():
			case err := <-webUI.Err():
				if err != nil {
					// Approvers sign off there: dev without it is not dev.
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "modelplane dev: stopping (in-flight activities finish first)")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		},
	}
	c.add(cmd, false)
	cmd.Flags().StringVar(&dataDir, "data-dir", ".modelplane", "where the Temporal and metadata SQLite files and dev tokens live")
	cmd.Flags().BoolVar(&inMemory, "in-memory", false, "keep nothing on disk (a throwaway run)")
	cmd.Flags().StringVar(&apiAddr, "api-addr", "127.0.0.1:8080", "API listen address")
	cmd.Flags().StringVar(&uiHost, "ui-host", "127.0.0.1", "Temporal Web UI host")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "Temporal Web UI port")
	cmd.Flags().IntVar(&temporalPort, "temporal-port", 7233, "Temporal frontend port (the next 9 ports are reserved for its other services)")
	cmd.Flags().StringVar(&idpAddr, "idp-addr", "127.0.0.1:8234", "listen address of the dev OIDC provider people sign in with")
	return cmd
}

// codecEndpoint is where the embedded Web UI decodes encrypted payloads.
func codecEndpoint(b *backend, apiAddr string) string {
	if b.keys == nil {
		return ""
	}
	return "http://" + apiAddr + "/codec"
}

// exampleMCPPath is where dev serves the example notes MCP server.
const exampleMCPPath = "/examples/mcp/notes"

// devTokens reuses the tokens of an earlier run so scripts keep working across restarts.
func devTokens(path string) ([]api.Token, error) {
	if path != "" {
		if list, err := api.LoadTokens(path, ""); err == nil && len(list) > 0 {
			return list, nil
		}
	}
	// Dev users share the team the quick start uses; admin crosses teams and
	// the auditor reads everything.
	team := []string{"growth"}
	list := []api.Token{
		{Name: "alice", Role: api.RoleRequester, Secret: api.NewSecret("mp_alice_"), Teams: team},
		{Name: "bob", Role: api.RoleApprover, Secret: api.NewSecret("mp_bob_"), Teams: team},
		{Name: "carol", Role: api.RoleApprover, Secret: api.NewSecret("mp_carol_"), Teams: team},
		{Name: "admin", Role: api.RoleAdmin, Secret: api.NewSecret("mp_admin_")},
		{Name: "audrey", Role: api.RoleAuditor, Secret: api.NewSecret("mp_audrey_")},
		// dave approves for another team: team isolation shows in dev too.
		{Name: "dave", Role: api.RoleApprover, Secret: api.NewSecret("mp_dave_"), Teams: []string{"risk"}},
	}
	if path != "" {
		if err := api.WriteTokens(path, list); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// seedDev creates the simulated targets on a fresh dev store.
func seedDev(ctx context.Context, st *store.Store) error {
	ts, err := st.ListTargets(ctx)
	if err != nil || len(ts) > 0 {
		return err
	}
	f := func(v float64) *float64 { return &v }
	for _, t := range []modelplane.Target{
		{Name: "staging", Provider: sim.Name, Environment: "staging", GuardInterval: modelplane.Duration(5 * time.Second),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500), MaxDrift: f(0.3)}}},
		{Name: "prod", Provider: sim.Name, Environment: "production", GuardInterval: modelplane.Duration(5 * time.Second),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.02), MaxLatencyP99Ms: f(300), MaxDrift: f(0.25)}},
			Metrics:  modelplane.MetricBounds{Min: map[string]float64{"auc": 0.8}}},
		// The example pipeline's (examples/pipeline): dev, then prod in two regions.
		{Name: "dev", Provider: sim.Name, Environment: "dev", GuardInterval: modelplane.Duration(5 * time.Second),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500)}}},
		{Name: "prod-eu", Provider: sim.Name, Environment: "production", GuardInterval: modelplane.Duration(5 * time.Second),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.02), MaxLatencyP99Ms: f(300), MaxDrift: f(0.25)}}},
		{Name: "prod-us", Provider: sim.Name, Environment: "production", GuardInterval: modelplane.Duration(5 * time.Second),
			Analysis: modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.02), MaxLatencyP99Ms: f(300), MaxDrift: f(0.25)}}},
	} {
		if _, err := st.CreateTarget(ctx, t); err != nil {
			return err
		}
	}
	return nil
}
