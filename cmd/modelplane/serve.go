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
	"path/filepath"
	"syscall"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/providers/kserve"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/providers/vertex"
	"github.com/modelplane/modelplane/sinks"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/temporalserver"
	"github.com/modelplane/modelplane/ui"
	mpworker "github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
)

// backend is what server, worker and dev share: the store, providers and a Temporal client.
type backend struct {
	store    *store.Store
	sim      *sim.Provider
	provs    modelplane.ProviderSet
	temporal client.Client
	log      *slog.Logger
	// mlflow is set when MLFLOW_TRACKING_URI is.
	mlflow *mlflow.Client
	// mcpRegistry is set when MODELPLANE_MCP_REGISTRY_URL is.
	mcpRegistry *mcpregistry.Client
	mcpEvery    time.Duration
}

func connect(ctx context.Context, log *slog.Logger, dsn, temporalAddr, namespace string) (*backend, error) {
	st, err := store.Open(dsn)
	if err != nil {
		return nil, err
	}
	sp, err := sim.New(st.DB(), st)
	if err != nil {
		st.Close()
		return nil, err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: temporalAddr, Namespace: namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("connect to Temporal at %s: %w", temporalAddr, err)
	}
	// Cloud providers build their clients per target on first use, from the
	// standard credential chains (AWS default chain, Google ADC, kubeconfig
	// or in-cluster), so a server without cloud credentials still starts.
	provs := modelplane.ProviderSet{
		sim.Name:       sp,
		sagemaker.Name: sagemaker.New(sagemaker.Options{}),
		vertex.Name:    vertex.New(vertex.Options{}),
		kserve.Name:    kserve.New(kserve.Options{}),
	}
	b := &backend{store: st, sim: sp, provs: provs, temporal: c, log: log}
	if u := os.Getenv("MODELPLANE_MCP_REGISTRY_URL"); u != "" {
		// A static publish token (the registry's own login flows mint short-lived ones).
		b.mcpRegistry = mcpregistry.New(u, mcpregistry.StaticToken(os.Getenv("MODELPLANE_MCP_REGISTRY_TOKEN")))
	}
	if v := os.Getenv("MODELPLANE_MCP_REVALIDATE_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			b.close()
			return nil, fmt.Errorf("MODELPLANE_MCP_REVALIDATE_EVERY: want a duration of at least 10s, got %q", v)
		}
		b.mcpEvery = d
	}
	if os.Getenv("MLFLOW_TRACKING_URI") != "" {
		o, err := mlflow.FromEnv(os.Getenv)
		if err == nil {
			b.mlflow, err = mlflow.New(o)
		}
		if err != nil {
			b.close()
			return nil, fmt.Errorf("MLflow: %w", err)
		}
		if err := b.scheduleMLflowReconcile(ctx); err != nil {
			b.close()
			return nil, err
		}
	}
	return b, nil
}

// scheduleMLflowReconcile keeps a Temporal schedule that reconciles MLflow
// with the targets' auto_promote rules (webhooks are best effort).
func (b *backend) scheduleMLflowReconcile(ctx context.Context) error {
	every := 5 * time.Minute
	if v := os.Getenv("MODELPLANE_MLFLOW_RECONCILE_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			return fmt.Errorf("MODELPLANE_MLFLOW_RECONCILE_EVERY: want a duration of at least 10s, got %q", v)
		}
		every = d
	}
	_, err := b.temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      workflows.MLflowReconcileSchedule,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{ID: workflows.MLflowReconcileSchedule, Workflow: workflows.MLflowReconcileWorkflow, TaskQueue: workflows.TaskQueue,
			StaticSummary: "Reconcile MLflow versions with auto_promote rules"},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("MLflow reconciliation schedule: %w", err)
	}
	return nil
}

func (b *backend) close() {
	b.temporal.Close()
	b.store.Close()
}

func (b *backend) activities(ev eventFlags) (*activities.Activities, error) {
	a := &activities.Activities{Store: b.store, Providers: b.provs, Temporal: b.temporal, HTTP: &http.Client{Timeout: 10 * time.Second}, MLflow: b.mlflow,
		MCPRegistry: b.mcpRegistry, MCPRevalidateEvery: b.mcpEvery}
	if ev.webhook != "" {
		a.Sinks = append(a.Sinks, &sinks.HTTP{URL: ev.webhook, Secret: []byte(os.Getenv("MODELPLANE_EVENTS_WEBHOOK_SECRET"))})
	}
	if ev.nats != "" {
		ns, err := sinks.NewNATS(context.Background(), ev.nats, ev.stream, ev.prefix)
		if err != nil {
			return nil, err
		}
		a.Sinks = append(a.Sinks, ns)
	}
	return a, nil
}

// eventFlags configure where lifecycle events go.
type eventFlags struct{ webhook, nats, stream, prefix string }

func (e *eventFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&e.webhook, "events-webhook", os.Getenv("MODELPLANE_EVENTS_WEBHOOK"), "POST lifecycle CloudEvents here (signed with MODELPLANE_EVENTS_WEBHOOK_SECRET)")
	cmd.Flags().StringVar(&e.nats, "events-nats", os.Getenv("MODELPLANE_EVENTS_NATS"), "publish lifecycle CloudEvents to this NATS server (JetStream)")
	cmd.Flags().StringVar(&e.stream, "events-nats-stream", envOr("MODELPLANE_EVENTS_NATS_STREAM", "MODELPLANE"), "JetStream stream")
	cmd.Flags().StringVar(&e.prefix, "events-nats-prefix", envOr("MODELPLANE_EVENTS_NATS_PREFIX", "modelplane.events"), "subject prefix")
}

func (b *backend) startWorker(ev eventFlags) (sdkworker.Worker, error) {
	a, err := b.activities(ev)
	if err != nil {
		return nil, err
	}
	w := mpworker.New(b.temporal, a, mpworker.Options{})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return w, nil
}

// startAPI listens on addr and serves the API until ctx ends.
func (b *backend) startAPI(addr string, id api.Identity, devSim *sim.Provider, labels api.AlertLabels) (*http.Server, error) {
	s := &api.Server{Store: b.store, Temporal: b.temporal, Identity: id, Providers: b.provs, Sim: devSim, Logger: b.log, AlertLabels: labels,
		MLflow: b.mlflow, MLflowWebhookSecret: []byte(os.Getenv("MODELPLANE_MLFLOW_WEBHOOK_SECRET"))}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("API: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("API stopped", "error", err)
		}
	}()
	return srv, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func tokensFrom(file string) (api.Identity, error) {
	list, err := api.LoadTokens(file, os.Getenv("MODELPLANE_TOKENS"))
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no API tokens: pass --tokens-file or set MODELPLANE_TOKENS=name:role:token,...")
	}
	return api.NewTokens(list)
}

func serverCmd() *cobra.Command {
	var addr, temporalAddr, namespace, dsn, tokensFile string
	var labels api.AlertLabels
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API against an external Temporal cluster",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			log := newLogger()
			id, err := tokensFrom(tokensFile)
			if err != nil {
				return err
			}
			b, err := connect(ctx, log, dsn, temporalAddr, namespace)
			if err != nil {
				return err
			}
			defer b.close()
			srv, err := b.startAPI(addr, id, nil, labels)
			if err != nil {
				return err
			}
			log.Info("modelplane API listening", "addr", "http://"+addr, "temporal", temporalAddr, "namespace", namespace)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "API listen address")
	addBackendFlags(cmd, &temporalAddr, &namespace, &dsn)
	cmd.Flags().StringVar(&tokensFile, "tokens-file", os.Getenv("MODELPLANE_TOKENS_FILE"), "file of \"name role token\" lines (also MODELPLANE_TOKENS)")
	addAlertFlags(cmd, &labels)
	return cmd
}

func addAlertFlags(cmd *cobra.Command, l *api.AlertLabels) {
	cmd.Flags().StringVar(&l.Model, "alert-label-model", "model", "Alertmanager label naming the model")
	cmd.Flags().StringVar(&l.Target, "alert-label-target", "target", "Alertmanager label naming the target")
	cmd.Flags().StringVar(&l.Version, "alert-label-version", "version", "Alertmanager label naming the version")
}

func addBackendFlags(cmd *cobra.Command, temporalAddr, namespace, dsn *string) {
	cmd.Flags().StringVar(temporalAddr, "temporal-address", envOr("MODELPLANE_TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port")
	cmd.Flags().StringVar(namespace, "namespace", envOr("MODELPLANE_NAMESPACE", "default"), "Temporal namespace")
	cmd.Flags().StringVar(dsn, "db", envOr("MODELPLANE_DB", ".modelplane/modelplane.db"), "metadata store: a SQLite path or a postgres:// URL")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func workerCmd() *cobra.Command {
	var temporalAddr, namespace, dsn string
	var ev eventFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (workflows and activities) against an external Temporal cluster",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			log := newLogger()
			b, err := connect(ctx, log, dsn, temporalAddr, namespace)
			if err != nil {
				return err
			}
			defer b.close()
			w, err := b.startWorker(ev)
			if err != nil {
				return err
			}
			log.Info("modelplane worker running", "temporal", temporalAddr, "namespace", namespace)
			<-ctx.Done()
			w.Stop() // lets in-flight activities finish (bounded by the stop timeout)
			return nil
		},
	}
	addBackendFlags(cmd, &temporalAddr, &namespace, &dsn)
	ev.add(cmd)
	return cmd
}

func devCmd() *cobra.Command {
	var (
		dataDir, apiAddr, uiHost string
		uiPort, temporalPort     int
		inMemory                 bool
		ev                       eventFlags
		labels                   api.AlertLabels
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal server, Web UI, worker, API and the simulated provider",
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			ctx, stop := signalContext()
			defer stop()
			log := newLogger()
			dbPath, temporalDB, tokensPath := ":memory:", "", ""
			if !inMemory {
				if err := os.MkdirAll(dataDir, 0o755); err != nil {
					return err
				}
				dbPath, temporalDB, tokensPath = filepath.Join(dataDir, "modelplane.db"), filepath.Join(dataDir, "temporal.db"), filepath.Join(dataDir, "tokens")
			}
			ts, err := temporalserver.Start(temporalserver.Config{DBPath: temporalDB, Port: temporalPort})
			if err != nil {
				return err
			}
			defer ts.Stop()
			b, err := connect(ctx, log, dbPath, ts.HostPort, "default")
			if err != nil {
				return err
			}
			defer b.close()
			w, err := b.startWorker(ev)
			if err != nil {
				return err
			}
			defer w.Stop()
			tokens, err := devTokens(tokensPath)
			if err != nil {
				return err
			}
			id, err := api.NewTokens(tokens)
			if err != nil {
				return err
			}
			if err := seedDev(ctx, b.store); err != nil {
				return err
			}
			// The API comes up last, so a ready API means everything is ready.
			webUI, err := ui.Start(ui.Config{Host: uiHost, Port: uiPort, TemporalAddress: ts.HostPort, Namespace: "default"})
			if err != nil {
				return err
			}
			defer webUI.Stop()
			srv, err := b.startAPI(apiAddr, id, b.sim, labels)
			if err != nil {
				return err
			}
			printDev(cmd, apiAddr, webUI.URL, ts.HostPort, dataDir, inMemory, tokens, tokensPath, time.Since(start))
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "modelplane dev: stopping (in-flight activities finish first)")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".modelplane", "where the Temporal and metadata SQLite files and dev tokens live")
	cmd.Flags().BoolVar(&inMemory, "in-memory", false, "keep nothing on disk (a throwaway run)")
	cmd.Flags().StringVar(&apiAddr, "api-addr", "127.0.0.1:8080", "API listen address")
	cmd.Flags().StringVar(&uiHost, "ui-host", "127.0.0.1", "Temporal Web UI host")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "Temporal Web UI port")
	cmd.Flags().IntVar(&temporalPort, "temporal-port", 7233, "Temporal frontend port (the next 7 ports are used by its other services)")
	ev.add(cmd)
	addAlertFlags(cmd, &labels)
	return cmd
}

// devTokens reuses the tokens of an earlier run so scripts keep working across restarts.
func devTokens(path string) ([]api.Token, error) {
	if path != "" {
		if list, err := api.LoadTokens(path, ""); err == nil && len(list) > 0 {
			return list, nil
		}
	}
	list := []api.Token{
		{Name: "alice", Role: api.RoleRequester, Secret: api.NewSecret("mp_alice_")},
		{Name: "bob", Role: api.RoleApprover, Secret: api.NewSecret("mp_bob_")},
		{Name: "carol", Role: api.RoleApprover, Secret: api.NewSecret("mp_carol_")},
		{Name: "admin", Role: api.RoleAdmin, Secret: api.NewSecret("mp_admin_")},
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
	} {
		if _, err := st.CreateTarget(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func printDev(cmd *cobra.Command, apiAddr, uiURL, temporalAddr, dataDir string, inMemory bool, tokens []api.Token, tokensPath string, took time.Duration) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "modelplane dev is ready in %s\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(out, "  API            http://%s   (OpenAPI: /openapi.json)\n", apiAddr)
	fmt.Fprintf(out, "  Temporal Web UI %s\n", uiURL)
	fmt.Fprintf(out, "  Temporal       %s (namespace default)\n", temporalAddr)
	if inMemory {
		fmt.Fprintf(out, "  Data           in memory (gone when this process exits)\n")
	} else {
		fmt.Fprintf(out, "  Data           %s/ (temporal.db, modelplane.db)\n", dataDir)
	}
	fmt.Fprintf(out, "  Targets        staging, prod (simulated provider)\n\n  Dev tokens")
	if tokensPath != "" {
		fmt.Fprintf(out, " (also in %s)", tokensPath)
	}
	fmt.Fprintln(out, ":")
	for _, t := range tokens {
		fmt.Fprintf(out, "    %-6s %-9s %s\n", t.Name, t.Role, t.Secret)
	}
	fmt.Fprintln(out, "\n  Web UI sign-off is unauthenticated in dev mode: anyone who reaches the UI port can send the approve signal.")
}
