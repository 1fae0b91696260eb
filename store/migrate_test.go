package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
	"github.com/modelplane/modelplane/store"
)

func openRaw(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.OpenWith(dsn, store.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func isPostgres(dsn string) bool { return strings.HasPrefix(dsn, "postgres") }

func TestMigrateFreshDatabase(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openRaw(t, mk(t))
			st, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) < 2 || !st[0].Pending() || st[0].String() != "0001_init" || st[1].String() != "0002_audit_chain" {
				t.Fatalf("status of a fresh database = %+v", st)
			}
			err = s.CheckSchema(ctx)
			var se *store.SchemaError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "table models is missing") || !strings.Contains(err.Error(), "migration 0001_init is pending") {
				t.Fatalf("check of an empty database = %v", err)
			}

			applied, err := s.MigrateSchema(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != len(st) || applied[0].Version != 1 || applied[0].AppliedAt == nil {
				t.Fatalf("applied = %+v", applied)
			}
			if again, err := s.MigrateSchema(ctx); err != nil || len(again) != 0 {
				t.Fatalf("second run applied %v, %v", again, err)
			}
			st, err = s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range st {
				if m.Pending() || m.Unknown || time.Since(*m.AppliedAt) > time.Minute {
					t.Fatalf("after migrating: %+v", m)
				}
			}
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// schemaOf describes the store's tables (not schema_migrations) as sorted
// lines: columns with type, nullability, key and default, and indexes with
// their columns and uniqueness.
func schemaOf(t *testing.T, s *store.Store, pg bool) []string {
	t.Helper()
	db := s.DB()
	var out []string
	if pg {
		var cols []struct {
			TableName, ColumnName, DataType, IsNullable string
			CharacterMaximumLength                      *int
			ColumnDefault                               *string
		}
		if err := db.Raw(`SELECT table_name, column_name, data_type, is_nullable, character_maximum_length, column_default
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'`).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			n, d := 0, ""
			if c.CharacterMaximumLength != nil {
				n = *c.CharacterMaximumLength
			}
			if c.ColumnDefault != nil {
				d = *c.ColumnDefault
			}
			out = append(out, fmt.Sprintf("column %s.%s %s(%d) nullable=%s default=%s", c.TableName, c.ColumnName, c.DataType, n, c.IsNullable, d))
		}
		var idx []struct{ Tablename, Indexname, Indexdef string }
		if err := db.Raw(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`).Scan(&idx).Error; err != nil {
			t.Fatal(err)
		}
		for _, i := range idx {
			out = append(out, "index "+i.Indexdef)
		}
		var cons []struct{ Conname, Def string }
		if err := db.Raw(`SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND conname <> 'schema_migrations_pkey'`).Scan(&cons).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cons {
			out = append(out, "constraint "+c.Conname+" "+c.Def)
		}
	} else {
		var tables []string
		if err := db.Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`).Scan(&tables).Error; err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			var cols []struct {
				Name, Type string
				Notnull    int
				DfltValue  *string
				Pk         int
			}
			if err := db.Raw(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)`, tb).Scan(&cols).Error; err != nil {
				t.Fatal(err)
			}
			for _, c := range cols {
				d := ""
				if c.DfltValue != nil {
					d = *c.DfltValue
				}
				out = append(out, fmt.Sprintf("column %s.%s %s notnull=%d pk=%d default=%s", tb, c.Name, strings.ToLower(c.Type), c.Notnull, c.Pk, d))
			}
			var idx []struct {
				Name   string
				Unique int
				Origin string
			}
			if err := db.Raw(`SELECT name, "unique", origin FROM pragma_index_list(?)`, tb).Scan(&idx).Error; err != nil {
				t.Fatal(err)
			}
			for _, i := range idx {
				var ic []string
				if err := db.Raw(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, i.Name).Scan(&ic).Error; err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("index %s on %s(%s) unique=%d origin=%s", i.Name, tb, strings.Join(ic, ","), i.Unique, i.Origin))
			}
			var auto int
			db.Raw(`SELECT count(*) FROM sqlite_master WHERE name = ? AND sql LIKE '%AUTOINCREMENT%'`, tb).Scan(&auto)
			out = append(out, fmt.Sprintf("table %s autoincrement=%d", tb, auto))
		}
	}
	if pg {
		// Each test has its own schema; names qualified with it must compare equal.
		var cur string
		db.Raw("SELECT current_schema()").Scan(&cur)
		for i := range out {
			out[i] = strings.ReplaceAll(out[i], cur+".", "")
		}
	}
	slices.Sort(out)
	return out
}

// TestMigrationsMatchAutoMigrate: the migrations build the very schema
// gorm's AutoMigrate builds from the current models — so a model changed
// without a migration (or the reverse) fails here.
func TestMigrationsMatchAutoMigrate(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			migratedDSN, autoDSN := mk(t), mk(t)
			migrated := open(t, migratedDSN)
			auto := openRaw(t, autoDSN)
			if err := auto.DB().AutoMigrate(store.StoreModels...); err != nil {
				t.Fatal(err)
			}
			got, want := schemaOf(t, migrated, isPostgres(migratedDSN)), schemaOf(t, auto, isPostgres(autoDSN))
			if !slices.Equal(got, want) {
				t.Fatalf("migrated schema differs from AutoMigrate's\nmigrated:\n  %s\nautomigrate:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if len(got) < 60 {
				t.Fatalf("schema dump looks incomplete: %d lines", len(got))
			}
		})
	}
}

// Models as AutoMigrate last built them, before versioned migrations.
type legacyAuditRow struct {
	Seq         int64  `gorm:"primaryKey;autoIncrement"`
	Key         string `gorm:"uniqueIndex;size:255"`
	Time        time.Time
	Actor       string `gorm:"index"`
	Action      string
	Subject     string
	PromotionID string `gorm:"index"`
	Model       string `gorm:"index"`
	Target      string
	Decision    string
	Details     map[string]any `gorm:"serializer:json"`
}

func (legacyAuditRow) TableName() string { return "audit_records" }

// The versions table before lineage import.
type preLineageVersionRow struct {
	Model       string `gorm:"primaryKey;size:63"`
	Version     string `gorm:"primaryKey;size:63"`
	ArtifactURI string
	RunID       string
	Source      string
	Metrics     map[string]float64 `gorm:"serializer:json"`
	CreatedBy   string
	CreatedAt   time.Time
}

func (preLineageVersionRow) TableName() string { return "versions" }

func legacyModels(preLineage bool) []any {
	var out []any
	for _, m := range store.StoreModels {
		switch m.(interface{ TableName() string }).TableName() {
		case "audit_records":
			out = append(out, &legacyAuditRow{})
		case "versions":
			if preLineage {
				out = append(out, &preLineageVersionRow{})
			} else {
				out = append(out, m)
			}
		case "mcp_servers", "mcp_channels", "alert_notifications":
			if !preLineage { // these came later too
				out = append(out, m)
			}
		default:
			out = append(out, m)
		}
	}
	return out
}

// TestAdoptAutoMigratedDatabase: a database built by AutoMigrate, before
// versioned migrations, is adopted: what it lacks is added, its data is
// kept, its audit records are sealed into the chain, and it checks clean.
func TestAdoptAutoMigratedDatabase(t *testing.T) {
	for name, mk := range backends(t) {
		for _, preLineage := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/preLineage=%v", name, preLineage), func(t *testing.T) {
				ctx := context.Background()
				dsn := mk(t)
				old := openRaw(t, dsn)
				if err := old.DB().AutoMigrate(legacyModels(preLineage)...); err != nil {
					t.Fatal(err)
				}
				db := old.DB()
				if err := db.Exec("INSERT INTO models (name, owner, created_at) VALUES (?, ?, ?)", "churn", "o", time.Now().UTC()).Error; err != nil {
					t.Fatal(err)
				}
				if err := db.Exec("INSERT INTO versions (model, version, artifact_uri, created_at) VALUES (?, ?, ?, ?)", "churn", "1", "s3://x", time.Now().UTC()).Error; err != nil {
					t.Fatal(err)
				}
				// Seqs with gaps, as PostgreSQL's sequence left them on skipped duplicates.
				base := time.Date(2025, 5, 1, 10, 0, 0, 123456789, time.UTC)
				for i, seq := range []int64{1, 2, 5} {
					r := legacyAuditRow{Seq: seq, Key: fmt.Sprintf("old/%d", seq), Time: base.Add(time.Duration(i) * time.Minute), Actor: "alice", Action: "vote",
						Model: "churn", Details: map[string]any{"n": i, "why": "<ok>"}}
					if err := db.Create(&r).Error; err != nil {
						t.Fatal(err)
					}
				}
				old.Close()

				s := open(t, dsn)
				st, err := s.MigrationStatus(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range st {
					if m.Pending() {
						t.Fatalf("%s still pending after adoption", m)
					}
				}
				if err := s.CheckSchema(ctx); err != nil {
					t.Fatal(err)
				}
				if v, err := s.GetVersion(ctx, "churn", "1"); err != nil || v.ArtifactURI != "s3://x" {
					t.Fatalf("version after adoption = %+v, %v", v, err)
				}
				recs, err := s.ListAudit(ctx, store.AuditFilter{})
				if err != nil || len(recs) != 3 {
					t.Fatalf("audit after adoption = %d, %v", len(recs), err)
				}
				for i, r := range recs {
					if r.Seq != int64(i+1) || r.Hash == "" || r.Key != []string{"old/1", "old/2", "old/5"}[i] {
						t.Fatalf("record %d after sealing = %+v", i, r)
					}
				}
				if recs[0].PrevHash != audit.Genesis {
					t.Fatalf("first sealed record's prev_hash = %q", recs[0].PrevHash)
				}
				if b, n, err := s.VerifyAudit(ctx); b != nil || err != nil || n != 3 {
					t.Fatalf("verify after sealing: %v, %d, %v", b, n, err)
				}
				if err := s.AppendAudit(ctx, modelplane.AuditRecord{Key: "new/1", Actor: "bob", Action: "vote"}); err != nil {
					t.Fatal(err)
				}
				if b, n, err := s.VerifyAudit(ctx); b != nil || err != nil || n != 4 {
					t.Fatalf("verify after appending: %v, %d, %v", b, n, err)
				}
				if _, err := s.CreateModel(ctx, modelplane.Model{Name: "fraud"}); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A test-only model: the models table as if a field had been added to
// modelRow without a migration.
type modelRowWithSunset struct {
	Name        string `gorm:"primaryKey;size:63"`
	Owner       string
	Team        string `gorm:"index"`
	RiskTier    string
	Description string
	DataDomain  string
	Tags        map[string]string `gorm:"serializer:json"`
	CreatedAt   time.Time
	SunsetAt    *time.Time
}

func (modelRowWithSunset) TableName() string { return "models" }

// A test-only model whose field type disagrees with the column.
type promotionSeqAsTime struct {
	ID  string `gorm:"primaryKey;size:64"`
	Seq time.Time
}

func (promotionSeqAsTime) TableName() string { return "promotions" }

func TestCheckSchema(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatalf("fresh schema: %v", err)
			}
			exec := func(q string) {
				t.Helper()
				if err := s.DB().Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
			// Each step adds one problem; every earlier one must still be reported.
			var (
				want   []string
				extras []any
			)
			step := func(what, problem string, extra ...any) {
				t.Helper()
				want, extras = append(want, problem), append(extras, extra...)
				err := s.CheckSchema(ctx, extras...)
				var se *store.SchemaError
				if !errors.As(err, &se) {
					t.Fatalf("%s: CheckSchema = %v", what, err)
				}
				for _, w := range want {
					found := false
					for _, p := range se.Problems {
						found = found || strings.Contains(p, w)
					}
					if !found {
						t.Fatalf("%s: no problem mentions %q in\n%v", what, w, err)
					}
				}
			}
			exec("ALTER TABLE audit_records DROP COLUMN evidence_hash")
			step("dropped column", "column audit_records.evidence_hash is missing")
			step("field without migration", "column models.sunset_at is missing (field modelRowWithSunset.SunsetAt)", &modelRowWithSunset{})
			step("incompatible type", "column promotions.seq is", &promotionSeqAsTime{})
			exec("DROP INDEX idx_promotions_status")
			step("dropped index", "index idx_promotions_status on promotions.status is missing")
			exec("DELETE FROM schema_migrations WHERE version = 2")
			step("pending migration", "migration 0002_audit_chain is pending")
			t.Log(s.CheckSchema(ctx, extras...))
		})
	}
}

func TestMigrationsRunOnceUnderConcurrency(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := mk(t)
			stores := []*store.Store{openRaw(t, dsn), openRaw(t, dsn), openRaw(t, dsn)}
			results := make(chan []store.Migration, len(stores))
			errs := make(chan error, len(stores))
			for _, s := range stores {
				go func() {
					applied, err := s.MigrateSchema(ctx)
					results <- applied
					errs <- err
				}()
			}
			total := 0
			for range stores {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
				total += len(<-results)
			}
			st, _ := stores[0].MigrationStatus(ctx)
			if total != len(st) {
				t.Fatalf("%d migrations applied in all, want each of %d once", total, len(st))
			}
		})
	}
}

// TestMigrateStepByStep: the history applies one version at a time too.
func TestMigrateStepByStep(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openRaw(t, mk(t))
			if applied, err := s.MigrateTo(ctx, 1); err != nil || len(applied) != 1 {
				t.Fatalf("to 1: %v, %v", applied, err)
			}
			err := s.CheckSchema(ctx)
			if err == nil || !strings.Contains(err.Error(), "column audit_records.hash is missing") || !strings.Contains(err.Error(), "0002_audit_chain is pending") {
				t.Fatalf("at version 1: %v", err)
			}
			if _, err := s.MigrateSchema(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.CheckSchema(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
