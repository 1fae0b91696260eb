package registrytest

import (
	"context"
	"fmt"
	"github.com/modelplane/modelplane/internal/proc"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// The registry applies its migrations and answers in well under a second
// when idle; a loaded 2-core machine gets a generous margin.
const readyTimeout = 60 * time.Second

func start(bin, adminDSN string) (r *Registry, err error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "modelplane-mcp-registry-")
	if err != nil {
		return nil, err
	}
	seed, key := newSeed()
	r = &Registry{Seed: seed, key: key, Dir: dir, dsn: adminDSN}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	db := fmt.Sprintf("mcpreg_test_%d_%s", os.Getpid(), seed[:8])
	dbURL, err := withDatabase(adminDSN, db)
	if err != nil {
		return nil, err
	}
	if err := createDatabase(ctx, adminDSN, db); err != nil {
		return nil, err
	}
	r.Database = db

	// A free port can be taken by someone else between our probe and the
	// registry's bind: try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := launch(dir, bin, []string{
			"MCP_REGISTRY_SERVER_ADDRESS=" + addr,
			"MCP_REGISTRY_DATABASE_URL=" + dbURL,
			"MCP_REGISTRY_DATABASE_MAX_CONNECTIONS=8",
			"MCP_REGISTRY_DATABASE_MIN_CONNECTIONS=1",
			"MCP_REGISTRY_JWT_PRIVATE_KEY=" + seed,
			"MCP_REGISTRY_ENABLE_ANONYMOUS_AUTH=false",
			"MCP_REGISTRY_ENABLE_REGISTRY_VALIDATION=false",
			"MCP_REGISTRY_SEED_FROM=",
			"MCP_REGISTRY_OIDC_ENABLED=false",
			"MCP_REGISTRY_VERSION=registrytest",
		})
		if err != nil {
			return nil, err
		}
		base := "http://" + addr
		if err := waitHealthy(ctx, p, base+"/v0/health"); err != nil {
			p.Stop()
			lastErr = fmt.Errorf("%v\n--- registry log ---\n%s", err, p.Tail())
			if p.Exited() && ctx.Err() == nil {
				continue // most likely the port was taken; try another
			}
			return nil, lastErr
		}
		r.proc, r.URL = p, base
		r.StartupTime = time.Since(began)
		return r, nil
	}
	return nil, lastErr
}

// withDatabase returns dsn (a postgres:// URL) naming database db instead.
func withDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("MODELPLANE_TEST_POSTGRES_DSN must be a postgres:// URL, got %q", redact(dsn))
	}
	u.Path = "/" + db
	return u.String(), nil
}

// redact hides a password in a DSN for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

func createDatabase(ctx context.Context, adminDSN, db string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s (set MODELPLANE_TEST_POSTGRES_DSN, or run hack/ensure-postgres.sh): %w", redact(adminDSN), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

func dropDatabase(ctx context.Context, adminDSN, db string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// waitHealthy polls the health endpoint until it answers 200, the process
// exits or ctx ends.
func waitHealthy(ctx context.Context, p *proc.Proc, healthURL string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.Done():
			return fmt.Errorf("registry exited before becoming healthy: %v", p.Err())
		case <-ctx.Done():
			return fmt.Errorf("registry not healthy at %s within %s", healthURL, readyTimeout)
		case <-tick.C:
		}
	}
}

// launch starts bin with env (on top of a minimal environment) and its log in dir.
func launch(dir, bin string, env []string) (*proc.Proc, error) {
	cmd := exec.Command(bin)
	cmd.Dir = dir
	// Only what the registry needs: no MCP_REGISTRY_* leaking in from the
	// developer's shell (a SEED_FROM pointing at the public registry, say).
	base := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TZ=UTC"}
	cmd.Env = append(base, env...)
	return proc.Start("registry", cmd, filepath.Join(dir, "registry.log"))
}
