package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
)

// failAuditOf makes the store refuse audit records by actor, inside the
// database, so the failure comes mid-transaction.
func failAuditOf(t *testing.T, s *store.Store, actor string) {
	t.Helper()
	db := s.DB()
	var stmts []string
	if db.Dialector.Name() == "postgres" {
		stmts = []string{
			`CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records FOR EACH ROW WHEN (NEW.actor = '` + actor + `') EXECUTE FUNCTION refuse_audit()`,
		}
	} else {
		stmts = []string{`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records WHEN NEW.actor = '` + actor + `' BEGIN SELECT RAISE(ABORT, 'refused'); END`}
	}
	for _, q := range stmts {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRecordProgress(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if _, err := s.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "o", Team: "t"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateVersion(ctx, modelplane.Version{Model: "churn", Version: "2"}); err != nil {
				t.Fatal(err)
			}
			p := modelplane.Promotion{ID: "p1", Model: "churn", Version: "2", Target: "prod", Status: modelplane.StatusRunning, CreatedAt: time.Now().UTC()}
			if _, _, err := s.CreatePromotion(ctx, p, ""); err != nil {
				t.Fatal(err)
			}
			rec := func(key, actor string) modelplane.AuditRecord {
				return modelplane.AuditRecord{Key: key, Actor: actor, Action: modelplane.AuditStage, PromotionID: "p1", Model: "churn", Target: "prod"}
			}
			step := func(seq int64, stage string, weight int, recs ...modelplane.AuditRecord) store.Progress {
				q := p
				q.Stage = stage
				return store.Progress{Audit: recs, Seq: seq, Promotion: &q,
					Deployment: &modelplane.Deployment{Model: "churn", Target: "prod", Stable: "1", Traffic: map[string]int{"1": 100 - weight, "2": weight}}}
			}
			state := func() (string, int, int) {
				t.Helper()
				got, err := s.GetPromotion(ctx, "p1")
				if err != nil {
					t.Fatal(err)
				}
				d, _, err := s.GetDeployment(ctx, "churn", "prod")
				if err != nil {
					t.Fatal(err)
				}
				recs, err := s.ListAudit(ctx, store.AuditFilter{PromotionID: "p1"})
				if err != nil {
					t.Fatal(err)
				}
				return got.Stage, d.Traffic["2"], len(recs)
			}

			// Everything lands, and a retry adds nothing.
			first := step(1, modelplane.StageCanary, 10, rec("p1/1", "system"), rec("p1/2", "system"))
			for range 2 {
				if err := s.RecordProgress(ctx, first); err != nil {
					t.Fatal(err)
				}
				if stage, w, n := state(); stage != modelplane.StageCanary || w != 10 || n != 2 {
					t.Fatalf("after the first step: stage %q, weight %d, %d records", stage, w, n)
				}
			}

			// A refused audit record takes the promotion and deployment
			// written before it in the same step back with it.
			failAuditOf(t, s, "refused")
			err := s.RecordProgress(ctx, step(2, modelplane.StageMonitoring, 100, rec("p1/3", "system"), rec("p1/4", "refused")))
			if err == nil || !strings.Contains(err.Error(), "audit") {
				t.Fatalf("refused record: %v", err)
			}
			if stage, w, n := state(); stage != modelplane.StageCanary || w != 10 || n != 2 {
				t.Fatalf("after a failed step: stage %q, weight %d, %d records; want it all as before", stage, w, n)
			}

			// A promotion the store lacks is an error, as UpdatePromotion's
			// was, but the step's deployment and records are kept.
			lost := step(3, modelplane.StageMonitoring, 50, rec("p1/5", "system"))
			lost.Promotion.ID = "nope"
			if err := s.RecordProgress(ctx, lost); code(err) != modelplane.ENotFound {
				t.Fatalf("missing promotion: %v", err)
			}
			if stage, w, n := state(); stage != modelplane.StageCanary || w != 50 || n != 3 {
				t.Fatalf("after a missing promotion: stage %q, weight %d, %d records", stage, w, n)
			}
			if brk, n, err := s.VerifyAudit(ctx); err != nil || brk != nil || n != 3 {
				t.Fatalf("chain: break %+v, %d records, %v", brk, n, err)
			}
		})
	}
}
