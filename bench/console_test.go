package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/pgtest"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/temporalserver"
	"github.com/modelplane/modelplane/ui/console"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

const (
	consolePromotions = 10_000
	consoleAudit      = 100_000
	consoleModels     = 50
	admin             = "bench-admin-token-0123456789"
)

// consoleSite is the console over the real API, policy and store, filled
// with consolePromotions promotions and consoleAudit audit records.
type consoleSite struct {
	b       *testing.B
	api     http.Handler
	console *console.Console
	cookie  string
	st      interface {
		AppendAudit(context.Context, ...modelplane.AuditRecord) error
	}
	running []runningPromotion // awaiting approval
	done    string             // a finished promotion with a full history
}

func newConsoleSite(b *testing.B, dsn string) *consoleSite {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts, err := temporalserver.Start(temporalserver.Config{DBPath: filepath.Join(b.TempDir(), "temporal.db"), Port: testkit.FreePorts(b, temporalserver.Ports)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ts.Stop() })
	c, err := client.Dial(client.Options{HostPort: ts.HostPort, Logger: tlog.NewStructuredLogger(quiet)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	// A SQLite site starts from a copy of the first one's seeded file:
	// seeding takes most of a minute, and the data is the same each time.
	sqliteFile := filepath.IsAbs(dsn)
	reuse := sqliteFile && seededSQLite != ""
	if reuse {
		if err := copyFile(seededSQLite, dsn); err != nil {
			b.Fatal(err)
		}
	}
	kit := testkit.New(b, dsn)
	eng, err := policy.New("")
	if err != nil {
		b.Fatal(err)
	}
	auth, err := api.NewTokens([]api.Token{
		{Name: "admin", Role: api.RoleAdmin, Secret: admin},
		{Name: "bob", Role: api.RoleApprover, Secret: bob, Teams: []string{team}},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := &api.Server{Store: kit.Store, Temporal: c, Auth: auth, Policy: eng, Providers: kit.Activities.Providers, Logger: quiet}
	con, err := console.New(console.Config{API: srv.Handler(), Auth: auth, Events: kit.Store, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(con.Close)
	s := &consoleSite{b: b, api: srv.Handler(), console: con, st: kit.Store}
	if !reuse {
		s.seed(kit)
		if sqliteFile {
			keepSeeded(b, kit, dsn)
		}
	}
	s.running, s.done = seededPromotions()
	s.cookie = s.signIn(admin) // admins read every page, team-less audit included
	return s
}

// seed writes promotions shaped like real ones (history, votes, analysis)
// and their audit records, straight into the store.
func (s *consoleSite) seed(kit *testkit.Kit) {
	b, ctx := s.b, context.Background()
	start := time.Now()
	if _, err := kit.Store.CreateTarget(ctx, modelplane.Target{Name: "prod", Provider: sim.Name, Environment: "production"}); err != nil {
		b.Fatal(err)
	}
	for m := range consoleModels {
		name := fmt.Sprintf("model-%02d", m)
		if _, err := kit.Store.CreateModel(ctx, modelplane.Model{Name: name, Owner: "ml@example.com", Team: team, RiskTier: modelplane.RiskMedium}); err != nil {
			b.Fatal(err)
		}
		for v := 1; v <= consolePromotions/consoleModels; v++ {
			if _, err := kit.Store.CreateVersion(ctx, modelplane.Version{Model: name, Version: fmt.Sprint("v", v), ArtifactURI: "s3://m/" + name, Metrics: map[string]float64{"auc": 0.9}, CreatedBy: "alice"}); err != nil {
				b.Fatal(err)
			}
		}
		if err := kit.Store.PutDeployment(ctx, modelplane.Deployment{Model: name, Target: "prod", Stable: "v1", Traffic: modelplane.TrafficSplit{"v1": 100}}); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now().Add(-consolePromotions * time.Minute).UTC()
	perPromotion := consoleAudit / consolePromotions
	var recs []modelplane.AuditRecord
	for i := range consolePromotions {
		// Each version is promoted once, as a registry's versions are.
		model, version := fmt.Sprintf("model-%02d", i%consoleModels), fmt.Sprint("v", i/consoleModels+1)
		at := t0.Add(time.Duration(i) * time.Minute)
		p := modelplane.Promotion{ID: fmt.Sprintf("p-%05d", i), WorkflowID: fmt.Sprintf("promotion/p-%05d", i), Model: model, Version: version, Target: "prod",
			Strategy: modelplane.RolloutStrategy{Type: modelplane.StrategyCanary, Steps: []int{10, 50, 100}}, RequestedBy: "alice",
			Status: modelplane.StatusRunning, Stage: modelplane.StageAwaitingApproval, RequiredApprovals: 1, CreatedAt: at, UpdatedAt: at,
			Validation: &modelplane.ValidationReport{Passed: true, EvidenceHash: "sha256:" + strings.Repeat("ab", 32)}}
		if _, _, err := kit.Store.CreatePromotion(ctx, p, ""); err != nil {
			b.Fatal(err)
		}
		for j, st := range []string{modelplane.StageRegistering, modelplane.StageValidating, modelplane.StageAwaitingApproval} {
			p.History = append(p.History, modelplane.HistoryEntry{At: at.Add(time.Duration(j) * time.Second), Stage: st, Status: modelplane.StatusRunning})
		}
		if i < consolePromotions-consoleModels {
			// All but the newest per model have finished.
			fin := at.Add(20 * time.Second)
			p.Status, p.Stage, p.FinishedAt, p.Traffic = modelplane.StatusSucceeded, modelplane.StageDone, &fin, modelplane.TrafficSplit{version: 100}
			p.Approvals = []modelplane.Approval{{Approver: "bob", Decision: "approve", Via: "api", At: at.Add(5 * time.Second), Method: modelplane.AuthOIDC}}
			for k, w := range []int{10, 50, 100} {
				p.AnalysisResults = append(p.AnalysisResults, modelplane.AnalysisResult{Step: fmt.Sprint(w, "%"), Version: version, Phase: "successful", At: at.Add(time.Duration(6+k) * time.Second)})
			}
			p.History = append(p.History, modelplane.HistoryEntry{At: at.Add(6 * time.Second), Stage: modelplane.StageCanary, Status: modelplane.StatusRunning},
				modelplane.HistoryEntry{At: fin, Stage: modelplane.StageDone, Status: modelplane.StatusSucceeded})
		}
		if err := kit.Store.UpdatePromotion(ctx, p, 1); err != nil {
			b.Fatal(err)
		}
		for k := range perPromotion {
			rec := modelplane.AuditRecord{Key: fmt.Sprintf("%s/%d", p.ID, k), Time: at.Add(time.Duration(k) * time.Second), Actor: "system", Action: "stage",
				Subject: model + "@" + version + " → prod", PromotionID: p.ID, Model: model, Target: "prod", Version: version, Decision: "canary"}
			if k%3 == 1 {
				rec.Action, rec.Decision = "traffic", fmt.Sprintf("v1=%d,%s=%d", 100-10*k, version, 10*k)
			}
			recs = append(recs, rec)
		}
		if len(recs) >= 2000 {
			if err := kit.Store.AppendAudit(ctx, recs...); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := kit.Store.AppendAudit(ctx, recs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d promotions and %d audit records in %s", consolePromotions, consoleAudit, time.Since(start).Round(time.Millisecond))
}

// seededPromotions are the promotions seed leaves awaiting approval (the
// newest of each model) and the newest finished one.
func seededPromotions() (running []runningPromotion, done string) {
	for i := consolePromotions - consoleModels; i < consolePromotions; i++ {
		running = append(running, runningPromotion{fmt.Sprintf("p-%05d", i), fmt.Sprintf("model-%02d", i%consoleModels)})
	}
	return running, fmt.Sprintf("p-%05d", consolePromotions-consoleModels-1)
}

// seededSQLite is a copy of the first seeded SQLite store, removed by TestMain.
var seededSQLite string

// keepSeeded checkpoints the store's write-ahead log into its file and
// keeps a copy of the file for the next SQLite site.
func keepSeeded(b *testing.B, kit *testkit.Kit, dsn string) {
	if err := kit.Store.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "modelplane-bench-console-")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "seeded.db")
	if err := copyFile(dsn, path); err != nil {
		b.Fatal(err)
	}
	seededSQLite = path
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}

func (s *consoleSite) signIn(token string) string {
	w := httptest.NewRecorder()
	s.console.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	login := w.Result().Cookies()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		s.b.Fatal("login page has no csrf field")
	}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"csrf": {m[1]}, "token": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range login {
		r.AddCookie(c)
	}
	w = httptest.NewRecorder()
	s.console.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == "mp_console" && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	s.b.Fatalf("sign-in: %d %s", w.Code, w.Body.String())
	return ""
}

// serve times one request through h; it must answer 200.
func (s *consoleSite) serve(h http.Handler, path string, bearer bool, hdr ...string) time.Duration {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if bearer {
		r.Header.Set("Authorization", "Bearer "+admin)
	} else {
		r.Header.Set("Cookie", s.cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, r)
	took := time.Since(start)
	if w.Code != http.StatusOK {
		s.b.Fatalf("GET %s: %d %.300s", path, w.Code, w.Body.String())
	}
	return took
}

type runningPromotion struct{ id, model string }

// BenchmarkConsolePages: server time of every list and detail page with
// 10,000 promotions and 100,000 audit records, on SQLite and PostgreSQL,
// against the API's own JSON answer for the same data (the baseline).
func BenchmarkConsolePages(b *testing.B) {
	stores := []struct{ name, dsn string }{{"sqlite", ""}, {"postgres", ""}}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "modelplane.db")
			if st.name == "postgres" {
				dsn = pgtest.Schema(b, "bench_console_")
			}
			s := newConsoleSite(b, dsn)
			pages := []struct{ name, page, api string }{
				{"inbox", "/inbox", "/v1/inbox"},
				{"promotions", "/promotions", "/v1/promotions?limit=50"},
				{"promotions?model", "/promotions?model=model-07", "/v1/promotions?limit=50&model=model-07"},
				{"promotions page 20", "/promotions?before=" + s.cursor(20), "/v1/promotions?limit=50&before=" + s.cursor(20)},
				{"promotion", "/promotions/" + s.done, "/v1/promotions/" + s.done},
				{"deployments", "/deployments", "/v1/deployments"},
				{"deployment", "/deployments/prod/model-07", "/v1/deployments/prod/model-07"},
				{"models", "/models", "/v1/models"},
				{"model", "/models/model-07", "/v1/models/model-07/versions"},
				{"provenance", "/models/model-07/versions/v150/provenance", "/v1/models/model-07/versions/v150/provenance"},
				{"audit", "/audit", "/v1/audit?order=desc&limit=100"},
				{"audit?promotion", "/audit?promotion=" + s.done, "/v1/audit?order=desc&limit=100&promotion=" + s.done},
				{"audit?actor", "/audit?actor=bob", "/v1/audit?order=desc&limit=100&actor=bob"},
			}
			const n = 60
			var rows []string
			worst := time.Duration(0)
			for _, pg := range pages {
				var page, base []time.Duration
				for i := range n + 3 {
					c, a := s.serve(s.console, pg.page, false), s.serve(s.api, pg.api, true)
					if i >= 3 { // warm-up
						page, base = append(page, c), append(base, a)
					}
				}
				p50, p99, b50, b99 := pct(page, .5), pct(page, .99), pct(base, .5), pct(base, .99)
				worst = max(worst, p99)
				rows = append(rows, fmt.Sprintf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2f |", st.name, pg.name, ms(p50), ms(p99), ms(b50), ms(b99), float64(p99)/float64(b99)))
			}
			b.ReportMetric(ms(worst), "worst-p99-ms")
			fmt.Printf("\n| store | page | console p50 ms | console p99 ms | API p50 ms | API p99 ms | p99 ratio |\n|---|---|---|---|---|---|---|\n%s\nworst page p99 %.1f ms (target ≤ 50 ms)", strings.Join(rows, "\n"), ms(worst))
			fmt.Println()
		})
	}
}

// cursor pages through the promotion list k pages deep via the API.
func (s *consoleSite) cursor(k int) string {
	next := ""
	for range k {
		r := httptest.NewRequest(http.MethodGet, "/v1/promotions?limit=50&before="+url.QueryEscape(next), nil)
		r.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		s.api.ServeHTTP(w, r)
		m := regexp.MustCompile(`"next":"([^"]+)"`).FindStringSubmatch(w.Body.String())
		if m == nil {
			s.b.Fatalf("no next cursor: %.300s", w.Body.String())
		}
		next = m[1]
	}
	return url.QueryEscape(next)
}

// BenchmarkConsoleLive: from a transition written to the audit trail to
// the open page's refreshed content, over the live stream: p50 and p99 over
// 50 transitions. The baseline is the partial page fetch alone.
func BenchmarkConsoleLive(b *testing.B) {
	s := newConsoleSite(b, filepath.Join(b.TempDir(), "modelplane.db"))
	srv := httptest.NewServer(s.console)
	b.Cleanup(srv.Close)
	time.Sleep(500 * time.Millisecond) // the hub has read the head
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rq, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	rq.Header.Set("Cookie", s.cookie)
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	seen := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"promotion"`) {
				seen <- sc.Text()
			}
		}
	}()
	// The record names the model: the stream names a promotion only to a
	// viewer who may read its model's records.
	id, model := s.running[0].id, s.running[0].model
	var total, fetch []time.Duration
	for i := range 50 {
		start := time.Now()
		if err := s.st.AppendAudit(context.Background(), modelplane.AuditRecord{Key: fmt.Sprintf("live/%d", i), Time: time.Now(), Actor: "system", Action: modelplane.AuditStage, Model: model, PromotionID: id, Subject: "x"}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			b.Fatal("no event within 10s")
		}
		f := s.serve(s.console, "/promotions/"+id, false, "X-Console-Partial", "1")
		total, fetch = append(total, time.Since(start)), append(fetch, f)
	}
	b.ReportMetric(ms(pct(total, .5)), "visible-p50-ms")
	b.ReportMetric(ms(pct(total, .99)), "visible-p99-ms")
	b.Logf("transition → visible on an open page: p50 %.1f ms, p99 %.1f ms (target ≤ 1000 ms); of which the page fetch p50 %.1f ms, p99 %.1f ms",
		ms(pct(total, .5)), ms(pct(total, .99)), ms(pct(fetch, .5)), ms(pct(fetch, .99)))
}
