package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/gateway"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
)

// gatewayDeps is what the MCP gateway needs: no Temporal, only the store
// (channels, contracts, the audit chain), the policy and the metrics.
type gatewayDeps struct {
	cfg     config.Config
	store   *store.Store
	policy  *policy.Engine
	metrics *telemetry.Metrics
	log     *slog.Logger
	extra   []api.Token // dev's users
}

// newGateway builds the gateway serving at base (scheme://host[:port]).
// Its OIDC tokens must name base + /mcp as their audience: a token minted
// for the API or the console is refused here (no token passthrough).
func newGateway(ctx context.Context, d gatewayDeps, base string) (*gateway.Gateway, error) {
	gc := d.cfg.Gateway
	if gc.PublicURL != "" {
		base = gc.PublicURL
	}
	resource := strings.TrimSuffix(base, "/") + "/mcp"
	cfg := d.cfg
	cfg.OIDC.Audience = []string{resource}
	auth, _, err := buildAuthenticator(ctx, cfg, d.extra)
	if err != nil {
		return nil, err
	}
	var rules gateway.Rules
	if gc.RulesFile != "" {
		if rules, err = gateway.LoadRules(gc.RulesFile); err != nil {
			return nil, err
		}
	}
	var servers []string
	if d.cfg.OIDC.Issuer != "" {
		servers = []string{d.cfg.OIDC.Issuer}
	}
	return gateway.New(gateway.Config{Store: d.store, Policy: d.policy, Auth: auth, Resource: resource, AuthorizationServers: servers,
		Content: rules.Content, Budgets: rules.Budgets, Upstreams: rules.Upstreams, DefaultChannel: gc.DefaultChannel,
		Refresh: gc.Refresh.D(), Registerer: d.metrics.Registry, Logger: d.log, Getenv: os.Getenv})
}

// mountGateway serves /mcp/ and its protected resource metadata beside the API.
func (b *backend) mountGateway(ctx context.Context, mux *http.ServeMux) error {
	if b.cfg.Gateway.Disabled {
		return nil
	}
	base := b.cfg.API.PublicURL
	if base == "" {
		base = "http://" + b.cfg.API.Addr
	}
	g, err := newGateway(ctx, gatewayDeps{cfg: b.cfg, store: b.store, policy: b.policy, metrics: b.metrics, log: b.log, extra: b.devTokens}, base)
	if err != nil {
		return fmt.Errorf("MCP gateway: %w", err)
	}
	b.closers = append(b.closers, func() { _ = g.Close() })
	mux.Handle("/mcp/", g)
	mux.Handle(gateway.MetadataPath, g)
	return nil
}

func gatewayCmd() *cobra.Command {
	var c common
	var addr string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the MCP gateway alone: /mcp/{server}[@channel] for agents, against the same database and policy",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			if addr != "" {
				cfg.Gateway.Addr = addr
			}
			ctx, stop := signalContext()
			defer stop()
			log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
			if err != nil {
				return err
			}
			pol, err := policy.New(cfg.Policy.Dir)
			if err != nil {
				return fmt.Errorf("policy %s: %w", cfg.Policy.Dir, err)
			}
			if cfg.Policy.Dir != "" {
				go pol.Watch(ctx, cfg.Policy.ReloadEvery.D(), func(err error) { log.Error("policy reload refused; the last good policy stays", "error", err) })
			}
			st, err := store.Open(cfg.DB)
			if err != nil {
				return err
			}
			defer st.Close()
			m := telemetry.NewMetrics()
			g, err := newGateway(ctx, gatewayDeps{cfg: cfg, store: st, policy: pol, metrics: m, log: log}, "http://"+cfg.Gateway.Addr)
			if err != nil {
				return err
			}
			defer g.Close()
			mux := http.NewServeMux()
			mux.Handle("/mcp/", g)
			mux.Handle(gateway.MetadataPath, g)
			mux.Handle("/metrics", m.Handler())
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
			l, err := net.Listen("tcp", cfg.Gateway.Addr)
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("gateway stopped", "error", err)
				}
			}()
			log.Info("modelplane MCP gateway listening", "addr", "http://"+cfg.Gateway.Addr+"/mcp/", "policy", pol.Version())
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), cfg.API.ShutdownTimeout.D())
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	c.add(cmd, false)
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (gateway.addr)")
	return cmd
}
