package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/serialization"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/schema/sqlite"
)

// Postgres keeps Temporal's data in PostgreSQL instead of SQLite: two
// databases of their own (Temporal's versioning keys its schema by database
// name), created, set up and upgraded to this build's schema at start.
type Postgres struct {
	// URL is the main store: postgres://user:password@host:5432/temporal?sslmode=require.
	URL string
	// VisibilityURL is the visibility store; empty means URL with the
	// database temporal_visibility.
	VisibilityURL string
}

// DefaultVisibilityDatabase is the visibility database when only the main URL is given.
const DefaultVisibilityDatabase = "temporal_visibility"

// pgStore is one parsed database: the URL for our own connections and
// Temporal's SQL config for its plugin.
type pgStore struct {
	url      string
	database string
	sql      *config.SQL
}

// VisibilityURLFor is main with its database replaced by temporal_visibility.
func VisibilityURLFor(main string) (string, error) {
	u, err := parsePostgresURL(main)
	if err != nil {
		return "", err
	}
	u.Path = "/" + DefaultVisibilityDatabase
	return u.String(), nil
}

// parsePostgresURL parses without echoing the URL in errors: it holds a password.
func parsePostgresURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL (want postgres://user:password@host:5432/database)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("scheme %q: want postgres://user:password@host:5432/database", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host (want postgres://user:password@host:5432/database)")
	}
	if strings.Trim(u.Path, "/") == "" || strings.Contains(strings.Trim(u.Path, "/"), "/") {
		return nil, errors.New("no database name in the path (want postgres://user:password@host:5432/database)")
	}
	return u, nil
}

// newPGStore turns a postgres:// URL into Temporal's SQL config for its pgx plugin.
func newPGStore(raw string) (*pgStore, error) {
	u, err := parsePostgresURL(raw)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	pw, _ := u.User.Password()
	attrs := map[string]string{}
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("parameter %s given %d times", k, len(v))
		}
		attrs[k] = v[0]
	}
	// Temporal defaults to sslmode=disable; a URL without sslmode means
	// libpq's (and pgx's) prefer, so say so to keep the URL's meaning.
	if attrs["sslmode"] == "" {
		attrs["sslmode"] = "prefer"
	}
	db := strings.Trim(u.Path, "/")
	return &pgStore{url: raw, database: db, sql: &config.SQL{
		PluginName: postgresql.PluginNamePGX, DatabaseName: db, ConnectAddr: net.JoinHostPort(u.Hostname(), port), ConnectProtocol: "tcp",
		User: u.User.Username(), Password: pw, ConnectAttributes: attrs,
		MaxConns: 20, MaxIdleConns: 20, MaxConnLifetime: time.Hour,
	}}, nil
}

// ensureDatabase creates the database if it does not exist. Two processes
// racing to create it both succeed: the loser sees it exists.
func ensureDatabase(ctx context.Context, raw string) error {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return errors.New("cannot parse the URL")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	if !isPGCode(err, "3D000") { // invalid_catalog_name: no such database
		return fmt.Errorf("connect to database %s: %w", cfg.Database, err)
	}
	name := cfg.Database
	var errs []error
	for _, maint := range []string{"postgres", "template1"} {
		mc := cfg.Copy()
		mc.Database = maint
		c, err := pgx.ConnectConfig(ctx, mc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		_ = c.Close(ctx)
		// 42P04 duplicate_database; 23505 when two CREATE DATABASE race on the catalog.
		if err == nil || isPGCode(err, "42P04") || isPGCode(err, "23505") {
			return nil
		}
		return fmt.Errorf("create database %s (create it yourself, or grant CREATEDB): %w", name, err)
	}
	return fmt.Errorf("database %s does not exist and no maintenance database answered to create it: %w", name, errors.Join(errs...))
}

func isPGCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// ensurePGNamespace registers the namespace through Temporal's own
// persistence layer (what the frontend's RegisterNamespace does underneath),
// before the server starts, so it is in the namespace cache from the first
// request. Concurrent starts are safe: the name is unique in the table.
func ensurePGNamespace(ctx context.Context, store *pgStore, clusterName, ns string, logger log.Logger) error {
	f := sql.NewFactory(*store.sql, resolver.NewNoopResolver(), clusterName, logger, metrics.NoopMetricsHandler, serialization.NewSerializer())
	defer f.Close()
	ms, err := f.NewMetadataStore()
	if err != nil {
		return err
	}
	mm := persistence.NewMetadataManagerImpl(ms, serialization.NewSerializer(), logger, clusterName)
	if _, err := mm.GetNamespace(ctx, &persistence.GetNamespaceRequest{Name: ns}); err == nil {
		return nil
	} else if _, notFound := errors.AsType[*serviceerror.NamespaceNotFound](err); !notFound {
		return err
	}
	nsCfg, err := sqlite.NewNamespaceConfig(clusterName, ns, false, nil) // a plain NamespaceDetail; nothing SQLite-specific
	if err != nil {
		return err
	}
	_, err = mm.CreateNamespace(ctx, &persistence.CreateNamespaceRequest{Namespace: nsCfg.Detail, IsGlobalNamespace: false})
	if _, exists := errors.AsType[*serviceerror.NamespaceAlreadyExists](err); exists {
		return nil
	}
	return err
}

// ValidatePostgresURL checks a postgres:// URL the way Start will read it.
func ValidatePostgresURL(raw string) error {
	_, err := newPGStore(raw)
	return err
}

// setupTimeout bounds creating, setting up and upgrading both databases,
// including waiting for another process that holds the schema lock.
const setupTimeout = 5 * time.Minute

// preparePostgres makes both databases ready for this build's server: each
// created if missing and at the current schema version, and the namespace
// registered. It returns Temporal's persistence config for them.
func preparePostgres(p *Postgres, namespace string, logger log.Logger) (config.Persistence, error) {
	main, err := newPGStore(p.URL)
	if err != nil {
		return config.Persistence{}, fmt.Errorf("temporal main store: %w", err)
	}
	visURL := p.VisibilityURL
	if visURL == "" {
		if visURL, err = VisibilityURLFor(p.URL); err != nil {
			return config.Persistence{}, err
		}
	}
	vis, err := newPGStore(visURL)
	if err != nil {
		return config.Persistence{}, fmt.Errorf("temporal visibility store: %w", err)
	}
	if vis.sql.ConnectAddr == main.sql.ConnectAddr && vis.database == main.database {
		// Both schemas record their version under the database's name.
		return config.Persistence{}, fmt.Errorf("temporal visibility store: database %s is the main store's; give it its own", vis.database)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, s := range []struct {
		what   string
		store  *pgStore
		schema pgSchema
	}{{"main", main, mainSchema}, {"visibility", vis, visibilitySchema}} {
		if err := ensureDatabase(ctx, s.store.url); err != nil {
			return config.Persistence{}, fmt.Errorf("temporal %s store: %w", s.what, err)
		}
		if err := ensureSchema(ctx, s.store, s.schema, logger); err != nil {
			return config.Persistence{}, fmt.Errorf("temporal %s store: %w", s.what, err)
		}
	}
	if err := ensurePGNamespace(ctx, main, clusterName, namespace, logger); err != nil {
		return config.Persistence{}, fmt.Errorf("temporal namespace %s: %w", namespace, err)
	}
	return config.Persistence{
		DefaultStore: "postgres", VisibilityStore: "postgres-visibility",
		DataStores: map[string]config.DataStore{"postgres": {SQL: main.sql}, "postgres-visibility": {SQL: vis.sql}},
	}, nil
}
