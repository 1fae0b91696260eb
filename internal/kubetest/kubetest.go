// Package kubetest runs a real kube-apiserver (with etcd) for tests, built
// by hack/ensure-kube.sh, with the KServe InferenceService CRD installed.
//
// There is no KServe controller: tests that need status play the controller
// by writing the status subresource. One server is shared by every test of a
// binary (start-up costs seconds); each test takes a namespace of its own.
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		c := kubetest.Start(t)
//		ns := c.Namespace(t)
//		...
//	}
package kubetest

import (
	"fmt"
	"github.com/modelplane/modelplane/internal/proc"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Versions must match hack/ensure-kube.sh: they name the cache directory.
const (
	k8sVersion  = "v1.36.4"
	etcdVersion = "v3.6.8"
	assetsRev   = "r1"
	// CRDFile is the InferenceService CRD's file name in the assets directory.
	CRDFile = "serving.kserve.io_inferenceservices.yaml"
)

// Cluster is a running kube-apiserver.
type Cluster struct {
	// Config authenticates as an administrator (system:masters).
	Config *rest.Config
	// Dynamic is a client for Config.
	Dynamic dynamic.Interface
	// Dir holds the servers' data, certificates and logs.
	Dir string

	procs []*proc.Proc
}

var (
	shared    *Cluster
	sharedErr error
	once      sync.Once
	skipMsg   string
)

// AssetsDir is where the binaries and the CRD are looked for:
// $MODELPLANE_KUBE_ASSETS, else the cache directory hack/ensure-kube.sh fills.
func AssetsDir() string {
	if d := os.Getenv("MODELPLANE_KUBE_ASSETS"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "modelplane", "kube",
		fmt.Sprintf("k8s-%s_etcd-%s_%s-%s_%s", k8sVersion, etcdVersion, runtime.GOOS, runtime.GOARCH, assetsRev))
}

// missingAssets names what is absent from dir, or "" when all is there.
func missingAssets(dir string) string {
	for _, f := range []string{"kube-apiserver", "etcd", CRDFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return filepath.Join(dir, f)
		}
	}
	return ""
}

// Start returns the binary's shared cluster, starting it on first use. When
// the binaries are missing the test is skipped (run hack/ensure-kube.sh),
// unless MODELPLANE_REQUIRE_KUBE=1 (CI), where it fails.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() {
		dir := AssetsDir()
		if m := missingAssets(dir); m != "" {
			skipMsg = fmt.Sprintf("kube-apiserver assets missing (%s): run hack/ensure-kube.sh (or set MODELPLANE_KUBE_ASSETS)", m)
			return
		}
		shared, sharedErr = start(dir)
	})
	if skipMsg != "" {
		proc.Missing(tb, skipMsg, "MODELPLANE_REQUIRE_KUBE")
	}
	if sharedErr != nil {
		tb.Fatalf("kubetest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared cluster, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}
