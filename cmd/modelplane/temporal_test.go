package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/internal/pgtest"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/temporalserver"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// throwawayDatabases names two databases that do not exist yet (the server
// creates them) and drops them when the test ends.
func throwawayDatabases(t *testing.T) (main, vis string) {
	dbs := pgtest.Databases(t, "mpbin_", 2)
	return dbs[0], dbs[1]
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTemporalBinary runs `modelplane temporal` on fresh PostgreSQL
// databases, talks to its frontend as modelplane's API would, and finds its
// Web UI sending people to the OIDC provider to sign in.
func TestTemporalBinary(t *testing.T) {
	mainDB, visDB := throwawayDatabases(t)
	issuer, person := testIdP(t)
	dir := t.TempDir()
	base := testkit.FreePorts(t, temporalserver.Ports+2)
	uiAddr := fmt.Sprintf("127.0.0.1:%d", base+temporalserver.Ports+1)
	const key = "svc-key-0123456789abcdef"
	keys := writeFile(t, dir, "service-keys", "# the API and worker\n"+identity.Digest(key)+"\n")
	cfgFile := writeFile(t, dir, "modelplane.yaml", fmt.Sprintf(`temporal:
  namespace: ml
oidc:
  issuer: %s
  default_roles: [auditor]
temporal_server:
  ui:
    addr: %s
    client_id: temporal-ui
    client_secret_file: %s
  db: %q
  visibility_db: %q
  port: %d
  history_shards: 2
  metrics_addr: 127.0.0.1:%d
  service_keys_file: %s
log:
  format: text
`, issuer, uiAddr, writeFile(t, dir, "ui-secret", "ui-client-secret\n"), mainDB, visDB, base, base+temporalserver.Ports, keys))

	check := func() error {
		return exec.Command(binary, "temporal", "--check", "--config", cfgFile).Run()
	}
	if check() == nil {
		t.Fatal("--check passed with no server running")
	}
	began := time.Now()
	p := testkit.Start(t, binary, "temporal", "--config", cfgFile)
	testkit.WaitFor(t, "temporal --check", 30*time.Second, func() bool { return check() == nil })
	t.Logf("start to healthy (new databases): %s", time.Since(began).Round(time.Millisecond))

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", base), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ws := workflowservice.NewWorkflowServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The frontend verifies callers: without a key, nothing.
	if _, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "ml"}); status.Code(err) != codes.PermissionDenied && status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous DescribeNamespace: %v, want it refused", err)
	}
	// As the API and worker do: the service key as a bearer token.
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	info, err := ws.GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
	if err != nil || info.ServerVersion == "" {
		t.Fatalf("GetSystemInfo: %v %v", info, err)
	}
	ns, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "ml"})
	if err != nil || ns.NamespaceInfo.GetName() != "ml" {
		t.Fatalf("DescribeNamespace ml: %v %v", ns, err)
	}
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", base+temporalserver.Ports))
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(scrape), "# TYPE") {
		t.Fatalf("metrics answered %d: %.200s", res.StatusCode, scrape)
	}
	// A signed-in person (the ID token the Web UI forwards) reads too.
	pctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+person("temporal-ui"))
	if _, err := ws.DescribeNamespace(pctx, &workflowservice.DescribeNamespaceRequest{Namespace: "ml"}); err != nil {
		t.Fatalf("DescribeNamespace as a signed-in auditor: %v", err)
	}

	// The Web UI sends people to the provider, back to its own callback.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err = noFollow.Get("http://" + uiAddr + "/auth/sso")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode/100 != 3 || loc == nil || !strings.HasPrefix(loc.String(), issuer+"/authorize?") ||
		loc.Query().Get("client_id") != "temporal-ui" || loc.Query().Get("redirect_uri") != "http://"+uiAddr+"/auth/sso/callback" {
		t.Fatalf("Web UI /auth/sso answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}

	p.Interrupt(t)
	if check() == nil {
		t.Fatal("--check passed after the server stopped")
	}
}

// TestTemporalConfigErrors: each refusal names the key to fix.
func TestTemporalConfigErrors(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "ui-secret", "s3cret\n")
	badKeys := writeFile(t, dir, "bad-keys", "not-a-digest\n")
	withUI := func(c *config.Config) {
		c.TemporalServer.UI = config.TemporalUI{Addr: "127.0.0.1:8233", ClientID: "temporal-ui", ClientSecretFile: secret}
		c.OIDC.Issuer = "https://idp.example"
	}
	for name, tc := range map[string]struct {
		edit func(*config.Config)
		want string
	}{
		"no db":          {func(c *config.Config) { c.TemporalServer.DB = "" }, "config temporal_server.db is required"},
		"sqlite":         {func(c *config.Config) { c.TemporalServer.DB = ".modelplane/temporal.db" }, "config temporal_server.db: `modelplane temporal` runs on PostgreSQL only"},
		"no database":    {func(c *config.Config) { c.TemporalServer.DB = "postgres://u@db:5432" }, "config temporal_server.db: no database name"},
		"bad visibility": {func(c *config.Config) { c.TemporalServer.VisibilityDB = "mysql://db/x" }, "config temporal_server.visibility_db"},
		"bad bind ip":    {func(c *config.Config) { c.TemporalServer.BindIP = "temporal" }, "config temporal_server.bind_ip"},
		"port":           {func(c *config.Config) { c.TemporalServer.Port = 65530 }, "config temporal_server.port"},
		"shards":         {func(c *config.Config) { c.TemporalServer.HistoryShards = 0 }, "config temporal_server.history_shards"},
		"ui no issuer": {func(c *config.Config) {
			withUI(c)
			c.OIDC.Issuer = ""
		}, "config oidc.issuer is required with temporal_server.ui.addr"},
		"ui no client": {func(c *config.Config) {
			withUI(c)
			c.TemporalServer.UI.ClientID = ""
		}, "config temporal_server.ui.client_id is required"},
		"ui no secret": {func(c *config.Config) {
			withUI(c)
			c.TemporalServer.UI.ClientSecretFile = ""
		}, "config temporal_server.ui.client_secret_file"},
		"ui public url": {func(c *config.Config) {
			withUI(c)
			c.TemporalServer.UI.Addr = "0.0.0.0:8233"
		}, "config temporal_server.ui.public_url is required"},
		"ui, open frontend": {withUI, "config temporal_server.service_keys_file (or MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS) is required with temporal_server.ui.addr"},
		"bad digest":        {func(c *config.Config) { c.TemporalServer.ServiceKeysFile = badKeys }, "temporal_server.service_keys_file " + badKeys + ": line 1 is not a SHA-256 digest"},
	} {
		t.Run(name, func(t *testing.T) {
			c := config.Default()
			c.TemporalServer.DB = "postgres://u@db:5432/temporal"
			tc.edit(&c)
			getenv := func(string) string { return "" }
			_, _, err := temporalSettings(c, getenv)
			if err == nil {
				_, err = temporalAuth(context.Background(), c, getenv)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// Through the binary: the message reaches the operator, exit 1.
	out, err := exec.Command(binary, "temporal", "--config", writeFile(t, dir, "empty.yaml", "log:\n  format: text\n")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "temporal_server.db") {
		t.Fatalf("no db: exit %v, output %s", err, out)
	}
}

// TestTemporalAuthFromConfig: service keys from the file and the
// environment; the Web UI's client becomes an accepted audience.
func TestTemporalAuthFromConfig(t *testing.T) {
	dir := t.TempDir()
	c := config.Default()
	c.TemporalServer.ServiceKeysFile = writeFile(t, dir, "keys", identity.Digest("from-file-key-0123")+"\n\n")
	a, err := temporalAuth(context.Background(), c, func(k string) string {
		if k == envServiceKeys {
			return "from-env-key-01234, other-env-key-0123"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{identity.Digest("from-file-key-0123"), identity.Digest("from-env-key-01234"), identity.Digest("other-env-key-0123")}
	if a == nil || strings.Join(a.ServiceKeyDigests, ",") != strings.Join(want, ",") || a.Users != nil {
		t.Fatalf("auth %+v, want digests %v and no users", a, want)
	}
	if a, err := temporalAuth(context.Background(), config.Default(), func(string) string { return "" }); err != nil || a != nil {
		t.Fatalf("nothing configured: %v %v, want an open frontend (nil)", a, err)
	}
}

// testIdP is an OIDC provider's discovery document and keys, and a way to
// mint its ID tokens for an audience.
func testIdP(t *testing.T) (issuer string, token func(aud string) string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	idp := httptest.NewServer(mux)
	t.Cleanup(idp.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "jwks_uri": idp.URL + "/jwks",
			"authorization_endpoint": idp.URL + "/authorize", "token_endpoint": idp.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return idp.URL, func(aud string) string {
		now := time.Now()
		b, _ := json.Marshal(map[string]any{"iss": idp.URL, "aud": aud, "sub": "u-bob", "preferred_username": "bob",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		jws, err := signer.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
}

// TestTemporalAuthAudience: the frontend accepts people's OIDC tokens for
// the API's audience and for the Web UI's client (the ID token it forwards),
// and nothing else.
func TestTemporalAuthAudience(t *testing.T) {
	issuer, token := testIdP(t)
	c := config.Default()
	c.OIDC = config.OIDC{Issuer: issuer, Audience: []string{"modelplane"}, DefaultRoles: []string{"approver"}}
	c.TemporalServer.UI.ClientID = "temporal-ui"
	c.TemporalServer.ServiceKeysFile = writeFile(t, t.TempDir(), "keys", identity.Digest("svc-key-0123456789")+"\n")
	a, err := temporalAuth(context.Background(), c, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || a.Users == nil {
		t.Fatalf("auth %+v: want users from the oidc section", a)
	}
	for aud, ok := range map[string]bool{"temporal-ui": true, "modelplane": true, "someone-else": false} {
		p, err := a.Users.Authenticate(context.Background(), token(aud))
		if ok != (err == nil) || (ok && p.Name != "bob") {
			t.Errorf("audience %s: principal %+v, error %v; want accepted=%v", aud, p, err, ok)
		}
	}
	if len(c.OIDC.Audience) != 1 {
		t.Fatalf("the API's audience list was changed: %v", c.OIDC.Audience)
	}
}
