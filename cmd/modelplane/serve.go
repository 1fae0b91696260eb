package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/codec"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/promotions"
	"github.com/modelplane/modelplane/providers/kserve"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/providers/vertex"
	"github.com/modelplane/modelplane/sinks"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
	mpworker "github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
)

// backend is what server, worker and dev share: the store, providers, a
// Temporal client, the policy engine and telemetry.
type backend struct {
	cfg      config.Config
	store    *store.Store
	sim      *sim.Provider
	provs    modelplane.ProviderSet
	temporal client.Client
	log      *slog.Logger
	metrics  *telemetry.Metrics
	policy   *policy.Engine
	keys     *codec.Keyring
	// mlflow is set when MLFLOW_TRACKING_URI is.
	mlflow *mlflow.Client
	// mcpRegistry is set when MODELPLANE_MCP_REGISTRY_URL is (dev keeps
	// one in memory). An interface, so nil stays nil.
	mcpRegistry activities.Registry
	mcpEvery    time.Duration
	stopTracing func(context.Context) error
	stopPolicy  context.CancelFunc
	// consoleOpts is dev's sign-in client for the console; closers run at close.
	consoleOpts *consoleOptions
	closers     []func()
	secrets     config.Secrets
	// devTokens are dev's users, also accepted by the MCP gateway;
	// devMounts are dev's extra handlers on the API port (the example MCP server).
	devTokens []api.Token
	devMounts map[string]http.Handler
}

// connect wires a server or worker: real platforms only, unless the tests
// that run them as processes ask for the simulator (sim.EnvForTests).
func connect(ctx context.Context, log *slog.Logger, cfg config.Config, popts ...policy.Option) (*backend, error) {
	return connectAs(ctx, log, cfg, "", os.Getenv(sim.EnvForTests) == "1", popts...)
}

// connectAs is connect presenting serviceKey to the Temporal frontend
// (modelplane dev's own frontend, which verifies every caller); empty means
// the configured API key, if any. simulator serves the sim provider (dev);
// without it a sim target is refused.
func connectAs(ctx context.Context, log *slog.Logger, cfg config.Config, serviceKey string, simulator bool, popts ...policy.Option) (_ *backend, err error) {
	b := &backend{cfg: cfg, log: log, metrics: telemetry.NewMetrics()}
	// One way out on failure: close releases whatever was opened so far.
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.secrets, err = cfg.Secrets(os.Getenv); err != nil {
		return nil, err
	}
	if b.keys, err = codec.LoadKeys(os.Getenv(codec.EnvKeys), cfg.Codec.KeysFile); err != nil {
		return nil, err
	}
	if b.policy, err = policy.New(cfg.Policy.Dir, popts...); err != nil {
		return nil, fmt.Errorf("policy %s: %w", cfg.Policy.Dir, err)
	}
	if cfg.Policy.Dir != "" {
		pctx, cancel := context.WithCancel(context.Background())
		b.stopPolicy = cancel
		go b.policy.Watch(pctx, cfg.Policy.ReloadEvery.D(), func(err error) { log.Error("policy reload refused; the last good policy stays", "error", err) })
	}
	b.stopTracing, err = telemetry.SetupTracing(ctx, telemetry.TracingConfig{Exporter: cfg.Tracing.Exporter, Endpoint: cfg.Tracing.Endpoint, Insecure: cfg.Tracing.Insecure, SampleRatio: cfg.Tracing.SampleRatio})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if b.store, err = store.Open(cfg.DB); err != nil {
		return nil, err
	}
	if b.sim, err = sim.New(b.store.DB(), b.store); err != nil {
		return nil, err
	}
	apiKey := b.secrets.TemporalAPIKey
	if serviceKey != "" {
		apiKey = serviceKey
	}
	opts, err := mpworker.ClientOptions(cfg.Temporal, apiKey)
	if err != nil {
		return nil, err
	}
	opts.Logger = tlog.NewStructuredLogger(log.With("component", "temporal-sdk"))
	opts.MetricsHandler = b.metrics.TemporalHandler()
	if b.keys != nil {
		opts.DataConverter = codec.NewDataConverter(b.keys)
		opts.FailureConverter = codec.FailureConverter(opts.DataConverter)
	}
	if cfg.Tracing.Exporter == "otlp" {
		ti, err := telemetry.TemporalTracingInterceptor()
		if err != nil {
			return nil, err
		}
		opts.Interceptors = append(opts.Interceptors, ti)
	}
	if b.temporal, err = client.DialContext(ctx, opts); err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.Temporal.Address, err)
	}
	// Cloud providers build their clients per target on first use, from the
	// standard credential chains (AWS default chain, Google ADC, kubeconfig
	// or in-cluster), so a server without cloud credentials still starts.
	var simulated modelplane.Provider = sim.Refused{}
	if simulator {
		simulated = b.sim
	}
	b.provs = modelplane.ProviderSet{
		sim.Name:       simulated,
		sagemaker.Name: sagemaker.New(sagemaker.Options{}),
		vertex.Name:    vertex.New(vertex.Options{}),
		kserve.Name:    kserve.New(kserve.Options{}),
	}
	if u := cfg.MCP.URL; u != "" {
		// A static publish token (the registry's own login flows mint short-lived ones).
		b.mcpRegistry = mcpregistry.New(u, mcpregistry.StaticToken(b.secrets.MCPRegistryToken))
	}
	b.mcpEvery = cfg.MCP.RevalidateEvery.D()
	if cfg.MLflow.TrackingURI != "" {
		getenv := func(k string) string {
			if k == "MLFLOW_TRACKING_URI" {
				return cfg.MLflow.TrackingURI
			}
			return os.Getenv(k)
		}
		o, err := mlflow.FromEnv(getenv)
		if err == nil {
			b.mlflow, err = mlflow.New(o)
		}
		if err != nil {
			return nil, fmt.Errorf("MLflow: %w", err)
		}
		if err := b.scheduleMLflowReconcile(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// scheduleMLflowReconcile keeps a Temporal schedule that reconciles MLflow
// with the targets' auto_promote rules (webhooks are best effort).
func (b *backend) scheduleMLflowReconcile(ctx context.Context) error {
	every := b.cfg.MLflow.ReconcileEvery.D()
	if every == 0 {
		every = 5 * time.Minute
	}
	_, err := b.temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      workflows.MLflowReconcileSchedule,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{ID: workflows.MLflowReconcileSchedule, Workflow: workflows.MLflowReconcileWorkflow, TaskQueue: b.cfg.Worker.TaskQueue,
			StaticSummary: "Reconcile MLflow versions with auto_promote rules"},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("MLflow reconciliation schedule: %w", err)
	}
	return nil
}

func (b *backend) close() {
	for _, c := range b.closers {
		c()
	}
	if b.temporal != nil {
		b.temporal.Close()
	}
	if b.stopPolicy != nil {
		b.stopPolicy()
	}
	if b.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.stopTracing(ctx)
		cancel()
	}
	if b.store != nil {
		b.store.Close()
	}
}

// promotions is the one promotion service the API and the worker share.
func (b *backend) promotions() *promotions.Service {
	return &promotions.Service{Store: b.store, Providers: b.provs, Temporal: b.temporal, TaskQueue: b.cfg.Worker.TaskQueue, MLflow: b.mlflow}
}

func (b *backend) activities() (*activities.Activities, error) {
	a := &activities.Activities{Store: b.store, Providers: b.provs, Temporal: b.temporal, HTTP: &http.Client{Timeout: 10 * time.Second}, MLflow: b.mlflow,
		MCPRegistry: b.mcpRegistry, MCPRevalidateEvery: b.mcpEvery, Policy: b.policy, Metrics: b.metrics,
		Promotions: b.promotions()}
	ev := b.cfg.Events
	if ev.Webhook != "" {
		a.Sinks = append(a.Sinks, &sinks.HTTP{URL: ev.Webhook, Secret: []byte(b.secrets.EventsWebhookSecret)})
	}
	if ev.NATS != "" {
		ns, err := sinks.NewNATS(context.Background(), ev.NATS, ev.NATSStream, ev.NATSPrefix)
		if err != nil {
			return nil, err
		}
		a.Sinks = append(a.Sinks, ns)
	}
	return a, nil
}

func (b *backend) startWorker(directory func(string) (modelplane.Principal, bool)) (sdkworker.Worker, error) {
	a, err := b.activities()
	if err != nil {
		return nil, err
	}
	a.Directory = directory
	o := mpworker.FromConfig(b.cfg.Worker)
	w := mpworker.New(b.temporal, a, o)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return w, nil
}

// authenticator builds the API's identity chain: the static token file
// (digests), MODELPLANE_TOKENS (plaintext, for CI), extra (dev tokens) and OIDC.
func (b *backend) authenticator(ctx context.Context, extra []api.Token) (identity.Authenticator, *identity.Tokens, error) {
	return buildAuthenticator(ctx, b.cfg, extra)
}

// buildAuthenticator is the identity chain the config describes: the API
// uses it, and so does the Temporal frontend that modelplane runs.
func buildAuthenticator(ctx context.Context, cfg config.Config, extra []api.Token) (identity.Authenticator, *identity.Tokens, error) {
	var chain []identity.Authenticator
	if f := cfg.API.TokensFile; f != "" {
		t, err := identity.LoadTokenFile(f)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, t)
	}
	list, err := api.ParseTokensEnv(os.Getenv("MODELPLANE_TOKENS"))
	if err != nil {
		return nil, nil, err
	}
	list = append(list, extra...)
	var plain *identity.Tokens
	if len(list) > 0 {
		if plain, err = api.NewTokens(list); err != nil {
			return nil, nil, err
		}
		chain = append(chain, plain)
	}
	if o := cfg.OIDC; o.Issuer != "" {
		oidc, err := identity.NewOIDC(ctx, identity.OIDCConfig{Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL,
			ClaimMapping: identity.ClaimMapping{UserClaim: o.UserClaim, TeamsClaim: o.TeamsClaim, RolesClaim: o.RolesClaim, TeamPrefix: o.TeamPrefix, RoleMap: o.RoleMap, DefaultRoles: o.DefaultRoles}})
		if err != nil {
			return nil, nil, fmt.Errorf("oidc: %w", err)
		}
		chain = append(chain, oidc)
	}
	if len(chain) == 0 {
		return nil, nil, errors.New("no way to authenticate callers: set api.tokens_file (see `modelplane token create`), MODELPLANE_TOKENS=name:role:token[:team+team],... or oidc.issuer")
	}
	return identity.Chain(chain...), plain, nil
}

// startAPI listens and serves the API (plus /metrics and, with codec keys,
// /codec for the Web UI) until Shutdown.
func (b *backend) startAPI(auth identity.Authenticator, devSim *sim.Provider) (*http.Server, error) {
	s := &api.Server{Store: b.store, Temporal: b.temporal, Auth: auth, Policy: b.policy, Metrics: b.metrics, TaskQueue: b.cfg.Worker.TaskQueue,
		Providers: b.provs, Sim: devSim, Logger: b.log,
		AlertLabels: api.AlertLabels{Model: b.cfg.Alerts.ModelLabel, Target: b.cfg.Alerts.TargetLabel, Version: b.cfg.Alerts.VersionLabel},
		MLflow:      b.mlflow, MLflowWebhookSecret: []byte(b.secrets.MLflowWebhookSecret),
		Promotions: b.promotions()}
	mux := http.NewServeMux()
	// The API process reports promotions by stage from the store, read at
	// scrape time (the worker's /metrics leaves the gauge empty, so the
	// series is not counted twice).
	metrics := b.metrics.Handler()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if byStage, err := b.store.RunningByStage(ctx); err == nil {
			b.metrics.SetPromotionsActive(byStage)
		} else {
			b.log.Warn("promotions by stage for /metrics", "error", err)
		}
		metrics.ServeHTTP(w, r)
	})
	if b.keys != nil {
		// The Web UI decodes payloads here; only authenticated readers may.
		mux.Handle("/codec/", http.StripPrefix("/codec", codec.Handler(b.keys, func(r *http.Request) error {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return errors.New("missing bearer token")
			}
			_, err := auth.Authenticate(r.Context(), tok)
			return err
		}, b.cfg.Codec.AllowOrigins)))
	}
	for p, h := range b.devMounts {
		mux.Handle(p, h)
	}
	if err := b.mountGateway(context.Background(), mux); err != nil {
		return nil, err
	}
	if err := b.mountConsole(mux, s.Handler(), auth); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", b.cfg.API.Addr)
	if err != nil {
		return nil, fmt.Errorf("API: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("API stopped", "error", err)
		}
	}()
	return srv, nil
}

// serveWorkerMetrics exposes the worker's /metrics and /healthz.
func (b *backend) serveWorkerMetrics() (*http.Server, error) {
	if b.cfg.Worker.MetricsAddr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", b.metrics.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	l, err := net.Listen("tcp", b.cfg.Worker.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// common are the flags every long-running command takes; a flag given on
// the command line wins over the environment, which wins over the file.
type common struct {
	file                            string
	db, temporalAddr, namespace     string
	addr, tokensFile                string
	logFormat                       string
	eventsWebhook, eventsNATS       string
	alertModel, alertTarget, alertV string
}

func (c *common) add(cmd *cobra.Command, api bool) {
	f := cmd.Flags()
	f.StringVar(&c.file, "config", os.Getenv("MODELPLANE_CONFIG"), "config file (YAML); environment variables MODELPLANE_* override it, flags override both")
	f.StringVar(&c.db, "db", "", "metadata store: a SQLite path or a postgres:// URL (db)")
	f.StringVar(&c.temporalAddr, "temporal-address", "", "Temporal frontend host:port (temporal.address)")
	f.StringVar(&c.namespace, "namespace", "", "Temporal namespace (temporal.namespace)")
	f.StringVar(&c.logFormat, "log-format", "", "json or text (log.format)")
	f.StringVar(&c.eventsWebhook, "events-webhook", "", "POST lifecycle CloudEvents here (events.webhook)")
	f.StringVar(&c.eventsNATS, "events-nats", "", "publish lifecycle CloudEvents to this NATS server (events.nats)")
	if api {
		f.StringVar(&c.addr, "addr", "", "API listen address (api.addr)")
		f.StringVar(&c.tokensFile, "tokens-file", "", "static API tokens, JSON with SHA-256 digests (api.tokens_file)")
		f.StringVar(&c.alertModel, "alert-label-model", "", "Alertmanager label naming the model (alerts.model_label)")
		f.StringVar(&c.alertTarget, "alert-label-target", "", "Alertmanager label naming the target (alerts.target_label)")
		f.StringVar(&c.alertV, "alert-label-version", "", "Alertmanager label naming the version (alerts.version_label)")
	}
}

func (c *common) load() (config.Config, error) {
	cfg, err := config.Load(c.file, os.Getenv)
	if err != nil {
		return cfg, err
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{c.db, &cfg.DB}, {c.temporalAddr, &cfg.Temporal.Address}, {c.namespace, &cfg.Temporal.Namespace}, {c.addr, &cfg.API.Addr},
		{c.tokensFile, &cfg.API.TokensFile}, {c.logFormat, &cfg.Log.Format}, {c.eventsWebhook, &cfg.Events.Webhook}, {c.eventsNATS, &cfg.Events.NATS},
		{c.alertModel, &cfg.Alerts.ModelLabel}, {c.alertTarget, &cfg.Alerts.TargetLabel}, {c.alertV, &cfg.Alerts.VersionLabel}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	return cfg, cfg.Validate()
}

func serverCmd() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API against an external Temporal cluster",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
			if err != nil {
				return err
			}
			b, err := connect(ctx, log, cfg)
			if err != nil {
				return err
			}
			defer b.close()
			auth, _, err := b.authenticator(ctx, nil)
			if err != nil {
				return err
			}
			srv, err := b.startAPI(auth, nil)
			if err != nil {
				return err
			}
			log.Info("modelplane API listening", "addr", "http://"+cfg.API.Addr, "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace, "policy", b.policy.Version())
			<-ctx.Done()
			log.Info("modelplane API stopping: finishing in-flight requests", "timeout", cfg.API.ShutdownTimeout.D().String())
			sctx, cancel := context.WithTimeout(context.Background(), cfg.API.ShutdownTimeout.D())
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	c.add(cmd, true)
	return cmd
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func workerCmd() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (workflows and activities) against an external Temporal cluster",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			log, err := telemetry.NewLogger(os.Stderr, cfg.Log.Format, cfg.Log.Level)
			if err != nil {
				return err
			}
			b, err := connect(ctx, log, cfg)
			if err != nil {
				return err
			}
			defer b.close()
			w, err := b.startWorker(nil)
			if err != nil {
				return err
			}
			msrv, err := b.serveWorkerMetrics()
			if err != nil {
				return err
			}
			log.Info("modelplane worker running", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace, "task_queue", cfg.Worker.TaskQueue, "policy", b.policy.Version())
			<-ctx.Done()
			log.Info("modelplane worker stopping: in-flight activities finish first", "timeout", cfg.Worker.StopTimeout.D().String())
			w.Stop() // stops polling, then waits for in-flight activities up to the stop timeout
			if msrv != nil {
				_ = msrv.Close()
			}
			return nil
		},
	}
	c.add(cmd, false)
	return cmd
}
