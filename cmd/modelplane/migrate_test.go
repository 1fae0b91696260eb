package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func runMigrate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := migrateCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// `modelplane migrate` reports each migration it applies, and a second run
// applies nothing; --check on a migrated database passes.
func TestMigrateReportsWhatItApplies(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mp.db")
	out, err := runMigrate(t, "--db", db)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "applied 0001_init\n") || !strings.Contains(out, "schema matches the models") {
		t.Fatalf("first migrate should report 0001_init as applied:\n%s", out)
	}
	out, err = runMigrate(t, "--db", db)
	if err != nil || strings.Contains(out, "applied 0001_init\n") {
		t.Fatalf("second migrate should apply nothing (%v):\n%s", err, out)
	}
	if out, err := runMigrate(t, "--db", db, "--check"); err != nil {
		t.Fatalf("migrate --check: %v\n%s", err, out)
	}
}
