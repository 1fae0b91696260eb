package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/server/common/log"
	v12 "go.temporal.io/server/schema/postgresql/v12"
	"go.temporal.io/server/tools/common/schema"
)

// pgSchema is one of Temporal's versioned PostgreSQL schemas, as embedded in
// the server module (go.temporal.io/server/schema).
type pgSchema struct {
	name    string // directory in the embedded schema FS
	version string // what this build's server requires
}

var (
	mainSchema       = pgSchema{name: "postgresql/v12/temporal", version: v12.Version}
	visibilitySchema = pgSchema{name: "postgresql/v12/visibility", version: v12.VisibilityVersion}
)

// schemaLockKey is the advisory lock (per database) held while a schema is
// set up or upgraded, so concurrent starts take turns instead of
// interleaving DDL.
const schemaLockKey int64 = 0x6d706c5f736368 // "mpl_sch"

// ensureSchema brings the database to s.version with Temporal's schema tool:
//   - an empty database is set up from schema.sql inside one transaction, so
//     an interrupted first start leaves nothing half-created behind;
//   - a database at an older version runs the versioned upgrades (not in a
//     transaction: some use CREATE INDEX CONCURRENTLY; the tool tolerates
//     re-running a version that was cut short);
//   - a database at the current version is left alone.
//
// A database with tables but no Temporal schema version is refused rather
// than written into.
func ensureSchema(ctx context.Context, store *pgStore, s pgSchema, logger log.Logger) error {
	conn, err := pgx.Connect(ctx, store.url)
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", store.database, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := lockSchema(ctx, conn); err != nil {
		return fmt.Errorf("database %s: schema lock: %w", store.database, err)
	}
	// Closing the connection also releases the lock.
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", schemaLockKey) }()

	var hasVersionTable bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&hasVersionTable); err != nil {
		return err
	}
	if !hasVersionTable {
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&tables); err != nil {
			return err
		}
		if tables > 0 {
			return fmt.Errorf("database %s has %d tables but no Temporal schema version: it is not Temporal's; give Temporal a database of its own", store.database, tables)
		}
		return setupSchema(ctx, conn, store.database, s, logger)
	}
	db := &pgSchemaDB{ctx: ctx, q: conn, database: store.database}
	cur, err := db.ReadSchemaVersion()
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("database %s has a schema_version table without a version for it: an interrupted setup by another tool? Drop the database to start over", store.database)
	}
	if err != nil {
		return fmt.Errorf("database %s: read schema version: %w", store.database, err)
	}
	if cur == s.version {
		return nil
	}
	logger.Info(fmt.Sprintf("upgrading Temporal schema of database %s from %s to %s", store.database, cur, s.version))
	err = schema.NewUpdateSchemaTask(db, &schema.UpdateConfig{DBName: store.database, SchemaName: s.name}, logger).Run()
	if err != nil {
		return fmt.Errorf("database %s: upgrade schema from %s: %w", store.database, cur, err)
	}
	return nil
}

// lockSchema takes the schema lock, polling rather than blocking: a
// session waiting in pg_advisory_lock holds a snapshot that the holder's
// CREATE INDEX CONCURRENTLY would wait for, a deadlock PostgreSQL breaks by
// failing one of them.
func lockSchema(ctx context.Context, conn *pgx.Conn) error {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", schemaLockKey).Scan(&got); err != nil {
			return err
		}
		if got {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("another process holds it: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

func setupSchema(ctx context.Context, conn *pgx.Conn, database string, s pgSchema, logger log.Logger) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // no-op after Commit
	db := &pgSchemaDB{ctx: ctx, q: tx, database: database}
	if err := schema.NewSetupSchemaTask(db, &schema.SetupConfig{SchemaName: s.name, InitialVersion: s.version}, logger).Run(); err != nil {
		return fmt.Errorf("database %s: set up schema %s: %w", database, s.version, err)
	}
	return tx.Commit(ctx)
}

// schemaVersion reads the version ensureSchema recorded (for tests and checks).
func schemaVersion(ctx context.Context, store *pgStore) (string, error) {
	conn, err := pgx.Connect(ctx, store.url)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return (&pgSchemaDB{ctx: ctx, q: conn, database: store.database}).ReadSchemaVersion()
}

// pgSchemaDB is the schema tool's database over one pgx connection or
// transaction. The version tables and queries are those of Temporal's
// PostgreSQL plugin (sqlplugin/postgresql/admin.go), which the server reads
// at start to check the version.
type pgSchemaDB struct {
	ctx context.Context
	q   interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	database string
}

var _ schema.DB = (*pgSchemaDB)(nil)

func (d *pgSchemaDB) Exec(stmt string, args ...any) error {
	_, err := d.q.Exec(d.ctx, stmt, args...)
	return err
}

// DropAllTables is refused: modelplane never overwrites a database.
func (d *pgSchemaDB) DropAllTables() error {
	return errors.New("refusing to drop tables")
}

func (d *pgSchemaDB) CreateSchemaVersionTables() error {
	if err := d.Exec(`CREATE TABLE IF NOT EXISTS schema_version(version_partition INT not null, db_name VARCHAR(255) not null, ` +
		`creation_time TIMESTAMP, curr_version VARCHAR(64), min_compatible_version VARCHAR(64), PRIMARY KEY (version_partition, db_name));`); err != nil {
		return err
	}
	return d.Exec(`CREATE TABLE IF NOT EXISTS schema_update_history(version_partition INT not null, year int not null, month int not null, ` +
		`update_time TIMESTAMP not null, description VARCHAR(255), manifest_md5 VARCHAR(64), new_version VARCHAR(64), old_version VARCHAR(64), ` +
		`PRIMARY KEY (version_partition, year, month, update_time));`)
}

func (d *pgSchemaDB) ReadSchemaVersion() (string, error) {
	var v string
	err := d.q.QueryRow(d.ctx, `SELECT curr_version FROM schema_version WHERE version_partition=0 AND db_name=$1`, d.database).Scan(&v)
	return v, err
}

func (d *pgSchemaDB) UpdateSchemaVersion(newVersion, minCompatibleVersion string) error {
	return d.Exec(`INSERT INTO schema_version(version_partition, db_name, creation_time, curr_version, min_compatible_version) VALUES (0,$1,$2,$3,$4) `+
		`ON CONFLICT (version_partition, db_name) DO UPDATE SET creation_time = excluded.creation_time, curr_version = excluded.curr_version, `+
		`min_compatible_version = excluded.min_compatible_version`, d.database, time.Now().UTC(), newVersion, minCompatibleVersion)
}

func (d *pgSchemaDB) WriteSchemaUpdateLog(oldVersion, newVersion, manifestMD5, desc string) error {
	now := time.Now().UTC()
	return d.Exec(`INSERT INTO schema_update_history(version_partition, year, month, update_time, old_version, new_version, manifest_md5, description) `+
		`VALUES (0,$1,$2,$3,$4,$5,$6,$7)`, now.Year(), int(now.Month()), now, oldVersion, newVersion, manifestMD5, desc)
}

func (d *pgSchemaDB) Close() {}

func (d *pgSchemaDB) Type() string { return "sql" }
