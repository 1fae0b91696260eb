// Package temporalserver runs a real Temporal server (go.temporal.io/server)
// inside modelplane's process, persisting to a SQLite file (or memory). It is
// what `modelplane dev` uses; production points at an external cluster.
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
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Config says where the server listens and keeps its data.
type Config struct {
	// DBPath is the SQLite file; empty means in memory (gone at exit).
	DBPath string
	// IP and Port of the frontend. The other services use the next ports
	// (Port+1..Port+7): fixed ports let a restarted server find its own
	// previous membership at once instead of waiting for stale ring members to expire.
	IP   string
	Port int
	// Namespace is created if missing.
	Namespace string
	Logger    log.Logger
}

// Server is a running embedded Temporal.
type Server struct {
	srv      temporal.Server
	HostPort string
}

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
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if c.DBPath == "" {
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
		sqlCfg.DatabaseName = fmt.Sprintf("modelplane-%d-%d", os.Getpid(), time.Now().UnixNano())
	} else {
		if err := os.MkdirAll(filepath.Dir(c.DBPath), 0o755); err != nil {
			return nil, err
		}
		sqlCfg.DatabaseName = c.DBPath
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		// WAL: readers do not block the writer; start→signal→complete gets ~4× faster.
		sqlCfg.ConnectAttributes["journal_mode"] = "wal"
		sqlCfg.ConnectAttributes["synchronous"] = "NORMAL"
		sqlCfg.ConnectAttributes["busy_timeout"] = "10000"
		sqlCfg.MaxConns = 4
		if _, err := os.Stat(c.DBPath); os.IsNotExist(err) {
			if err := sqlite.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("temporal schema: %w", err)
			}
		}
	}

	const clusterName = "active"
	nsCfg, err := sqlite.NewNamespaceConfig(clusterName, c.Namespace, false, nil)
	if err != nil {
		return nil, err
	}
	if err := sqlite.CreateNamespaces(sqlCfg, nsCfg); err != nil {
		return nil, fmt.Errorf("temporal namespace: %w", err)
	}

	hostPort := net.JoinHostPort(c.IP, fmt.Sprint(c.Port))
	svc := func(i int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: c.Port + i, MembershipPort: c.Port + 4 + i, BindOnIP: c.IP}}
	}
	cfg := &config.Config{
		Global: config.Global{Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: c.IP}},
		Persistence: config.Persistence{
			DefaultStore: "sqlite", VisibilityStore: "sqlite", NumHistoryShards: 1,
			DataStores: map[string]config.DataStore{"sqlite": {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace: false, FailoverVersionIncrement: 10,
			MasterClusterName: clusterName, CurrentClusterName: clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: hostPort, ClusterID: "5ba3d6a8-4c1e-4b5e-9d57-5d0f6e1c1a01"}},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": svc(0), "history": svc(1), "matching": svc(2), "worker": svc(3),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History: config.HistoryArchivalNamespaceDefaults{State: "disabled"}, Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: hostPort},
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, i := range map[primitives.ServiceName]int{primitives.FrontendService: 0, primitives.HistoryService: 1, primitives.MatchingService: 2, primitives.WorkerService: 3} {
		hosts[name] = static.SingleLocalHost(net.JoinHostPort(c.IP, fmt.Sprint(c.Port+i)))
	}
	srv, err := temporal.NewServer(
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithConfig(cfg),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(c.Logger),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal start: %w", err)
	}
	return &Server{srv: srv, HostPort: hostPort}, nil
}

// Stop shuts the server down.
func (s *Server) Stop() error { return s.srv.Stop() }
