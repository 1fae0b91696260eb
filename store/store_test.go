package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/pgtest"
	"github.com/modelplane/modelplane/store"
	"gorm.io/gorm"
)

// freshPostgres is a throwaway schema on the test PostgreSQL
// (MODELPLANE_TEST_POSTGRES_DSN, else one internal/pgtest finds or starts).
func freshPostgres(t testing.TB) string { return pgtest.Schema(t, "mp_test_") }

func backends(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return t.TempDir() + "/mp.db" },
		"postgres": func(t *testing.T) string { return freshPostgres(t) },
	}
}

func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func code(err error) string { return modelplane.ErrorCode(err) }

func TestStore(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if _, err := s.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "o", Team: "t", RiskTier: "high", Tags: map[string]string{"a": "b"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateModel(ctx, modelplane.Model{Name: "churn"}); code(err) != modelplane.EConflict {
				t.Fatalf("duplicate model: %v", err)
			}
			if _, err := s.GetModel(ctx, "nope"); code(err) != modelplane.ENotFound {
				t.Fatalf("missing model: %v", err)
			}
			if _, err := s.CreateVersion(ctx, modelplane.Version{Model: "nope", Version: "1"}); code(err) != modelplane.ENotFound {
				t.Fatalf("version of missing model: %v", err)
			}
			v := modelplane.Version{Model: "churn", Version: "1", ArtifactURI: "s3://x", Lineage: modelplane.Lineage{RunID: "r1"}, Metrics: map[string]float64{"auc": 0.91}}
			if _, err := s.CreateVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetVersion(ctx, "churn", "1")
			if err != nil || got.Metrics["auc"] != 0.91 || got.Lineage.RunID != "r1" {
				t.Fatalf("version = %+v, %v", got, err)
			}

			// One active promotion per model and target; idempotency keys per caller.
			p := modelplane.Promotion{ID: "p1", Model: "churn", Version: "1", Target: "prod", RequestedBy: "alice", Status: modelplane.StatusRunning, CreatedAt: time.Now().UTC()}
			if _, created, err := s.CreatePromotion(ctx, p, "k1"); err != nil || !created {
				t.Fatalf("create: %v %v", created, err)
			}
			again, created, err := s.CreatePromotion(ctx, modelplane.Promotion{ID: "p2", Model: "churn", Version: "1", Target: "prod", RequestedBy: "alice", Status: "running"}, "k1")
			if err != nil || created || again.ID != "p1" {
				t.Fatalf("idempotent replay = %s %v %v", again.ID, created, err)
			}
			_, _, err = s.CreatePromotion(ctx, modelplane.Promotion{ID: "p3", Model: "churn", Version: "1", Target: "prod", RequestedBy: "bob", Status: "running"}, "k1")
			if code(err) != modelplane.EConflict || !strings.Contains(err.Error(), "p1") {
				t.Fatalf("conflict = %v", err)
			}
			// A late write (lower seq) never overwrites a newer one.
			p.Stage = "canary"
			if err := s.UpdatePromotion(ctx, p, 5); err != nil {
				t.Fatal(err)
			}
			p.Stage = "validating"
			if err := s.UpdatePromotion(ctx, p, 3); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetPromotion(ctx, "p1"); got.Stage != "canary" {
				t.Fatalf("stale write won: stage %s", got.Stage)
			}
			p.Status, p.Stage = modelplane.StatusSucceeded, "done"
			if err := s.UpdatePromotion(ctx, p, 6); err != nil {
				t.Fatal(err)
			}
			if _, active, _ := s.ActivePromotion(ctx, "churn", "prod"); active {
				t.Fatal("pair still active after the promotion ended")
			}
			if _, created, err := s.CreatePromotion(ctx, modelplane.Promotion{ID: "p4", Model: "churn", Version: "1", Target: "prod", RequestedBy: "bob", Status: "running"}, ""); err != nil || !created {
				t.Fatalf("after end: %v", err)
			}
			list, _ := s.ListPromotions(ctx, store.PromotionFilter{Model: "churn", Status: "succeeded"})
			if len(list) != 1 || list[0].ID != "p1" {
				t.Fatalf("filtered list = %+v", list)
			}

			// Audit writes are idempotent by key and keep their order.
			recs := []modelplane.AuditRecord{{Key: "a/1", Actor: "bob", Action: "vote", Model: "churn", PromotionID: "p1", Details: map[string]any{"n": 1.0}}, {Key: "a/2", Actor: "sys", Action: "stage", Model: "churn", PromotionID: "p1"}}
			for i := 0; i < 2; i++ {
				if err := s.AppendAudit(ctx, recs...); err != nil {
					t.Fatal(err)
				}
			}
			got2, _ := s.ListAudit(ctx, store.AuditFilter{PromotionID: "p1"})
			if len(got2) != 2 || got2[0].Key != "a/1" || got2[0].Details["n"] != 1.0 {
				t.Fatalf("audit = %+v", got2)
			}
			if byActor, _ := s.ListAudit(ctx, store.AuditFilter{Actor: "bob"}); len(byActor) != 1 {
				t.Fatalf("by actor = %d", len(byActor))
			}
			if err := s.AppendAudit(ctx, modelplane.AuditRecord{Action: "x"}); err == nil {
				t.Fatal("audit record without key accepted")
			}

			// Retrain cooldown bookkeeping.
			now := time.Now().UTC()
			_ = s.RecordRetrain(ctx, "e1", "churn", "prod", "1", "drift", now)
			_ = s.RecordRetrain(ctx, "e1", "churn", "prod", "1", "drift", now)
			if _, ok, _ := s.LastRetrain(ctx, "churn", "prod", "e1"); ok {
				t.Fatal("the event itself counted against its own cooldown")
			}
			if last, ok, _ := s.LastRetrain(ctx, "churn", "prod", "e2"); !ok || last.Sub(now).Abs() > time.Second {
				t.Fatalf("last retrain = %v %v", last, ok)
			}
		})
	}
}

// TestConcurrentOpenOfFreshDatabase: an API server and a worker starting
// together on an empty database must both come up (migrations are serialized).
func TestConcurrentOpenOfFreshDatabase(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			dsn := mk(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := store.Open(dsn)
					if err == nil {
						s.Close()
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// RunningByStage counts running promotions by the stage in their document,
// across more than one read batch, and leaves ended ones out.
func TestRunningByStage(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			stages := []string{modelplane.StageAwaitingApproval, modelplane.StageCanary}
			for i := 0; i < 1203; i++ {
				p := modelplane.Promotion{ID: fmt.Sprintf("p%d", i), Model: fmt.Sprintf("m%d", i), Version: "1", Target: "prod",
					RequestedBy: "alice", Status: modelplane.StatusRunning, Stage: stages[i%2], CreatedAt: time.Now().UTC()}
				if _, _, err := s.CreatePromotion(ctx, p, ""); err != nil {
					t.Fatal(err)
				}
				if i%100 == 0 { // ended: not counted
					p.Status, p.Stage = modelplane.StatusSucceeded, modelplane.StageDone
					if err := s.UpdatePromotion(ctx, p, 1); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := s.RunningByStage(ctx)
			want := map[string]int{modelplane.StageAwaitingApproval: 602 - 13, modelplane.StageCanary: 601} // even i wait, odd bake; every 100th ended
			if err != nil || len(got) != 2 || got[stages[0]] != want[stages[0]] || got[stages[1]] != want[stages[1]] {
				t.Fatalf("RunningByStage = %v, %v; want %v", got, err, want)
			}
		})
	}
}

// A lookup is answered while a write transaction is open: on a SQLite file,
// reads have their own connections and do not queue for the one writer.
func TestReadsDoNotWaitForTheWriter(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if _, err := s.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "ana", Team: "growth", RiskTier: modelplane.RiskLow}); err != nil {
				t.Fatal(err)
			}
			holding, release := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- s.DB().Transaction(func(tx *gorm.DB) error {
					if err := tx.Exec("UPDATE models SET description = 'being edited' WHERE name = 'churn'").Error; err != nil {
						return err
					}
					close(holding)
					<-release
					return nil
				})
			}()
			select {
			case <-holding:
			case err := <-done:
				t.Fatalf("the write transaction ended early: %v", err)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := s.GetModel(rctx, "churn")
			cancel()
			close(release)
			if err != nil {
				t.Fatalf("GetModel while a write was open: %v", err)
			}
			if m.Description != "" {
				t.Fatalf("read an uncommitted description %q", m.Description)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if m, err = s.GetModel(ctx, "churn"); err != nil || m.Description != "being edited" {
				t.Fatalf("after the commit: %q, %v", m.Description, err)
			}
		})
	}
}
