// Package registrytest runs the official MCP registry
// (github.com/modelcontextprotocol/registry, built by
// hack/ensure-mcp-registry.sh) against a fresh PostgreSQL database, for
// tests of code that publishes MCP servers.
//
// One registry is shared by every test of a binary; tests keep apart by
// publishing under namespaces of their own (Namespace). The harness holds
// the registry's JWT signing seed, so it mints tokens for any namespace
// without going through an authentication method.
//
//	func TestMain(m *testing.M) { os.Exit(registrytest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		reg := registrytest.Start(t)
//		ns := reg.Namespace(t)
//		token := reg.Token(ns, "publish")
//		...
//	}
package registrytest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/modelplane/modelplane/internal/pgtest"
	"github.com/modelplane/modelplane/internal/proc"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Version must match hack/ensure-mcp-registry.sh: it names the cache directory.
const (
	Version = "v1.8.7"
	rev     = "r1"
)

// TokenTTL is how long minted tokens are valid (the registry's own are 5 minutes).
const TokenTTL = 5 * time.Minute

// Registry is a running MCP registry.
type Registry struct {
	// URL is the registry's base URL, e.g. http://127.0.0.1:40123 (the API is under /v0).
	URL string
	// Seed is the hex Ed25519 seed the registry signs and checks tokens with.
	Seed string
	// Database is the name of the PostgreSQL database created for it.
	Database string
	// Dir holds the registry's log.
	Dir string
	// StartupTime is how long creating the database and starting the registry took.
	StartupTime time.Duration

	key   ed25519.PrivateKey
	proc  *proc.Proc
	dsn   string // admin DSN, to drop Database
	nsSeq atomic.Int64
}

var (
	shared    *Registry
	sharedErr error
	once      sync.Once
	skipMsg   string
)

// Binary is where the registry binary is looked for:
// $MODELPLANE_MCP_REGISTRY_BIN, else the cache hack/ensure-mcp-registry.sh fills.
func Binary() string {
	if b := os.Getenv("MODELPLANE_MCP_REGISTRY_BIN"); b != "" {
		return b
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "modelplane", "mcp-registry",
		fmt.Sprintf("%s_%s-%s_%s", Version, runtime.GOOS, runtime.GOARCH, rev), "registry")
}

// PostgresDSN is the server the registry's database is created on:
// MODELPLANE_TEST_POSTGRES_DSN, else one internal/pgtest finds or starts.
func PostgresDSN() (string, error) { return pgtest.DSN() }

// Start returns the binary's shared registry, starting it on first use. When
// the binary is missing the test is skipped (run hack/ensure-mcp-registry.sh),
// unless MODELPLANE_REQUIRE_MCP_REGISTRY=1 (CI), where it fails. PostgreSQL
// not answering fails the test.
func Start(tb testing.TB) *Registry {
	tb.Helper()
	once.Do(func() {
		bin := Binary()
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			skipMsg = fmt.Sprintf("MCP registry binary missing (%s): run hack/ensure-mcp-registry.sh (or set MODELPLANE_MCP_REGISTRY_BIN)", bin)
			return
		}
		dsn, err := PostgresDSN()
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = start(bin, dsn)
	})
	if skipMsg != "" {
		proc.Missing(tb, skipMsg, "MODELPLANE_REQUIRE_MCP_REGISTRY")
	}
	if sharedErr != nil {
		tb.Fatalf("registrytest: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared registry and drops its
// database, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Stop kills the registry and drops its database. Safe to call twice.
func (r *Registry) Stop() {
	if r.proc != nil {
		r.proc.Stop()
	}
	if r.Database != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = dropDatabase(ctx, r.dsn, r.Database)
		r.Database = ""
	}
	if r.Dir != "" {
		_ = os.RemoveAll(r.Dir)
		r.Dir = ""
	}
}

// Namespace returns a reverse-DNS namespace no other test of this run uses,
// e.g. "com.example.t3-testpublish" (server names are "<namespace>/<name>").
func (r *Registry) Namespace(tb testing.TB) string {
	n := r.nsSeq.Add(1)
	name := strings.ToLower(tb.Name())
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	return fmt.Sprintf("com.example.t%d-%s", n, strings.Trim(s, "-"))
}

// Token mints a registry JWT granting actions ("publish", "edit"; "publish"
// when none are given) on "<namespace>/*", valid for TokenTTL. A namespace
// of "*" grants everything (an administrator).
func (r *Registry) Token(namespace string, actions ...string) string {
	return r.TokenFor(time.Now().Add(TokenTTL), namespace, actions...)
}

// TokenFor is Token with an explicit expiry (in the past for expired tokens).
func (r *Registry) TokenFor(expires time.Time, namespace string, actions ...string) string {
	if len(actions) == 0 {
		actions = []string{"publish"}
	}
	resource := namespace + "/*"
	if namespace == "*" {
		resource = "*"
	}
	type permission struct {
		Action   string `json:"action"`
		Resource string `json:"resource"`
	}
	perms := make([]permission, 0, len(actions))
	for _, a := range actions {
		perms = append(perms, permission{Action: a, Resource: resource})
	}
	now := time.Now()
	issued := now.Add(-time.Minute) // tolerate clock granularity
	if expires.Before(issued) {
		issued = expires.Add(-time.Minute)
	}
	claims := map[string]any{
		"iss":             "mcp-registry",
		"iat":             issued.Unix(),
		"nbf":             issued.Unix(),
		"exp":             expires.Unix(),
		"auth_method":     "none",
		"auth_method_sub": "registrytest",
		"permissions":     perms,
	}
	return signJWT(r.key, claims)
}

// signJWT builds a compact EdDSA (Ed25519) JWS.
func signJWT(key ed25519.PrivateKey, claims any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig := ed25519.Sign(key, []byte(signing))
	return signing + "." + enc.EncodeToString(sig)
}

// newSeed returns 32 random bytes, hex-encoded, and the key they make.
func newSeed() (string, ed25519.PrivateKey) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		panic(err)
	}
	return hex.EncodeToString(seed), ed25519.NewKeyFromSeed(seed)
}
