// The tests validate the deployment artifacts offline: the
// Dockerfile (a lint of our own; hadolint is not packaged here), the compose
// file (the official compose-spec JSON schema plus our own rules), the
// Prometheus config (promtool) and the Helm chart (helm lint, helm template,
// strict decoding into the Kubernetes API types, the ServiceMonitor CRD's
// schema). Each check also runs on a deliberately broken copy and must fail
// there, so a check that silently stopped checking is caught.
//
// The heavier tools come from hack/ensure-deploy-tools.sh (cached). Without
// them those tests skip, unless MODELPLANE_REQUIRE_DEPLOY_TOOLS=1 (make test,
// CI), where they fail.

package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/modelplane/modelplane/internal/proc"
)

// Versions must match hack/ensure-deploy-tools.sh: they name the cache directory.
const (
	helmVersion      = "v3.22.0"
	composeGoVersion = "v2.16.2"
	promopVersion    = "v0.85.0"
	toolsRev         = "r2"
	smCRDFile        = "monitoring.coreos.com_servicemonitors.yaml"
	requireEnv       = "MODELPLANE_REQUIRE_DEPLOY_TOOLS"
)

// root is the repository root (tests run in deploy/).
func root(t testing.TB) string {
	t.Helper()
	r, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// toolsDir is $MODELPLANE_DEPLOY_TOOLS, else the directory the hack script fills.
func toolsDir() string {
	if d := os.Getenv("MODELPLANE_DEPLOY_TOOLS"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "modelplane", "deploy-tools",
		fmt.Sprintf("helm-%s_compose-go-%s_promop-%s_%s-%s_%s", helmVersion, composeGoVersion, promopVersion, runtime.GOOS, runtime.GOARCH, toolsRev))
}

// tool returns the path of a file in the tools directory, skipping (or, with
// MODELPLANE_REQUIRE_DEPLOY_TOOLS=1, failing) the test when it is absent.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(toolsDir(), name)
	if _, err := os.Stat(p); err != nil {
		proc.Missing(t, fmt.Sprintf("%s missing (%v): run hack/ensure-deploy-tools.sh (or set MODELPLANE_DEPLOY_TOOLS)", name, err), requireEnv)
	}
	if name == "schemacheck" {
		// A validator built from older sources would validate with old rules.
		got, _ := os.ReadFile(p + ".sha256")
		if want := toolsHash(t); strings.TrimSpace(string(got)) != want {
			proc.Missing(t, "schemacheck is stale (deploy/tools changed): rerun hack/ensure-deploy-tools.sh", requireEnv)
		}
	}
	return p
}

// toolsHash matches tools_hash in the hack script: the contents of
// deploy/tools' go.mod, go.sum and *.go files, in byte order of their paths.
func toolsHash(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "tools")
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if n := d.Name(); strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, "./"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// run executes a tool and returns its combined output; err is non-nil on a
// non-zero exit.
func run(t testing.TB, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), err
}

// writeTemp writes b to a file in a per-test directory.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustReplace applies a mutation for a negative control, failing the test if
// the original text is gone (the control would otherwise test nothing).
func mustReplace(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("negative control is stale: %q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

// expectProblem asserts that a checker reports a problem containing want.
func expectProblem(t testing.TB, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("broken copy passed: want a problem containing %q, got %q", want, problems)
}

func expectNone(t testing.TB, what string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}

// goModVersion is the go directive of the main module.
func goModVersion(t testing.TB) string {
	t.Helper()
	for _, line := range strings.Split(string(read(t, "go.mod")), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no go directive in go.mod")
	return ""
}
