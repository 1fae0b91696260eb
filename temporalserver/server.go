// Package temporalserver runs a real Temporal server (go.temporal.io/server)
// inside modelplane's process. `modelplane dev` keeps its data in a SQLite
// file (or memory); `modelplane temporal` keeps it in PostgreSQL and serves
// other hosts (see postgres.go).
package temporalserver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Config says where the server listens and keeps its data.
type Config struct {
	// DBPath is the SQLite file; empty means in memory (gone at exit).
	// Ignored when Postgres is set.
	DBPath string
	// Postgres, if set, keeps the data in PostgreSQL instead (created, set
	// up and upgraded at start; see postgres.go).
	Postgres *Postgres
	// IP the frontend binds (default 127.0.0.1; 0.0.0.0 serves other hosts).
	// The other services always bind 127.0.0.1: only this process talks to
	// them, and internal-frontend trusts every caller as the system.
	IP string
	// BroadcastAddress is the frontend's address as other hosts know it (the
	// cluster's RPC address). Default: IP, or this host's address if IP is
	// 0.0.0.0 or ::.
	BroadcastAddress string
	// Port is the frontend's gRPC port. Fixed ports follow it, so a restarted
	// server finds its previous shard owners under the same addresses:
	//
	//	Port+0 frontend (bound on IP)     Port+5..Port+9 membership ports of the
	//	Port+1 history                    five services, in the same order
	//	Port+2 matching                   (reserved: static membership binds none)
	//	Port+3 worker (system workflows)
	//	Port+4 internal-frontend
	//
	// Only the frontend is meant for callers; the worker service's system
	// workflows (scheduler, batcher, …) call internal-frontend, which needs
	// no credentials once the public frontend requires them.
	Port int
	// HistoryShards is fixed when the database is created; a different value
	// later is ignored with a warning (default 1 on SQLite, 4 on PostgreSQL).
	HistoryShards int
	// MetricsAddr, if set, serves Temporal's Prometheus metrics at /metrics.
	MetricsAddr string
	// Namespace is created if missing.
	Namespace string
	Logger    log.Logger
	// Auth, if set, verifies every caller at the frontend and stamps the
	// verified principal on signals and updates (see auth.go).
	Auth *Auth
}

// Server is a running embedded Temporal.
type Server struct {
	srv temporal.Server
	// HostPort is where this process reaches the frontend (loopback when it binds every interface).
	HostPort string
}

// The services in port order (see Config.Port).
var services = []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService, primitives.InternalFrontendService}

// Ports is how many consecutive ports Start takes from Config.Port.
var Ports = 2 * len(services)

const clusterName = "active"

// Start starts the server and returns once its frontend accepts connections.
func Start(c Config) (*Server, error) {
	if c.IP == "" {
		c.IP = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 7233
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Logger == nil {
		c.Logger = log.NewNoopLogger()
	}
	bindIP := net.ParseIP(c.IP)
	if bindIP == nil {
		return nil, fmt.Errorf("bind IP %q is not an IP address", c.IP)
	}
	local := c.IP // where this process dials the frontend
	if bindIP.IsUnspecified() {
		local = "127.0.0.1"
	}
	broadcast := c.BroadcastAddress
	if broadcast == "" {
		broadcast = c.IP
		if bindIP.IsUnspecified() {
			broadcast = hostIP()
		}
	}

	var persist config.Persistence
	if c.Postgres != nil {
		if c.HistoryShards == 0 {
			c.HistoryShards = 4
		}
		var err error
		if persist, err = preparePostgres(c.Postgres, c.Namespace, c.Logger); err != nil {
			return nil, err
		}
	} else {
		sqlCfg, err := prepareSQLite(c.DBPath, c.Namespace)
		if err != nil {
			return nil, err
		}
		persist = config.Persistence{DefaultStore: "sqlite", VisibilityStore: "sqlite", DataStores: map[string]config.DataStore{"sqlite": {SQL: sqlCfg}}}
	}
	if c.HistoryShards == 0 {
		c.HistoryShards = 1
	}
	persist.NumHistoryShards = int32(c.HistoryShards)

	hostPort := net.JoinHostPort(local, fmt.Sprint(c.Port))
	svcCfg := map[string]config.Service{}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for i, name := range services {
		bind, dial := "127.0.0.1", "127.0.0.1"
		if name == primitives.FrontendService {
			bind, dial = c.IP, local
		}
		svcCfg[string(name)] = config.Service{RPC: config.RPC{GRPCPort: c.Port + i, MembershipPort: c.Port + len(services) + i, BindOnIP: bind}}
		hosts[name] = static.SingleLocalHost(net.JoinHostPort(dial, fmt.Sprint(c.Port+i)))
	}
	membership := config.Membership{MaxJoinDuration: 30 * time.Second}
	if net.ParseIP(broadcast) != nil {
		membership.BroadcastAddress = broadcast
	}
	cfg := &config.Config{
		Global:      config.Global{Membership: membership},
		Persistence: persist,
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace: false, FailoverVersionIncrement: 10,
			MasterClusterName: clusterName, CurrentClusterName: clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {Enabled: true, InitialFailoverVersion: 1,
				RPCAddress: net.JoinHostPort(broadcast, fmt.Sprint(c.Port)), ClusterID: "5ba3d6a8-4c1e-4b5e-9d57-5d0f6e1c1a01"}},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            svcCfg,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History: config.HistoryArchivalNamespaceDefaults{State: "disabled"}, Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// PublicClient stays empty: with internal-frontend configured, the
		// system workers find it through membership (Temporal refuses both).
	}
	if c.MetricsAddr != "" {
		// Temporal exits the process when it cannot bind: check first.
		l, err := net.Listen("tcp", c.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("temporal metrics: %w", err)
		}
		l.Close()
		cfg.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{Framework: metrics.FrameworkOpentelemetry, ListenAddress: c.MetricsAddr, HandlerPath: "/metrics"}}
	}
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = string(s)
	}
	opts := []temporal.ServerOption{
		temporal.ForServices(names),
		temporal.WithConfig(cfg),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(c.Logger),
		// Temporal's defaults. Not ForceSearchAttributesCacheRefreshOnRead, a
		// setting for tests of search attribute changes: it reads the cluster
		// metadata under one lock on every start and every upsert, which made
		// starts queue on it and cost a fifth of a parked workflow's CPU.
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{}),
	}
	if c.Auth != nil {
		// The frontend verifies every caller and stamps who sent each signal
		// and update (auth.go); internal-frontend serves Temporal's own workers.
		authOpts, err := c.Auth.ServerOptions()
		if err != nil {
			return nil, err
		}
		opts = append(opts, authOpts...)
	}
	srv, err := temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal start: %w", err)
	}
	return &Server{srv: srv, HostPort: hostPort}, nil
}

// prepareSQLite is the dev store: a file (schema set up when new) or memory.
func prepareSQLite(path, namespace string) (*config.SQL, error) {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if path == "" {
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
		sqlCfg.DatabaseName = fmt.Sprintf("modelplane-%d-%d", os.Getpid(), time.Now().UnixNano())
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		sqlCfg.DatabaseName = path
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		// WAL: readers do not block the writer; start→signal→complete gets ~4× faster.
		sqlCfg.ConnectAttributes["journal_mode"] = "wal"
		sqlCfg.ConnectAttributes["synchronous"] = "NORMAL"
		sqlCfg.ConnectAttributes["busy_timeout"] = "10000"
		// One connection, Temporal's own default for SQLite. With four, they
		// took turns at SQLite's one write lock, and a connection that found
		// it taken slept before retrying: half the CPU stood idle while
		// workflows queued, and workflows parked at half the rate
		// (bench/README.md, Scale).
		sqlCfg.MaxConns = 1
		sqlCfg.MaxIdleConns = 1
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := sqlite.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("temporal schema: %w", err)
			}
		}
	}
	nsCfg, err := sqlite.NewNamespaceConfig(clusterName, namespace, false, nil)
	if err != nil {
		return nil, err
	}
	if err := sqlite.CreateNamespaces(sqlCfg, nsCfg); err != nil {
		return nil, fmt.Errorf("temporal namespace: %w", err)
	}
	return sqlCfg, nil
}

// hostIP is this host's first non-loopback IPv4 address (a pod's IP), for
// the broadcast address when the frontend binds every interface.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// Stop shuts the server down.
func (s *Server) Stop() error { return s.srv.Stop() }
