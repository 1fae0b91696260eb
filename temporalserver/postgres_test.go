package temporalserver

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/internal/pgtest"
	batchpb "go.temporal.io/api/batch/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/log"
	v12 "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/tools/common/schema"
	"google.golang.org/grpc/codes"
)

// pgDatabases names two throwaway databases (not yet created: Start must
// create them) on the test server and drops them when the test ends.
func pgDatabases(t *testing.T) (main, vis string) {
	dbs := pgtest.Databases(t, "mpt_", 2)
	return dbs[0], dbs[1]
}

// freePorts finds n consecutive free loopback ports and returns the first.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := base+n < 65536
		for i := 1; i < n && ok; i++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i)); err != nil {
				ok = false
			} else {
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}

// Greet is the test workflow: it waits for a "go" signal when asked to.
func Greet(ctx workflow.Context, name string, wait bool) (string, error) {
	if wait {
		workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	}
	return "hello " + name, nil
}

// startWorker polls queue until stop (or the test's end).
func startWorker(t *testing.T, c client.Client, queue string) (stop func()) {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(Greet)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(w.Stop) }
	t.Cleanup(stop)
	return stop
}

// dial connects a client, closed by the returned func (or at the test's
// end); a non-empty key is presented as modelplane's service key.
func dial(t *testing.T, hostPort, ns, key string) (client.Client, func()) {
	t.Helper()
	o := client.Options{HostPort: hostPort, Namespace: ns}
	if key != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(key)
		o.ConnectionOptions.TLSDisabled = true
	}
	c, err := client.DialContext(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeFn := func() { once.Do(c.Close) }
	t.Cleanup(closeFn)
	return c, closeFn
}

func historyRows(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM schema_update_history").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgresLifecycle: a fresh database is created and set up, a workflow
// runs, and a second start on the same databases finds the namespace and
// the workflow without setting anything up again.
func TestPostgresLifecycle(t *testing.T) {
	mainURL, visURL := pgDatabases(t)
	port := freePorts(t, Ports)
	cfg := Config{Postgres: &Postgres{URL: mainURL, VisibilityURL: visURL}, Port: port, Namespace: "mp-test"}

	began := time.Now()
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first start (create and set up both databases): %s", time.Since(began).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []struct {
		dsn, want string
	}{{mainURL, v12.Version}, {visURL, v12.VisibilityVersion}} {
		store, _ := newPGStore(s.dsn)
		if v, err := schemaVersion(ctx, store); err != nil || v != s.want {
			t.Fatalf("%s: schema version %q (%v), want %s", store.database, v, err, s.want)
		}
	}
	mainHistory, visHistory := historyRows(t, mainURL), historyRows(t, visURL)

	c, closeClient := dial(t, srv.HostPort, "mp-test", "")
	stopWorker := startWorker(t, c, "q")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: "q"}, Greet, "pg", false)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello pg" {
		t.Fatalf("workflow result %q, %v", got, err)
	}
	stopWorker()
	closeClient()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true

	began = time.Now()
	srv2, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second start (existing databases): %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = srv2.Stop() })
	if a, b := historyRows(t, mainURL), historyRows(t, visURL); a != mainHistory || b != visHistory {
		t.Fatalf("second start changed the schema history: main %d→%d, visibility %d→%d", mainHistory, a, visHistory, b)
	}
	c2, _ := dial(t, srv2.HostPort, "mp-test", "")
	if _, err := c2.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "mp-test"}); err != nil {
		t.Fatalf("namespace after restart: %v", err)
	}
	desc, err := c2.DescribeWorkflowExecution(ctx, "greet-1", "")
	if err != nil || desc.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("workflow after restart: %v %v", desc, err)
	}
	got = ""
	if err := c2.GetWorkflow(ctx, "greet-1", "").Get(ctx, &got); err != nil || got != "hello pg" {
		t.Fatalf("result after restart %q, %v", got, err)
	}

	// The system worker (batcher) reaches internal-frontend: a batch signal
	// releases a waiting workflow, found through PostgreSQL visibility.
	startWorker(t, c2, "q")
	checkSystemWorkers(t, ctx, c2, "mp-test", "q")
}

// checkSystemWorkers runs two of the worker service's system workflows: a
// schedule (scheduler) and a batch signal (batcher). Both call the frontend
// from inside the server, which goes to internal-frontend.
func checkSystemWorkers(t *testing.T, ctx context.Context, c client.Client, ns, queue string) {
	t.Helper()
	if _, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: "sched", Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}}, TriggerImmediately: true,
		Action: &client.ScheduleWorkflowAction{ID: "from-schedule", Workflow: Greet, Args: []any{"schedule", false}, TaskQueue: queue},
	}); err != nil {
		t.Fatal(err)
	}
	var started string // the scheduler suffixes the action's workflow ID with the time
	waitFor(t, ctx, "the schedule's first action", func() bool {
		d, err := c.ScheduleClient().GetHandle(ctx, "sched").Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 || d.Info.RecentActions[0].StartWorkflowResult == nil {
			return false
		}
		started = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	})
	var res string
	if err := c.GetWorkflow(ctx, started, "").Get(ctx, &res); err != nil || res != "hello schedule" {
		t.Fatalf("scheduled workflow %s: %q, %v", started, res, err)
	}

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "waiting", TaskQueue: queue}, Greet, "batch", true)
	if err != nil {
		t.Fatal(err)
	}
	// The batch finds its targets through visibility: wait until it lists the workflow.
	waitFor(t, ctx, "the workflow in visibility", func() bool {
		r, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = 'waiting' AND ExecutionStatus = 'Running'"})
		return err == nil && len(r.Executions) == 1
	})
	if _, err := c.WorkflowService().StartBatchOperation(ctx, &workflowservice.StartBatchOperationRequest{
		Namespace: ns, JobId: "release", Reason: "test", VisibilityQuery: "WorkflowId = 'waiting' AND ExecutionStatus = 'Running'",
		Operation: &workflowservice.StartBatchOperationRequest_SignalOperation{SignalOperation: &batchpb.BatchOperationSignal{Signal: "go"}},
	}); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello batch" {
		t.Fatalf("batch-signalled workflow: %q, %v", got, err)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestInternalFrontendOnSQLite: with a frontend that refuses anonymous
// callers, Temporal's system workers still run schedules and batches: they
// call internal-frontend (Port+4), which trusts its callers as the system.
func TestInternalFrontendOnSQLite(t *testing.T) {
	port := freePorts(t, Ports)
	const key = "svc-key-0123456789abcdef"
	srv, err := Start(Config{Port: port, Auth: &Auth{ServiceKeyDigests: []string{identity.Digest(key)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	anon, _ := dial(t, srv.HostPort, "default", "")
	_, err = anon.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if code := serviceerror.ToStatus(err).Code(); code != codes.PermissionDenied && code != codes.Unauthenticated {
		t.Fatalf("anonymous call to the frontend: %v, want it refused", err)
	}
	c, _ := dial(t, srv.HostPort, "default", key)
	startWorker(t, c, "q")
	checkSystemWorkers(t, ctx, c, "default", "q")
	// Only the server itself has dialled internal-frontend so far: its
	// system workers went there, not to the public frontend.
	if n, ok := establishedTo(port + 4); ok && n == 0 {
		t.Fatalf("no connection to internal-frontend (127.0.0.1:%d) after the system workflows ran", port+4)
	}
	internal, _ := dial(t, fmt.Sprintf("127.0.0.1:%d", port+4), "default", "")
	if _, err := internal.WorkflowService().GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{}); err != nil {
		t.Fatalf("internal-frontend on Port+4: %v", err)
	}
}

// establishedTo counts this host's established IPv4 connections to
// 127.0.0.1:port (Linux /proc/net/tcp); ok is false where that is unreadable.
func establishedTo(port int) (n int, ok bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	remote := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == remote && f[3] == "01" {
			n++
		}
	}
	return n, true
}

// TestSchemaUpgrade: a database left at an older schema version by
// Temporal's own tool is upgraded to the current one, and concurrent
// starts on a fresh database take turns.
func TestSchemaUpgrade(t *testing.T) {
	mainURL, visURL := pgDatabases(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	logger := log.NewNoopLogger()
	for _, s := range []struct {
		dsn    string
		schema pgSchema
		old    string
	}{{mainURL, mainSchema, "1.12"}, {visURL, visibilitySchema, "1.9"}} {
		store, err := newPGStore(s.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := ensureDatabase(ctx, s.dsn); err != nil {
			t.Fatal(err)
		}
		// The old version, set up as temporal-sql-tool does: version 0.0, then the versioned upgrades.
		func() {
			db := pgConn(t, ctx, store)
			if err := schema.NewSetupSchemaTask(db, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
				t.Fatal(err)
			}
			if err := schema.NewUpdateSchemaTask(db, &schema.UpdateConfig{DBName: store.database, SchemaName: s.schema.name, TargetVersion: s.old}, logger).Run(); err != nil {
				t.Fatal(err)
			}
		}()
		if v, _ := schemaVersion(ctx, store); v != s.old {
			t.Fatalf("%s: prepared version %s, want %s", store.database, v, s.old)
		}
		// Two starts at once: both wait their turn on the lock and succeed.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = ensureSchema(ctx, store, s.schema, logger) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("%s: upgrade: %v", store.database, err)
			}
		}
		if v, _ := schemaVersion(ctx, store); v != s.schema.version {
			t.Fatalf("%s: version after upgrade %s, want %s", store.database, v, s.schema.version)
		}
	}

	// Concurrent first starts on an empty database: one sets up, the other finds it done.
	freshMain, _ := pgDatabases(t)
	store, _ := newPGStore(freshMain)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			if errs[i] = ensureDatabase(ctx, freshMain); errs[i] == nil {
				errs[i] = ensureSchema(ctx, store, mainSchema, logger)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := historyRows(t, freshMain); n != 1 {
		t.Fatalf("concurrent setup wrote %d schema history rows, want 1 (set up once)", n)
	}
}

// pgConn is a schema-tool database on its own connection, as temporal-sql-tool uses.
func pgConn(t *testing.T, ctx context.Context, store *pgStore) *pgSchemaDB {
	t.Helper()
	conn, err := pgx.Connect(ctx, store.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &pgSchemaDB{ctx: ctx, q: conn, database: store.database}
}

// TestRefusesForeignDatabase: tables without a Temporal schema version are not Temporal's.
func TestRefusesForeignDatabase(t *testing.T) {
	mainURL, _ := pgDatabases(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ensureDatabase(ctx, mainURL); err != nil {
		t.Fatal(err)
	}
	store, _ := newPGStore(mainURL)
	if err := pgConn(t, ctx, store).Exec("CREATE TABLE models (id int)"); err != nil {
		t.Fatal(err)
	}
	err := ensureSchema(ctx, store, mainSchema, log.NewNoopLogger())
	if err == nil || !strings.Contains(err.Error(), "not Temporal's") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestPostgresURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"mysql://u@h/db":           "scheme",
		"postgres:///temporal":     "no host",
		"postgres://u@h:5432":      "no database",
		"postgres://u@h:5432/a/b":  "no database",
		"postgres://u:se cret@h/x": "not a valid URL",
	} {
		err := ValidatePostgresURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: got %v, want an error about %q without the password", raw, err, want)
		}
	}
	s, err := newPGStore("postgres://tp:pw@db.internal/temporal?sslmode=require&application_name=mp")
	if err != nil {
		t.Fatal(err)
	}
	if s.sql.ConnectAddr != "db.internal:5432" || s.sql.DatabaseName != "temporal" || s.sql.User != "tp" || s.sql.Password != "pw" ||
		s.sql.ConnectAttributes["sslmode"] != "require" || s.sql.ConnectAttributes["application_name"] != "mp" {
		t.Fatalf("parsed %+v", s.sql)
	}
	if s, _ := newPGStore("postgres://tp@db/temporal"); s.sql.ConnectAttributes["sslmode"] != "prefer" {
		t.Fatalf("no sslmode in the URL must mean prefer, got %q", s.sql.ConnectAttributes["sslmode"])
	}
	if v, _ := VisibilityURLFor("postgres://tp:pw@db:5433/temporal?sslmode=disable"); v != "postgres://tp:pw@db:5433/temporal_visibility?sslmode=disable" {
		t.Fatalf("visibility URL %s", v)
	}
}
