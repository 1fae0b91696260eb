// Package pgtest finds the PostgreSQL server tests run against:
// MODELPLANE_TEST_POSTGRES_DSN when set, else whatever
// hack/ensure-postgres.sh provides — a server already answering on
// 127.0.0.1:5432, or a private cluster (initdb + pg_ctl on a temporary
// directory and port) it starts, installing Debian's postgresql if missing.
// So `go test ./store/` works on a fresh machine without `make test`.
package pgtest

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for the admin connection
)

// Env is the variable that names an existing server.
const Env = "MODELPLANE_TEST_POSTGRES_DSN"

var (
	once sync.Once
	dsn  string
	err  error
)

// DSN is the admin DSN of the test server, started on first use if needed.
// The answer is computed once per test binary.
func DSN() (string, error) {
	once.Do(func() { dsn, err = find() })
	return dsn, err
}

func find() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "ensure-postgres.sh")
	cmd := exec.Command(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s (set %s to use a running server): %v\n%s", script, Env, err, stderr.String())
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", fmt.Errorf("%s printed no DSN:\n%s", script, stderr.String())
	}
	return d, nil
}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("pgtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Schema creates a throwaway schema on the test server, dropped when the
// test ends, and returns a DSN whose search_path is that schema: as
// isolated as a database for the store's tables, and far quicker to make.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	admin, err := DSN()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("PostgreSQL at %s: %v", Env, err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", admin); err == nil {
			_, _ = db.Exec("DROP SCHEMA IF EXISTS " + name + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Databases names n databases on the test server that do not exist yet
// (the code under test must create them) and drops them when the test
// ends; it returns their DSNs.
func Databases(t testing.TB, prefix string, n int) []string {
	t.Helper()
	admin, err := DSN()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := prefix + hex.EncodeToString(b)
	names := make([]string, n)
	out := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s_%d", base, i)
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + names[i]
		out[i] = u.String()
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", admin); err == nil {
			for _, n := range names {
				_, _ = db.Exec("DROP DATABASE IF EXISTS " + n + " WITH (FORCE)")
			}
			db.Close()
		}
	})
	return out
}
