//go:build reliability

package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/pgtest"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	tlog "go.temporal.io/sdk/log"
)

// team owns every model the suite creates; the dev users belong to it.
const team = "growth"

// users are the dev users: alice requests, bob and carol approve.
var users = []struct{ name, role string }{
	{"alice", "requester"}, {"bob", "approver"}, {"carol", "approver"}, {"admin", "admin"},
}

// secret is a user's API token in the suite (never a real credential).
func secret(name string) string { return "rel-" + name + "-0123456789abcdef" }

func tokenMap() map[string]string {
	m := map[string]string{}
	for _, u := range users {
		m[u.name] = secret(u.name)
	}
	return m
}

// tokensEnv is MODELPLANE_TOKENS for a server process (plaintext, test only).
func tokensEnv() string {
	parts := make([]string, len(users))
	for i, u := range users {
		parts[i] = u.name + ":" + u.role + ":" + secret(u.name) + ":" + team
	}
	return strings.Join(parts, ",")
}

// childEnv is the test's environment without MODELPLANE_* settings (a
// developer's config must not leak into the processes under test), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MODELPLANE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// quietLogger keeps the Temporal SDK's warnings and errors in a file of the
// test's temporary directory (shown on failure) instead of the test log,
// which thousands of workflows would flood.
func quietLogger(t *testing.T) tlog.Logger {
	f, err := os.Create(filepath.Join(t.TempDir(), "temporal-sdk.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Temporal SDK log (tail):\n%s", tailFile(f.Name(), 4000))
		}
		f.Close()
	})
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func tailFile(path string, n int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(data)) > n {
		data = data[int64(len(data))-n:]
	}
	return string(data)
}

// --- the API, as its clients see it ---

type apiClient struct {
	base   string
	tokens map[string]string
	hc     *http.Client
}

// newAPIClient keeps up to conns connections open, so many concurrent
// callers do not exhaust ephemeral ports.
func newAPIClient(base string, conns int) *apiClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &apiClient{base: base, tokens: tokenMap(), hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

type reply struct {
	status int
	body   []byte
}

func (r reply) String() string {
	b := r.body
	if len(b) > 400 {
		b = b[:400]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}

func (r reply) decode(v any) error { return json.Unmarshal(r.body, v) }

// call sends body as JSON on behalf of user; headers are name, value pairs.
// The error is a transport error only: statuses are the caller's to judge.
func (c *apiClient) call(method, path, user string, body any, headers ...string) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+c.tokens[user])
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, body: data}, err
}

// must is call for the test goroutine: any other status fails the test.
func (c *apiClient) must(t *testing.T, want int, method, path, user string, body, out any, headers ...string) reply {
	t.Helper()
	r, err := c.call(method, path, user, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.status != want {
		t.Fatalf("%s %s as %s: got %s, want %d", method, path, user, r, want)
	}
	if out != nil {
		if err := r.decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return r
}

func (c *apiClient) promotion(id string) (modelplane.Promotion, error) {
	var p modelplane.Promotion
	r, err := c.call("GET", "/v1/promotions/"+id, "alice", nil)
	if err != nil {
		return p, err
	}
	if r.status != http.StatusOK {
		return p, fmt.Errorf("GET promotion %s: %s", id, r)
	}
	return p, r.decode(&p)
}

func (c *apiClient) ready() bool {
	r, err := c.call("GET", "/readyz", "", nil)
	return err == nil && r.status == http.StatusOK
}

// seedModel registers a model of the team with versions v1 and v2 through the API.
func (c *apiClient) seedModel(t *testing.T, name string, tier modelplane.RiskTier) {
	t.Helper()
	c.must(t, http.StatusCreated, "POST", "/v1/models", "alice",
		map[string]any{"name": name, "owner": "ml-" + team + "@example.com", "team": team, "risk_tier": tier}, nil)
	for _, v := range []string{"v1", "v2"} {
		c.must(t, http.StatusCreated, "POST", "/v1/models/"+name+"/versions", "alice",
			map[string]any{"version": v, "artifact_uri": "s3://models/" + name + "/" + v, "metrics": map[string]float64{"auc": 0.91}}, nil)
	}
}

// createTarget creates a simulated production target as admin. The guard
// interval is long so that deployment guardians stay quiet during a test.
func (c *apiClient) createTarget(t *testing.T, name, env string) {
	t.Helper()
	c.must(t, http.StatusCreated, "POST", "/v1/targets", "admin", map[string]any{
		"name": name, "provider": sim.Name, "environment": env, "guard_interval": "1h",
		"analysis": map[string]any{"max_error_rate": 0.05, "max_latency_p99_ms": 500, "max_drift": 0.3},
	}, nil)
}

// eventually polls cond until it holds; on timeout the failure shows the
// last state cond described. The pause between polls is a polling interval,
// never a wait for something to happen.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	eventuallyEvery(t, what, timeout, 100*time.Millisecond, cond)
}

// eventuallyEvery is eventually polling every interval, for conditions
// whose check is itself a load on the system under test.
func eventuallyEvery(t *testing.T, what string, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(interval)
	}
}

// --- the store the processes share ---

// storeDSN is a fresh metadata store: a throwaway schema on the test
// PostgreSQL (MODELPLANE_TEST_POSTGRES_DSN, else one internal/pgtest finds
// or starts), or a SQLite file in dir with MODELPLANE_RELIABILITY_STORE=sqlite.
func storeDSN(t *testing.T, dir string) (dsn, kind string) {
	t.Helper()
	if os.Getenv("MODELPLANE_RELIABILITY_STORE") == "sqlite" {
		return filepath.Join(dir, "modelplane.db"), "sqlite"
	}
	return pgtest.Schema(t, "mp_rel_"), "postgres"
}

// serveStable makes version the stable version of model on target, as a
// finished promotion would have, so the next promotion has a canary to run.
func serveStable(ctx context.Context, st *store.Store, sp *sim.Provider, target, model, version string) error {
	tg, err := st.GetTarget(ctx, target)
	if err != nil {
		return err
	}
	v, err := st.GetVersion(ctx, model, version)
	if err != nil {
		return err
	}
	if _, err := sp.RegisterVersion(ctx, tg, v); err != nil {
		return err
	}
	split := modelplane.TrafficSplit{version: 100}
	if _, err := sp.SetTraffic(ctx, tg, model, split, "seed/"+model+"/"+version); err != nil {
		return err
	}
	return st.PutDeployment(ctx, modelplane.Deployment{Model: model, Target: target, Stable: version, Traffic: split})
}

// trafficOf lists, in order, the traffic changes the simulator applied for a promotion.
func trafficOf(ctx context.Context, sp *sim.Provider, target, model, promotionID string) ([]sim.Mutation, error) {
	muts, err := sp.Mutations(ctx, target, model)
	if err != nil {
		return nil, err
	}
	var out []sim.Mutation
	for _, m := range muts {
		if m.Kind == "traffic" && strings.HasPrefix(m.ID, promotionID+"/") {
			out = append(out, m)
		}
	}
	return out, nil
}

// checkTraffic says how the traffic changes of a promotion differ from want:
// each change exactly once, in order. The simulator keys changes by mutation
// id, so a change retried under its id is stored once; one applied again
// under a new id shows here as an extra change.
func checkTraffic(muts []sim.Mutation, want ...string) error {
	got := make([]string, len(muts))
	for i, m := range muts {
		got[i] = m.Detail
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return fmt.Errorf("traffic changes %v, want %v", got, want)
	}
	return nil
}

// canarySplits are the traffic changes of a canary from stable to candidate.
func canarySplits(stable, candidate string, steps ...int) []string {
	var out []string
	for _, w := range steps {
		s := modelplane.TrafficSplit{candidate: w}
		if w < 100 {
			s[stable] = 100 - w
		}
		out = append(out, s.String())
	}
	return out
}

// stageAudit counts a promotion's "stage" audit records. Every stage
// change appends one history entry and one audit record with a key derived
// from the promotion, so at rest the two counts are equal: a lost record
// shows as fewer, a replayed or retried one as more.
func stageAudit(ctx context.Context, st *store.Store, promotionID string) (int, error) {
	recs, err := st.ListAudit(ctx, store.AuditFilter{PromotionID: promotionID, Action: "stage", Limit: 5000})
	return len(recs), err
}

// --- the binary and its processes ---

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{} // package → binary
)

// binary builds a command of the module (pkg relative to its root) once
// per test binary, without the race detector: the processes stand for
// deployed servers.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "modelplane-reliability")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	var bin string
	var err error
	if pkg == "./cmd/modelplane" {
		bin, err = testkit.BuildBinary("..", buildDir)
	} else {
		bin = filepath.Join(buildDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = ".." // the module root
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build %s: %v\n%s", pkg, berr, out)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = bin
	return bin
}

func modelplaneBinary(t *testing.T) string { return binary(t, "./cmd/modelplane") }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// proc is a child process the test may SIGKILL; its output goes to a file
// whose tail is shown when the test fails.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

type procs struct {
	t   *testing.T
	dir string
	n   int
}

func newProcs(t *testing.T) *procs {
	p := &procs{t: t, dir: t.TempDir()}
	return p
}

// start runs bin; the process is SIGKILLed when the test ends.
func (ps *procs) start(name, bin string, env []string, args ...string) *proc {
	t := ps.t
	t.Helper()
	ps.n++
	logPath := filepath.Join(ps.dir, fmt.Sprintf("%02d-%s.log", ps.n, name))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := startCmd(cmd); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) output, tail:\n%s", name, cmd.Process.Pid, tailFile(logPath, 3000))
		}
	})
	return p
}

// kill sends SIGKILL — no chance to clean up — and waits for the exit.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// resources is the process's peak RSS and CPU so far, from /proc (Linux).
func (p *proc) resources() string {
	pid := p.cmd.Process.Pid
	rss := "n/a"
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				rss = strings.TrimSpace(v)
			}
		}
	}
	cpu := "n/a"
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the parenthesised command: utime and stime are the 12th and 13th, in clock ticks (100/s).
		if i := bytes.LastIndexByte(data, ')'); i > 0 {
			f := strings.Fields(string(data[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.Atoi(f[11])
				s, _ := strconv.Atoi(f[12])
				cpu = fmt.Sprintf("user %s sys %s", time.Duration(u)*10*time.Millisecond, time.Duration(s)*10*time.Millisecond)
			}
		}
	}
	return fmt.Sprintf("peak RSS %s, CPU %s", rss, cpu)
}
