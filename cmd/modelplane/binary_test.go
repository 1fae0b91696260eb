package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"go.temporal.io/server/temporaltest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modelplane-bin")
	if err != nil {
		panic(err)
	}
	if binary, err = testkit.BuildBinary("../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestDevBinary starts the real binary, drives a canary through its API,
// interrupts it mid-bake and starts it again on the same data directory.
func TestDevBinary(t *testing.T) {
	dir := t.TempDir()
	args, d := testkit.DevArgs(dir, testkit.FreePorts(t, testkit.DevPorts))
	apiURL, uiURL := d.API, d.UI

	began := time.Now()
	dev := testkit.Start(t, binary, args...)
	ready := func(p *testkit.Proc) bool {
		return strings.Contains(p.Output(), "The vote counts for the signed-in user") && testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200
	}
	testkit.WaitFor(t, "dev ready", 60*time.Second, func() bool { return ready(dev) })
	t.Logf("start to ready (new data dir): %s", time.Since(began).Round(time.Millisecond))
	res, err := http.Get(uiURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(page, []byte("<html")) {
		t.Fatalf("Web UI answered %d: %.200s", res.StatusCode, page)
	}
	tok := testkit.DevTokens(t, filepath.Join(dir, "tokens"))
	if len(tok) != 6 || !strings.Contains(dev.Output(), tok["bob"]) {
		t.Fatalf("tokens = %v", tok)
	}
	if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models", tok["alice"], map[string]any{"name": "churn", "owner": "o@example.com", "team": "growth", "risk_tier": "low"}, nil); st != 201 {
		t.Fatalf("create model: %d", st)
	}
	for _, v := range []string{"1", "2"} {
		if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/churn/versions", tok["alice"], map[string]any{"version": v, "artifact_uri": "s3://m/" + v, "metrics": map[string]float64{"auc": 0.9}}, nil); st != 201 {
			t.Fatalf("create version: %d", st)
		}
	}
	promote := func(body map[string]any) string {
		var acc struct{ ID string }
		if st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions", tok["alice"], body, &acc); st != 202 {
			t.Fatalf("promote: %d", st)
		}
		return acc.ID
	}
	status := func(id string) modelplane.Promotion {
		var p modelplane.Promotion
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+id, tok["alice"], nil, &p)
		return p
	}
	// The default policy asks one approval for a low-risk model in production.
	approve := func(id string) {
		t.Helper()
		testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return status(id).Stage == modelplane.StageAwaitingApproval })
		if s := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions/"+id+"/approvals", tok["bob"], map[string]any{"decision": "approve"}, nil); s != 200 {
			t.Fatalf("approve %s: HTTP %d", id, s)
		}
	}
	first := promote(map[string]any{"model": "churn", "version": "1", "target": "prod", "strategy": map[string]any{"type": "direct", "monitor_window": "1s"}})
	approve(first)
	testkit.WaitFor(t, "first promotion", 30*time.Second, func() bool { return status(first).Status == modelplane.StatusSucceeded })

	id := promote(map[string]any{"model": "churn", "version": "2", "target": "prod", "strategy": map[string]any{"type": "canary", "steps": []int{50, 100}, "bake": "4s", "monitor_window": "1s"}})
	// /metrics counts running promotions by stage, read from the store.
	testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool { return status(id).Stage == modelplane.StageAwaitingApproval })
	res, err = http.Get(apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(scrape, []byte(`modelplane_promotions_active{stage="awaiting_approval"} 1`+"\n")) {
		t.Fatalf("/metrics lacks the promotion awaiting approval:\n%s", grepLines(scrape, "modelplane_promotions_active"))
	}
	// /mcp is the console's MCP page; /mcp/... is the gateway, which asks
	// for a token before it says anything.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/mcp": http.StatusSeeOther, "/mcp/io.github.acme/notes": http.StatusUnauthorized} {
		res, err := noRedirect.Get(apiURL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want || (want == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/mcp/")) {
			t.Fatalf("GET %s: %d (Location %q), want %d", path, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	approve(id)
	testkit.WaitFor(t, "first canary step", 30*time.Second, func() bool { return status(id).Traffic.String() == "1=50,2=50" })
	dev.Interrupt(t)

	began = time.Now()
	dev = testkit.Start(t, binary, args...)
	testkit.WaitFor(t, "dev ready again", 60*time.Second, func() bool { return ready(dev) })
	t.Logf("start to ready (existing data dir): %s", time.Since(began).Round(time.Millisecond))
	testkit.WaitFor(t, "promotion to finish after restart", 60*time.Second, func() bool { return status(id).Status == modelplane.StatusSucceeded })
	var dep modelplane.Deployment
	testkit.HTTPJSON(t, "GET", apiURL+"/v1/deployments/prod/churn", tok["alice"], nil, &dep)
	if dep.Stable != "2" || dep.PreviousStable != "1" {
		t.Fatalf("deployment after restart = %+v", dep)
	}

	// Exactly one traffic change per step across the restart, read from the store itself.
	_, sp := testkit.OpenStore(t, filepath.Join(dir, "modelplane.db"))
	muts, _ := sp.Mutations(context.Background(), "prod", "churn")
	var got []string
	for _, m := range muts {
		if m.Kind == "traffic" && strings.HasPrefix(m.ID, id) {
			got = append(got, m.Detail)
		}
	}
	if strings.Join(got, " ") != "1=50,2=50 2=100" {
		t.Fatalf("traffic changes of %s = %v", id, got)
	}
}

// TestServerAndWorkerAgainstExternalTemporal runs `server` and `worker` as
// separate processes against a Temporal frontend they did not start.
func TestServerAndWorkerAgainstExternalTemporal(t *testing.T) {
	t.Setenv(sim.EnvForTests, "1") // the platform here is the simulator
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	dir := t.TempDir()
	db := filepath.Join(dir, "mp.db")
	// A production token file: digests only, teams and roles per token.
	tokens := filepath.Join(dir, "tokens.json")
	file := fmt.Sprintf(`[{"name":"alice","teams":["risk"],"roles":["requester"],"sha256":%q},{"name":"bob","teams":["risk"],"roles":["approver"],"sha256":%q}]`,
		identity.Digest("alice-token-0123456789"), identity.Digest("bob-token-0123456789"))
	if err := os.WriteFile(tokens, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	base := testkit.FreePorts(t, 1)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", base)
	common := []string{"--temporal-address", ts.GetFrontendHostPort(), "--namespace", ts.GetDefaultNamespace(), "--db", db}
	testkit.Start(t, binary, append([]string{"server", "--addr", fmt.Sprintf("127.0.0.1:%d", base), "--tokens-file", tokens}, common...)...)
	testkit.Start(t, binary, append([]string{"worker"}, common...)...)
	testkit.WaitFor(t, "server ready", 30*time.Second, func() bool { return testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200 })

	// Targets are created by admins; none is configured here, so use the store directly.
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateTarget(context.Background(), modelplane.Target{Name: "prod", Provider: sim.Name, Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	if s := testkit.HTTPJSON(t, "POST", apiURL+"/v1/models", "alice-token-0123456789", map[string]any{"name": "fraud", "owner": "o", "team": "risk", "risk_tier": "medium"}, nil); s != 201 {
		t.Fatalf("create model: %d", s)
	}
	testkit.HTTPJSON(t, "POST", apiURL+"/v1/models/fraud/versions", "alice-token-0123456789", map[string]any{"version": "1", "artifact_uri": "s3://f/1", "metrics": map[string]float64{"auc": 0.9}}, nil)
	var acc struct{ ID string }
	if s := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions", "alice-token-0123456789", map[string]any{"model": "fraud", "version": "1", "target": "prod", "strategy": map[string]any{"type": "direct", "monitor_window": "1s"}}, &acc); s != 202 {
		t.Fatalf("promote: %d", s)
	}
	var p modelplane.Promotion
	testkit.WaitFor(t, "awaiting approval", 30*time.Second, func() bool {
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+acc.ID, "bob-token-0123456789", nil, &p)
		return p.Stage == modelplane.StageAwaitingApproval
	})
	if s := testkit.HTTPJSON(t, "POST", apiURL+"/v1/promotions/"+acc.ID+"/approvals", "bob-token-0123456789", map[string]any{"decision": "approve"}, nil); s != 200 {
		t.Fatalf("approve: %d", s)
	}
	testkit.WaitFor(t, "promotion to succeed", 30*time.Second, func() bool {
		testkit.HTTPJSON(t, "GET", apiURL+"/v1/promotions/"+acc.ID, "bob-token-0123456789", nil, &p)
		return p.Status == modelplane.StatusSucceeded
	})
}

// TestServerRefusesTheSimulator: outside modelplane dev the simulator is
// no platform: its health passes every analysis.
func TestServerRefusesTheSimulator(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	file := fmt.Sprintf(`[{"name":"root","roles":["admin"],"sha256":%q}]`, identity.Digest("root-token-0123456789"))
	if err := os.WriteFile(tokens, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	base := testkit.FreePorts(t, 1)
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", base)
	testkit.Start(t, binary, "server", "--addr", fmt.Sprintf("127.0.0.1:%d", base), "--tokens-file", tokens,
		"--temporal-address", ts.GetFrontendHostPort(), "--namespace", ts.GetDefaultNamespace(), "--db", filepath.Join(dir, "mp.db"))
	testkit.WaitFor(t, "server ready", 30*time.Second, func() bool { return testkit.HTTPJSON(t, "GET", apiURL+"/readyz", "", nil, nil) == 200 })
	var e struct {
		Error modelplane.Error `json:"error"`
	}
	st := testkit.HTTPJSON(t, "POST", apiURL+"/v1/targets", "root-token-0123456789", map[string]any{"name": "prod", "provider": sim.Name, "environment": "production"}, &e)
	if st != 400 || e.Error.Field != "provider" || !strings.Contains(e.Error.Message, "simulator of modelplane dev") {
		t.Fatalf("a sim target on a server: %d %+v", st, e.Error)
	}
}

// grepLines returns the lines of data containing s.
func grepLines(data []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
