package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// migrationFiles holds the schema's history, one file per version and
// dialect: NNNN_name.postgres.sql and NNNN_name.sqlite.sql.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one step of the schema's history.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// AppliedAt is when the database got it; nil while pending.
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	// Unknown marks a version the database has but this build does not
	// ship: a newer modelplane migrated it.
	Unknown bool `json:"unknown,omitempty"`
}

// Pending reports whether the migration is yet to be applied.
func (m Migration) Pending() bool { return m.AppliedAt == nil }

func (m Migration) String() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

type migration struct {
	version int
	name    string
	stmts   []string
	// after runs in the migration's transaction once its statements have,
	// for what SQL cannot do portably.
	after func(ctx context.Context, tx *sql.Tx, d dialect) error
}

// migrationHooks are the Go steps of migrations, by version. They must only
// use the schema as of their version: later migrations may change it.
var migrationHooks = map[int]func(context.Context, *sql.Tx, dialect) error{
	2: sealAuditChain,
}

type dialect string

const (
	dialectPostgres dialect = "postgres"
	dialectSQLite   dialect = "sqlite"
)

// bind rewrites ? placeholders for the driver (pgx wants $n).
func (d dialect) bind(q string) string {
	if d != dialectPostgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *Store) dialect() dialect {
	if s.postgres {
		return dialectPostgres
	}
	return dialectSQLite
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(postgres|sqlite)\.sql$`)

var loadMigrations = sync.OnceValues(func() (map[dialect][]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	out := map[dialect][]migration{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations/%s: name is not NNNN_name.(postgres|sqlite).sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		stmts, err := splitSQL(string(b))
		if err != nil {
			return nil, fmt.Errorf("migrations/%s: %w", e.Name(), err)
		}
		d := dialect(m[3])
		out[d] = append(out[d], migration{version: v, name: m[2], stmts: stmts, after: migrationHooks[v]})
	}
	// Both dialects must tell the same history, numbered 1, 2, 3 ...
	for _, d := range []dialect{dialectPostgres, dialectSQLite} {
		ms := out[d]
		sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
		for i, m := range ms {
			if m.version != i+1 {
				return nil, fmt.Errorf("migrations: %s version %04d_%s is out of sequence (want %04d)", d, m.version, m.name, i+1)
			}
		}
	}
	pg, lite := out[dialectPostgres], out[dialectSQLite]
	if len(pg) != len(lite) {
		return nil, fmt.Errorf("migrations: %d for postgres but %d for sqlite", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].name != lite[i].name {
			return nil, fmt.Errorf("migrations: version %04d is %q for postgres but %q for sqlite", pg[i].version, pg[i].name, lite[i].name)
		}
	}
	return out, nil
})

// splitSQL cuts a script into statements at semicolons outside quotes and
// drops -- comments.
func splitSQL(script string) ([]string, error) {
	var (
		stmts []string
		cur   strings.Builder
		quote rune
	)
	rs := []rune(script)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			cur.WriteRune(c)
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			cur.WriteRune(c)
		case c == '-' && i+1 < len(rs) && rs[i+1] == '-':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			cur.WriteRune('\n')
		case c == ';':
			if st := strings.TrimSpace(cur.String()); st != "" {
				stmts = append(stmts, st)
			}
			cur.Reset()
		default:
			cur.WriteRune(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if st := strings.TrimSpace(cur.String()); st != "" {
		return nil, fmt.Errorf("statement without a closing semicolon: %.40q", st)
	}
	return stmts, nil
}

// addColumnIfNotExists matches what SQLite cannot run as written.
var addColumnIfNotExists = regexp.MustCompile("(?is)^ALTER\\s+TABLE\\s+[`\"]?(\\w+)[`\"]?\\s+ADD\\s+COLUMN\\s+IF\\s+NOT\\s+EXISTS\\s+([`\"]?(\\w+)[`\"]?.*)$")

// exec runs one migration statement, emulating ADD COLUMN IF NOT EXISTS on SQLite.
func (d dialect) exec(ctx context.Context, tx *sql.Tx, stmt string) error {
	if d == dialectSQLite {
		if m := addColumnIfNotExists.FindStringSubmatch(stmt); m != nil {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", m[1], m[3]).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			stmt = fmt.Sprintf("ALTER TABLE `%s` ADD COLUMN %s", m[1], m[2])
		}
	}
	_, err := tx.ExecContext(ctx, stmt)
	return err
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at %s NOT NULL
)`

// MigrateSchema brings the store's schema up to date and returns the
// migrations it applied. Each runs in its own transaction; concurrent
// callers, in this process or others, are serialized — on PostgreSQL by an
// advisory lock, on SQLite by the write lock BEGIN IMMEDIATE takes — so a
// migration is applied once. A database AutoMigrate created before
// versioned migrations existed is adopted: the guarded statements of 0001
// add only what it lacks, and the result is checked against the models.
func (s *Store) MigrateSchema(ctx context.Context) ([]Migration, error) {
	return s.migrateTo(ctx, 0)
}

// migrateTo applies migrations up to version upTo (0: all).
func (s *Store) migrateTo(ctx context.Context, upTo int) ([]Migration, error) {
	all, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	ms := all[s.dialect()]
	if upTo > 0 && upTo < len(ms) {
		ms = ms[:upTo]
	}
	// Every start of every process comes through here: when nothing is
	// pending, answer without taking a lock.
	if applied, err := s.appliedVersions(ctx); err == nil {
		pending := false
		for _, m := range ms {
			if _, ok := applied[m.version]; !ok {
				pending = true
			}
		}
		if !pending {
			return nil, nil
		}
	}

	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	// One connection throughout: on SQLite it is the only one there is.
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var (
		done     []Migration
		adopting bool
	)
	for _, m := range ms {
		applied, legacy, err := s.applyMigration(ctx, conn, m)
		if err != nil {
			conn.Close()
			return done, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		adopting = adopting || legacy
		if applied != nil {
			done = append(done, *applied)
		}
	}
	conn.Close()
	if adopting && upTo == 0 {
		// CREATE TABLE IF NOT EXISTS leaves an existing table as it is:
		// make sure what was adopted is what the code expects.
		if err := s.CheckSchema(ctx); err != nil {
			return done, fmt.Errorf("adopting a database created before versioned migrations: %w", err)
		}
	}
	return done, nil
}

// applyMigration applies m unless it already is, in one transaction.
// legacy reports a database built by AutoMigrate, seen while applying the first.
func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m migration) (applied *Migration, legacy bool, err error) {
	d := s.dialect()
	// On SQLite the DSN's _txlock=immediate makes this BEGIN IMMEDIATE: the
	// write lock is taken before schema_migrations is read.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if d == dialectPostgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return nil, false, err
		}
	}
	tsType := "datetime"
	if d == dialectPostgres {
		tsType = "timestamptz"
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(createSchemaMigrations, tsType)); err != nil {
		return nil, false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, d.bind("SELECT count(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return nil, false, err
	}
	if n > 0 {
		return nil, false, tx.Commit()
	}
	if m.version == 1 {
		if legacy, err = tableExists(ctx, tx, d, "audit_records"); err != nil {
			return nil, false, err
		}
	}
	for _, st := range m.stmts {
		if err := d.exec(ctx, tx, st); err != nil {
			return nil, false, fmt.Errorf("%w\n%s", err, st)
		}
	}
	if m.after != nil {
		if err := m.after(ctx, tx, d); err != nil {
			return nil, false, err
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := tx.ExecContext(ctx, d.bind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"), m.version, m.name, now); err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, err
	}
	return &Migration{Version: m.version, Name: m.name, AppliedAt: &now}, legacy, nil
}

func tableExists(ctx context.Context, tx *sql.Tx, d dialect, table string) (bool, error) {
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if d == dialectPostgres {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	var n int
	err := tx.QueryRowContext(ctx, q, table).Scan(&n)
	return n > 0, err
}

type appliedMigration struct {
	name string
	at   time.Time
}

// appliedVersions reads schema_migrations; it fails when the table does not exist.
func (s *Store) appliedVersions(ctx context.Context) (map[int]appliedMigration, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	rows, err := sqlDB.QueryContext(ctx, "SELECT version, name, applied_at FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]appliedMigration{}
	for rows.Next() {
		var (
			v    int
			name string
			at   any
		)
		if err := rows.Scan(&v, &name, &at); err != nil {
			return nil, err
		}
		t, err := asTime(at)
		if err != nil {
			return nil, fmt.Errorf("schema_migrations version %d: %w", v, err)
		}
		out[v] = appliedMigration{name: name, at: t}
	}
	return out, rows.Err()
}

// asTime reads a timestamp column scanned into any: drivers give time.Time,
// but SQLite hands back text when a value does not parse as its declared type.
func asTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case nil:
		return time.Time{}, nil
	case []byte:
		return parseTime(string(x))
	case string:
		return parseTime(x)
	}
	return time.Time{}, fmt.Errorf("unexpected time value %T", v)
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q", s)
}

// MigrationStatus lists every migration this build ships, applied or
// pending, and any the database has that this build does not know, by version.
func (s *Store) MigrationStatus(ctx context.Context) ([]Migration, error) {
	all, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	applied, err := s.appliedVersions(ctx)
	if err != nil {
		if exists, terr := s.hasTable(ctx, "schema_migrations"); terr != nil || exists {
			return nil, errors.Join(err, terr)
		}
		applied = nil // a database never migrated: everything is pending
	}
	var out []Migration
	for _, m := range all[s.dialect()] {
		mi := Migration{Version: m.version, Name: m.name}
		if a, ok := applied[m.version]; ok {
			at := a.at
			mi.AppliedAt = &at
			delete(applied, m.version)
		}
		out = append(out, mi)
	}
	for v, a := range applied {
		at := a.at
		out = append(out, Migration{Version: v, Name: a.name, AppliedAt: &at, Unknown: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

func (s *Store) hasTable(ctx context.Context, table string) (bool, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return false, err
	}
	tx, err := sqlDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return tableExists(ctx, tx, s.dialect(), table)
}
