package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
	"github.com/modelplane/modelplane/store"
)

func rec(key string) modelplane.AuditRecord {
	return modelplane.AuditRecord{Key: key, Actor: "alice", Action: "vote", Subject: "promotion p1", PromotionID: "p1", Model: "churn", Target: "prod", Decision: "approve"}
}

// checkChain asserts the stored chain is whole: seqs 1..n, each linked to
// the one before, each hash matching its content.
func checkChain(t *testing.T, s *store.Store, n int) []modelplane.AuditRecord {
	t.Helper()
	ctx := context.Background()
	recs, err := s.ListAudit(ctx, store.AuditFilter{Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	prev := audit.Genesis
	for i, r := range recs {
		if r.Seq != int64(i+1) || r.PrevHash != prev || r.Hash != audit.Hash(r) {
			t.Fatalf("record %d: seq %d prev %.8s (want %.8s) hash ok %v", i, r.Seq, r.PrevHash, prev, r.Hash == audit.Hash(r))
		}
		prev = r.Hash
	}
	if b, m, err := s.VerifyAudit(ctx); b != nil || err != nil || m != n {
		t.Fatalf("VerifyAudit = %v, %d, %v", b, m, err)
	}
	return recs
}

func TestAuditChain(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if b, n, err := s.VerifyAudit(ctx); b != nil || n != 0 || err != nil {
				t.Fatalf("empty chain: %v %d %v", b, n, err)
			}
			t0 := time.Date(2026, 2, 3, 4, 5, 6, 789123456, time.FixedZone("x", -7200))
			first := rec("a/1")
			first.Time = t0
			first.Version, first.EvidenceHash = "7", "sha256:abc"
			first.Policy = &modelplane.PolicyDecision{ID: "dec-1", Allow: true, Reasons: []string{"quorum met"}, PolicyVersion: "v3", Explicit: true, RequiredApprovals: 2}
			first.Details = map[string]any{"n": 1, "nested": map[string]any{"z": []any{1, "two"}, "a": nil}, "html": "<&>"}
			first.Seq, first.Hash, first.PrevHash = 99, "forged", "forged" // ignored
			if err := s.AppendAudit(ctx, first); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendAudit(ctx, rec("a/2"), rec("a/3"), rec("a/2")); err != nil { // a duplicate within the call too
				t.Fatal(err)
			}
			recs := checkChain(t, s, 3)
			got := recs[0]
			if !got.Time.Equal(t0.Truncate(time.Microsecond)) || got.Version != "7" || got.EvidenceHash != "sha256:abc" ||
				got.Policy == nil || got.Policy.RequiredApprovals != 2 || got.Policy.Reasons[0] != "quorum met" || got.Details["html"] != "<&>" {
				t.Fatalf("round trip = %+v (policy %+v)", got, got.Policy)
			}

			// A retried write is a no-op: the chain does not grow and its tip stays.
			tip := recs[2].Hash
			if err := s.AppendAudit(ctx, rec("a/3"), first); err != nil {
				t.Fatal(err)
			}
			if recs := checkChain(t, s, 3); recs[2].Hash != tip {
				t.Fatal("an idempotent re-append moved the tip")
			}
			// A retry mixed with a new record extends by the new one only.
			if err := s.AppendAudit(ctx, rec("a/1"), rec("a/4")); err != nil {
				t.Fatal(err)
			}
			checkChain(t, s, 4)

			// The new filters.
			later := rec("b/1")
			later.Time, later.Action, later.Version = t0.Add(time.Hour), "rollback", "7"
			if err := s.AppendAudit(ctx, later); err != nil {
				t.Fatal(err)
			}
			count := func(f store.AuditFilter) int {
				t.Helper()
				rs, err := s.ListAudit(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				return len(rs)
			}
			if n := count(store.AuditFilter{Version: "7"}); n != 2 {
				t.Fatalf("by version: %d", n)
			}
			if n := count(store.AuditFilter{Action: "rollback"}); n != 1 {
				t.Fatalf("by action: %d", n)
			}
			if n := count(store.AuditFilter{Version: "7", Until: t0.Add(time.Minute)}); n != 1 {
				t.Fatalf("by version until: %d", n)
			}
			if n := count(store.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(2 * time.Hour)}); n != 1 {
				t.Fatalf("since..until: %d", n)
			}
		})
	}
}

// TestAuditConcurrentAppends: writers racing — goroutines sharing a store,
// across two stores on the same database (as two processes would) — extend
// one unbroken chain, with retried keys skipped.
func TestAuditConcurrentAppends(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			dsn := mk(t)
			stores := []*store.Store{open(t, dsn), open(t, dsn)}
			const writers, each = 8, 15
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[w%len(stores)]
					for i := 0; i < each; i++ {
						recs := []modelplane.AuditRecord{rec(fmt.Sprintf("w%d/%d", w, i))}
						if i%3 == 0 {
							// A batch, plus a key another writer also writes.
							recs = append(recs, rec(fmt.Sprintf("w%d/%d/b", w, i)), rec(fmt.Sprintf("shared/%d", i)))
						}
						if err := s.AppendAudit(context.Background(), recs...); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			shared := (each + 2) / 3
			checkChain(t, stores[0], writers*each+writers*shared+shared)
		})
	}
}

// appendN seals n records in a fresh store.
func appendN(t *testing.T, dsn string, n int) *store.Store {
	t.Helper()
	s := open(t, dsn)
	for i := 1; i <= n; i++ {
		r := rec(fmt.Sprintf("k/%d", i))
		r.Details = map[string]any{"i": i}
		if err := s.AppendAudit(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestAuditTamperDetection(t *testing.T) {
	cases := []struct {
		name   string
		sql    []string
		kind   audit.Kind
		seq    int64
		key    string
		detail string
	}{
		{"edited actor", []string{"UPDATE audit_records SET actor = 'mallory' WHERE seq = 3"}, audit.Edited, 3, "k/3", "stored hash does not match its content"},
		{"edited details", []string{`UPDATE audit_records SET details = '{"i":30}' WHERE seq = 5`}, audit.Edited, 5, "k/5", "does not match"},
		{"deleted middle", []string{"DELETE FROM audit_records WHERE seq = 3"}, audit.Deleted, 4, "k/4", "seq jumps from 2 to 4"},
		{"deleted first", []string{"DELETE FROM audit_records WHERE seq = 1"}, audit.Deleted, 2, "k/2", "records before it are missing"},
		{"swapped seqs", []string{
			"UPDATE audit_records SET seq = -1 WHERE seq = 3",
			"UPDATE audit_records SET seq = 3 WHERE seq = 4",
			"UPDATE audit_records SET seq = 4 WHERE seq = -1",
		}, audit.Reordered, 3, "k/4", "its hash verifies at seq 4, not at 3, and it is chained to record 4 (key k/3), which is stored after it"},
	}
	for name, mk := range backends(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				s := appendN(t, mk(t), 6)
				for _, q := range c.sql {
					if err := s.DB().Exec(q).Error; err != nil {
						t.Fatal(err)
					}
				}
				b, _, err := s.VerifyAudit(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if b == nil || b.Kind != c.kind || b.Seq != c.seq || b.Key != c.key || !strings.Contains(b.Detail, c.detail) {
					t.Fatalf("break = %v\nwant %s at seq %d (key %s) mentioning %q", b, c.kind, c.seq, c.key, c.detail)
				}
				t.Log(b)
			})
		}
		t.Run(name+"/swapped rows", func(t *testing.T) {
			// Rows 2 and 5 trade every column but seq.
			s := appendN(t, mk(t), 6)
			recs, _ := s.ListAudit(context.Background(), store.AuditFilter{})
			db := s.DB()
			put := func(seq int64, r modelplane.AuditRecord) {
				if err := db.Exec("UPDATE audit_records SET key = ?, time = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
					r.Key, r.Time, fmt.Sprintf(`{"i":%v}`, r.Details["i"]), r.PrevHash, r.Hash, seq).Error; err != nil {
					t.Fatal(err)
				}
			}
			put(2, modelplane.AuditRecord{Key: "tmp", Time: time.Now(), Details: map[string]any{"i": 0}})
			put(5, recs[1])
			put(2, recs[4])
			b, _, err := s.VerifyAudit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if b == nil || b.Kind != audit.Reordered || b.Seq != 2 || b.Key != "k/5" || !strings.Contains(b.Detail, "verifies at seq 5") {
				t.Fatalf("break = %v", b)
			}
			t.Log(b)
		})
	}
}

func TestAuditExportVerifiesOffline(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := appendN(t, mk(t), 12)
			p := rec("policy/1")
			p.Policy, p.Version = &modelplane.PolicyDecision{ID: "d", Allow: false, Reasons: []string{"freeze window"}, PolicyVersion: "v1"}, "3"
			if err := s.AppendAudit(ctx, p); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := s.ExportAudit(ctx, &buf, store.AuditFilter{})
			if err != nil || n != 13 {
				t.Fatalf("export: %d, %v", n, err)
			}
			export := buf.String()
			if strings.Count(export, "\n") != 13 || !strings.Contains(export, `"seq":13`) || !strings.Contains(export, `"prev_hash":"`+audit.Genesis+`"`) {
				t.Fatalf("export =\n%s", export)
			}
			b, m, err := audit.VerifyJSONL(strings.NewReader(export))
			if b != nil || err != nil || m != 13 {
				t.Fatalf("offline verify: %v, %d, %v", b, m, err)
			}
			lines := strings.Split(export, "\n")
			lines[7] = strings.Replace(lines[7], `"actor":"alice"`, `"actor":"eve"`, 1)
			b, _, err = audit.VerifyJSONL(strings.NewReader(strings.Join(lines, "\n")))
			if err != nil || b == nil || b.Kind != audit.Edited || b.Seq != 8 || b.Key != "k/8" {
				t.Fatalf("tampered line: %v, %v", b, err)
			}
			// A deleted line shows as a deletion at the next one.
			lines = strings.Split(export, "\n")
			b, _, _ = audit.VerifyJSONL(strings.NewReader(strings.Join(append(lines[:4:4], lines[5:]...), "\n")))
			if b == nil || b.Kind != audit.Deleted || b.Seq != 6 {
				t.Fatalf("deleted line: %v", b)
			}

			buf.Reset()
			if n, err := s.ExportAudit(ctx, &buf, store.AuditFilter{Version: "3"}); err != nil || n != 1 || !strings.Contains(buf.String(), `"freeze window"`) {
				t.Fatalf("filtered export: %d, %v\n%s", n, err, buf.String())
			}
			buf.Reset()
			if n, err := s.ExportAudit(ctx, &buf, store.AuditFilter{Limit: 5}); err != nil || n != 5 {
				t.Fatalf("limited export: %d, %v", n, err)
			}
		})
	}
}

func BenchmarkAppendAudit(b *testing.B) {
	bench := func(b *testing.B, s *store.Store) {
		ctx := context.Background()
		details := map[string]any{"stage": "canary", "traffic": 10, "checks": []any{"latency", "errors"}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			r := rec(fmt.Sprintf("bench/%d", i))
			r.Details = details
			if err := s.AppendAudit(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		s, err := store.Open(b.TempDir() + "/bench.db")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		bench(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := store.Open(freshPostgres(b))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		bench(b, s)
	})
}

// TestAuditInMemory: the throwaway SQLite database chains too.
func TestAuditInMemory(t *testing.T) {
	ctx := context.Background()
	s := open(t, ":memory:")
	if err := s.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.AppendAudit(ctx, rec(fmt.Sprintf("m/%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	checkChain(t, s, 3)
}
