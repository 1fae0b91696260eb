package bench

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if seededSQLite != "" {
		_ = os.RemoveAll(filepath.Dir(seededSQLite))
	}
	os.Exit(code)
}
