//go:build reliability

package reliability

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/promotions"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/temporalserver"
	mpworker "github.com/modelplane/modelplane/worker"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

// stack is modelplane in the test process, wired as `server` and `worker`
// wire it, against a real Temporal server: the API (Echo, over HTTP), the
// worker, the policy engine and the simulator behind a fault injector. API
// and worker open the store separately, as two processes would.
type stack struct {
	temporal client.Client
	// temporald is Temporal's process when it runs out of the test process.
	temporald *proc
	store     *store.Store // the worker's handle; the test reads through it too
	sim       *sim.Provider
	faults    *faultyProvider
	api       *apiClient
	dbKind    string
}

type stackConfig struct {
	faults faultPlan
	// settle makes every simulated change take this many polls (0: done at once).
	settle int
	// conns is how many HTTP connections the client keeps (default 16).
	conns int
	// externalTemporal runs Temporal in a process of its own (reliability/
	// internal/temporald), out of reach of the race detector; by default it
	// runs in the test process (temporaltest).
	externalTemporal bool
}

func newStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	var (
		tc        client.Client
		temporald *proc
	)
	if cfg.externalTemporal {
		tc, temporald = startTemporal(t)
	} else {
		ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{Logger: quietLogger(t)}))
		tc = ts.GetDefaultClient()
	}
	dsn, kind := storeDSN(t, t.TempDir())

	st, sp := testkit.OpenStore(t, dsn)
	sp.SettleAfter(cfg.settle)
	fp := newFaultyProvider(sp, cfg.faults)
	provs := modelplane.ProviderSet{sim.Name: fp}
	engine, err := policy.New("")
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Store: st, Providers: provs, Temporal: tc, HTTP: &http.Client{Timeout: 10 * time.Second}, Policy: engine,
		Promotions: &promotions.Service{Store: st, Providers: provs, Temporal: tc}}
	w := mpworker.New(tc, acts, mpworker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	apiStore, apiSim := testkit.OpenStore(t, dsn)
	list := make([]api.Token, len(users))
	for i, u := range users {
		list[i] = api.Token{Name: u.name, Role: u.role, Secret: secret(u.name), Teams: []string{team}}
	}
	auth, err := api.NewTokens(list)
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Store: apiStore, Temporal: tc, Auth: auth, Policy: engine, Providers: provs, Sim: apiSim, Logger: fileLogger(t, "api.log")}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	if cfg.conns == 0 {
		cfg.conns = 16
	}
	return &stack{temporal: tc, temporald: temporald, store: st, sim: sp, faults: fp, api: newAPIClient(hs.URL, cfg.conns), dbKind: kind}
}

// fileLogger logs to a file of the test's temporary directory, shown (tail) on failure.
func fileLogger(t *testing.T, name string) *slog.Logger {
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (tail):\n%s", name, tailFile(f.Name(), 3000))
		}
		f.Close()
	})
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startTemporal runs temporald on free ports and connects to it.
func startTemporal(t *testing.T) (client.Client, *proc) {
	t.Helper()
	bin := binary(t, "./reliability/internal/temporald")
	port := testkit.FreePorts(t, temporalserver.Ports)
	p := newProcs(t).start("temporald", bin, childEnv(), "--port", fmt.Sprint(port))
	eventually(t, "temporald", 2*time.Minute, func() (bool, string) {
		if p.exited() {
			t.Fatalf("temporald exited:\n%s", tailFile(p.log, 3000))
		}
		return strings.Contains(tailFile(p.log, 4096), "temporald: ready"), "its output"
	})
	tc, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default", Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc, p
}
