// Package store keeps modelplane's metadata in a SQL database through gorm:
// SQLite (the embedded default) or PostgreSQL (production).
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	// modernc registers the pure-Go "sqlite" database/sql driver; Temporal's
	// SQLite plugin imports it too, so we reuse it instead of registering a
	// second driver under the same name (which panics at start).
	_ "modernc.org/sqlite"
)

// Store is the metadata store.
type Store struct {
	db *gorm.DB
	// rdb serves plain reads (Get*, List*). On a SQLite file it is a pool of
	// read-only connections beside db's one writer: in WAL mode readers do
	// not wait for the writer, so a lookup is not queued behind every write
	// of every running promotion. Elsewhere it is db.
	rdb      *gorm.DB
	postgres bool
}

// Options tune OpenWith.
type Options struct {
	// NoMigrate opens the database as it is, for inspecting it
	// (MigrationStatus, CheckSchema) or migrating it explicitly.
	NoMigrate bool
}

// Open connects to dsn: a postgres:// URL, or a SQLite file path (":memory:"
// for a throwaway database), and brings its schema up to date (MigrateSchema).
func Open(dsn string) (*Store, error) { return OpenWith(dsn, Options{}) }

// OpenWith is Open with options.
func OpenWith(dsn string, o Options) (*Store, error) {
	cfg := &gorm.Config{Logger: logger.Discard, NowFunc: func() time.Time { return time.Now().UTC() }}
	var (
		db  *gorm.DB
		err error
		pg  = strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	)
	if pg {
		db, err = gorm.Open(postgres.Open(dsn), cfg)
	} else {
		// Switching a fresh file to WAL takes an exclusive lock that SQLite
		// refuses at once (SQLITE_BUSY, no busy handler) while another process
		// opens the same file — an API server and a worker starting together.
		for wait := 10 * time.Millisecond; ; wait *= 2 {
			db, err = gorm.Open(sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: sqliteDSN(dsn)}), cfg)
			if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") || wait > 2*time.Second {
				break
			}
			time.Sleep(wait)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if !pg {
		// SQLite allows one writer; one connection avoids SQLITE_BUSY under load
		// and keeps a ":memory:" database alive and shared.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(20)
	}
	s := &Store{db: db, rdb: db, postgres: pg}
	if !o.NoMigrate {
		if _, err := s.MigrateSchema(context.Background()); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	if !pg && dsn != ":memory:" {
		// Opened after the writer made the file WAL (a ":memory:" database
		// is per connection, so it has no second pool).
		if s.rdb, err = gorm.Open(sqlite.New(sqlite.Config{DriverName: "sqlite", DSN: sqliteReadDSN(dsn)}), cfg); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open store readers: %w", err)
		}
		rsql, err := s.rdb.DB()
		if err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		rsql.SetMaxOpenConns(readers)
		rsql.SetMaxIdleConns(readers)
	}
	return s, nil
}

// readers is the size of a SQLite file's read pool: a reader per core of a
// small machine and some to spare; reads are short.
const readers = 4

// sqliteReadDSN opens connections that refuse writes (query_only), so a
// store method that writes through rdb by mistake fails at once.
func sqliteReadDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=query_only(1)"
}

func sqliteDSN(path string) string {
	// _txlock=immediate: a write transaction takes the write lock when it
	// begins, so read-then-write transactions (the audit chain's append,
	// migrations) are serialized across processes sharing the file instead
	// of failing with SQLITE_BUSY when they upgrade. Read-only ones stay deferred.
	if path == ":memory:" {
		return "file::memory:?_txlock=immediate&_pragma=foreign_keys(1)"
	}
	// busy_timeout first: the pragmas apply in order, and switching a fresh
	// file to WAL while another process opens it must wait, not fail.
	return "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
}

// DB exposes the connection to packages that keep their own tables (the simulator).
func (s *Store) DB() *gorm.DB { return s.db }

// Close releases the connection.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if s.rdb != s.db {
		if r, err := s.rdb.DB(); err == nil {
			_ = r.Close()
		}
	}
	return sqlDB.Close()
}

// Migrate creates or updates extra tables owned by other packages (the
// simulator) with gorm's AutoMigrate, serialized like the store's own
// migrations. The store's tables are not managed here but by MigrateSchema.
func (s *Store) Migrate(models ...any) error {
	return s.withMigrationLock(func(tx *gorm.DB) error { return tx.AutoMigrate(models...) })
}

// storeModels are the tables the versioned migrations create; CheckSchema
// holds the database to them.
var storeModels = []any{&modelRow{}, &versionRow{}, &targetRow{}, &promotionRow{}, &deploymentRow{}, &auditRow{}, &retrainRow{}, &alertRow{}, &mcpServerRow{}, &mcpChannelRow{}, &pipelineRow{}, &settingRow{}}

// Advisory lock keys (PostgreSQL): one for schema changes, one for the audit chain's tip.
var (
	migrateLockKey = lockKey("modelplane-migrate")
	auditLockKey   = lockKey("modelplane-audit-chain")
)

func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() >> 1)
}

// withMigrationLock serializes schema changes: an API server and a worker
// starting together on a fresh database otherwise race to create the same tables.
func (s *Store) withMigrationLock(fn func(*gorm.DB) error) error {
	if !s.postgres {
		var err error
		for i := 0; i < 5; i++ {
			if err = fn(s.db); err == nil || !strings.Contains(err.Error(), "already exists") {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	}
	ctx := context.Background()
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck
	tx, err := gorm.Open(postgres.New(postgres.Config{Conn: conn}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	return fn(tx)
}

func notFound(err error, what string, args ...any) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.Errorf(modelplane.ENotFound, what, args...)
	}
	return err
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "duplicate key value") || strings.Contains(msg, "SQLSTATE 23505")
}
