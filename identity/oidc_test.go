package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

func isUnauth(err error) bool { return errors.Is(err, ErrUnauthenticated) }

func TestOIDCValidTokens(t *testing.T) {
	idp := newIdP(t, keyRSA1(t), keyEC1(t), keyPS1(t))
	o, clk := newTestOIDC(t, idp, nil)
	if got, want := o.JWKSURL(), idp.issuer+"/jwks"; got != want {
		t.Errorf("discovered JWKS URL %q, want %q", got, want)
	}
	for _, k := range []testKey{keyRSA1(t), keyEC1(t), keyPS1(t)} {
		t.Run(string(k.alg), func(t *testing.T) {
			c := idp.claims(clk.Now())
			tok := sign(t, k, c)
			p, err := o.Authenticate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			want := modelplane.Principal{
				Name:   "alice",
				Teams:  []string{"fraud", "risk"},
				Roles:  []string{modelplane.RoleRequester, modelplane.RoleApprover},
				Method: modelplane.AuthOIDC,
			}
			if p.Name != want.Name || !slices.Equal(p.Teams, want.Teams) || !slices.Equal(p.Roles, want.Roles) || p.Method != want.Method {
				t.Errorf("principal %+v, want %+v", p, want)
			}
			if p.Expires == nil || p.Expires.Unix() != c["exp"].(int64) {
				t.Errorf("Expires %v, want exp %v", p.Expires, c["exp"])
			}
		})
	}
}

func TestOIDCExplicitJWKSURLSkipsDiscovery(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.JWKSURL = idp.issuer + "/jwks" })
	if n := idp.discoHits.Load(); n != 0 {
		t.Errorf("discovery fetched %d times with an explicit JWKS URL", n)
	}
	if _, err := o.Authenticate(context.Background(), sign(t, keyEC1(t), idp.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
}

func TestOIDCRejects(t *testing.T) {
	idp := newIdP(t, keyRSA1(t), keyEC1(t))
	o, clk := newTestOIDC(t, idp, nil)
	now := clk.Now()
	valid := func(edit func(map[string]any)) map[string]any {
		c := idp.claims(now)
		if edit != nil {
			edit(c)
		}
		return c
	}
	good := sign(t, keyRSA1(t), valid(nil))

	// An attacker who knows the public key tries it as an HMAC secret.
	pubDER, err := x509.MarshalPKIXPublicKey(rsaOne.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsToken := rawJWT(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, valid(nil), func(in []byte) []byte {
		m := hmac.New(sha256.New, pubPEM)
		m.Write(in)
		return m.Sum(nil)
	})
	noneToken := rawJWT(map[string]any{"alg": "none", "typ": "JWT"}, valid(nil), func([]byte) []byte { return nil })

	// Same kid as a published key, signed by a key the IdP never published.
	forged := sign(t, testKey{"rsa-1", "RS256", rsaBad}, valid(nil))
	// A valid token with its payload swapped for one granting admin.
	parts := strings.Split(good, ".")
	evil, _ := json.Marshal(valid(func(c map[string]any) { c["roles"] = []string{"admin"} }))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2]

	cases := []struct {
		name, tok, want string
	}{
		{"wrong issuer", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["iss"] = "https://evil.example" })), `issuer "https://evil.example" is not the configured issuer`},
		{"wrong audience", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["aud"] = "someone-else" })), `audience ["someone-else"] does not include any of ["modelplane"]`},
		{"no audience", sign(t, keyRSA1(t), valid(func(c map[string]any) { delete(c, "aud") })), "does not include"},
		{"expired", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), "token expired at " + now.Add(-2*time.Minute).UTC().Format(time.RFC3339)},
		{"no exp", sign(t, keyRSA1(t), valid(func(c map[string]any) { delete(c, "exp") })), "no exp claim"},
		{"not yet valid", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), "token not valid before"},
		{"issued in future", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["iat"] = now.Add(5 * time.Minute).Unix() })), "issued in the future"},
		{"exp not a number", sign(t, keyRSA1(t), valid(func(c map[string]any) { c["exp"] = "tomorrow" })), "exp is not a valid NumericDate"},
		{"bad signature", forged, `invalid signature (kid "rsa-1")`},
		{"tampered payload", tampered, "invalid signature"},
		{"alg none", noneToken, `signing algorithm "none" is not allowed`},
		{"HS256 with public key", hsToken, `signing algorithm "HS256" is not allowed`},
		{"unknown kid", sign(t, testKey{"who", "RS256", rsaBad}, valid(nil)), `no RS256 signing key with kid "who"`},
		{"garbage", "aaaa.bbbb.cccc", "malformed JWT"},
		{"not a JWT", "mpt_notajwt", "not a JWT"},
		{"empty", "", "no credential"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { rejects(t, o, tc.tok, tc.want) })
	}
	if _, err := o.Authenticate(context.Background(), good); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
}

// rawJWT assembles a compact JWS by hand, for algorithms no sane library
// will produce for us.
func rawJWT(header, claims map[string]any, sig func([]byte) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig([]byte(in)))
}

func TestOIDCLeewayAndAudience(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	k := keyEC1(t)

	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.Audience = []string{"modelplane", "mp-cli"} })
	now := clk.Now()
	c := idp.claims(now)
	c["exp"] = now.Add(-30 * time.Second).Unix() // inside the default 60s leeway
	c["aud"] = []string{"account", "mp-cli"}
	if _, err := o.Authenticate(context.Background(), sign(t, k, c)); err != nil {
		t.Errorf("token 30s past exp within default leeway, any-of audience: %v", err)
	}

	strict, _ := newTestOIDC(t, idp, func(c *OIDCConfig) { c.Leeway = -1; c.Audience = []string{"mp-cli"} })
	rejects(t, strict, sign(t, k, c), "token expired")

	anyAud, _ := newTestOIDC(t, idp, func(c *OIDCConfig) { c.Audience = nil })
	c = idp.claims(now)
	c["aud"] = "whatever"
	if _, err := anyAud.Authenticate(context.Background(), sign(t, k, c)); err != nil {
		t.Errorf("audience check should be off with no Audience configured: %v", err)
	}
}

func TestOIDCAllowedAlgs(t *testing.T) {
	idp := newIdP(t, keyRSA1(t), keyEC1(t))
	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.AllowedAlgs = []string{"ES256"} })
	rejects(t, o, sign(t, keyRSA1(t), idp.claims(clk.Now())), `signing algorithm "RS256" is not allowed (allowed: ES256)`)
	if _, err := o.Authenticate(context.Background(), sign(t, keyEC1(t), idp.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	// A key published for RS256 must not verify a PS256 token, even though
	// both are RSA: the JWK's alg pins it.
	o2, _ := newTestOIDC(t, idp, func(c *OIDCConfig) { c.AllowedAlgs = []string{"RS256", "PS256"} })
	rejects(t, o2, sign(t, testKey{"rsa-1", "PS256", rsaOne}, idp.claims(clk.Now())), `no PS256 signing key with kid "rsa-1"`)
}

func TestNewOIDCConfigErrors(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	cases := []struct {
		name string
		edit func(*OIDCConfig)
		want string
	}{
		{"no issuer", func(c *OIDCConfig) { c.Issuer = "" }, "issuer is required"},
		{"alg none", func(c *OIDCConfig) { c.AllowedAlgs = []string{"none"} }, `"none" is not an accepted`},
		{"alg HS256", func(c *OIDCConfig) { c.AllowedAlgs = []string{"ES256", "HS256"} }, `"HS256" is not an accepted`},
		{"role map target", func(c *OIDCConfig) { c.ClaimMapping.RoleMap = map[string]string{"x": "superuser"} }, `role_map: "x" maps to unknown role "superuser"`},
		{"default role", func(c *OIDCConfig) { c.ClaimMapping.DefaultRoles = []string{"root"} }, `default_roles: unknown role "root"`},
		{"discovery issuer mismatch", func(c *OIDCConfig) { c.Issuer = idp.issuer + "/realms/x" }, "reports issuer"},
		{"jwks 404", func(c *OIDCConfig) { c.JWKSURL = idp.issuer + "/nope" }, "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := idp.config()
			tc.edit(&cfg)
			_, err := NewOIDC(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestOIDCSkipsUnusableJWKs(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	idp.extra = []json.RawMessage{
		// A symmetric key in a JWKS must never be usable (HS256 confusion).
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
		json.RawMessage(`{"kty":"XYZ","kid":"future"}`),
		json.RawMessage(`{"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`),
	}
	o, clk := newTestOIDC(t, idp, nil)
	ks := o.keys.Load()
	if len(ks.all) != 1 || ks.all[0].KeyID != "ec-1" {
		t.Fatalf("usable keys %v, want only ec-1", ks.byKid)
	}
	if _, err := o.Authenticate(context.Background(), sign(t, keyEC1(t), idp.claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.keys = nil
	idp.mu.Unlock()
	if err := o.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "no usable signing keys") {
		t.Errorf("refresh to a JWKS with only unusable keys: %v", err)
	}
}

func TestClaimMapping(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	cases := []struct {
		name    string
		mapping ClaimMapping
		edit    func(map[string]any)
		user    string
		teams   []string
		roles   []string
		wantErr string
	}{
		{
			name:  "no prefix: every group is a team",
			edit:  func(c map[string]any) { c["roles"] = []string{"approver", "offline_access"} },
			user:  "alice",
			teams: []string{"team:fraud", "team:risk", "staff"},
			roles: []string{"approver"},
		},
		{
			name:    "prefix selects and strips",
			mapping: ClaimMapping{TeamPrefix: "team:"},
			edit:    func(c map[string]any) { c["roles"] = []string{"requester"} },
			user:    "alice",
			teams:   []string{"fraud", "risk"},
			roles:   []string{"requester"},
		},
		{
			name:    "keycloak realm roles via dotted path",
			mapping: ClaimMapping{RolesClaim: "realm_access.roles", TeamPrefix: "/teams/", RoleMap: map[string]string{"ml-approvers": "approver", "ml-admins": "admin"}},
			edit: func(c map[string]any) {
				delete(c, "roles")
				c["groups"] = []string{"/teams/fraud", "/staff"}
				c["realm_access"] = map[string]any{"roles": []string{"default-roles-acme", "ml-admins", "ml-approvers"}}
			},
			user:  "alice",
			teams: []string{"fraud"},
			roles: []string{"approver", "admin"},
		},
		{
			name:    "keycloak client roles, two levels deep",
			mapping: ClaimMapping{RolesClaim: "resource_access.modelplane.roles"},
			edit: func(c map[string]any) {
				c["resource_access"] = map[string]any{"modelplane": map[string]any{"roles": []string{"auditor"}}}
			},
			user:  "alice",
			teams: []string{"team:fraud", "team:risk", "staff"},
			roles: []string{"auditor"},
		},
		{
			name:    "namespaced claim name containing dots",
			mapping: ClaimMapping{RolesClaim: "https://modelplane.dev/roles", TeamsClaim: "https://modelplane.dev/teams"},
			edit: func(c map[string]any) {
				c["https://modelplane.dev/roles"] = []string{"admin"}
				c["https://modelplane.dev/teams"] = "platform" // a bare string, not a list
			},
			user:  "alice",
			teams: []string{"platform"},
			roles: []string{"admin"},
		},
		{
			name:    "okta: roles and teams from the same groups claim",
			mapping: ClaimMapping{RolesClaim: "groups", TeamPrefix: "mp-team-", RoleMap: map[string]string{"mp-approvers": "approver"}},
			edit: func(c map[string]any) {
				delete(c, "roles")
				c["groups"] = []string{"Everyone", "mp-team-fraud", "mp-approvers"}
			},
			user:  "alice",
			teams: []string{"fraud"},
			roles: []string{"approver"},
		},
		{
			name:    "default roles are added to mapped ones",
			mapping: ClaimMapping{DefaultRoles: []string{"requester"}},
			edit:    func(c map[string]any) { c["roles"] = []string{"auditor", "admin"} },
			user:    "alice",
			teams:   []string{"team:fraud", "team:risk", "staff"},
			roles:   []string{"requester", "admin", "auditor"},
		},
		{
			name:    "default roles stand in for a missing claim",
			mapping: ClaimMapping{DefaultRoles: []string{"requester"}},
			edit:    func(c map[string]any) { delete(c, "roles"); delete(c, "groups") },
			user:    "alice",
			roles:   []string{"requester"},
		},
		{
			name:    "duplicates collapse",
			mapping: ClaimMapping{RoleMap: map[string]string{"ml-approvers": "approver"}},
			edit: func(c map[string]any) {
				c["roles"] = []string{"approver", "ml-approvers", "approver"}
				c["groups"] = []string{"a", "a", "b"}
			},
			user:  "alice",
			teams: []string{"a", "b"},
			roles: []string{"approver"},
		},
		{
			name:    "missing roles claim",
			edit:    func(c map[string]any) { delete(c, "roles") },
			wantErr: `no modelplane role in claims: claim "roles" is missing`,
		},
		{
			name:    "missing dotted roles claim",
			mapping: ClaimMapping{RolesClaim: "realm_access.roles"},
			edit:    func(c map[string]any) { c["realm_access"] = map[string]any{"other": 1} },
			wantErr: `claim "realm_access.roles" is missing`,
		},
		{
			name:    "roles claim without a modelplane role",
			edit:    func(c map[string]any) { c["roles"] = []string{"offline_access", "uma_authorization"} },
			wantErr: `no modelplane role in claims: claim "roles" has none of requester, approver, admin, auditor`,
		},
		{
			name: "user falls back to email",
			edit: func(c map[string]any) { delete(c, "preferred_username"); c["roles"] = "requester" },
			user: "alice@example.com", teams: []string{"team:fraud", "team:risk", "staff"}, roles: []string{"requester"},
		},
		{
			name: "user falls back to sub",
			edit: func(c map[string]any) {
				delete(c, "preferred_username")
				delete(c, "email")
				c["roles"] = "requester"
				delete(c, "groups")
			},
			user: "0f3c-uid", roles: []string{"requester"},
		},
		{
			name:    "custom user claim (entra upn)",
			mapping: ClaimMapping{UserClaim: "upn"},
			edit:    func(c map[string]any) { c["upn"] = "alice@contoso.com"; c["roles"] = "requester"; delete(c, "groups") },
			user:    "alice@contoso.com", roles: []string{"requester"},
		},
		{
			name:    "no user at all",
			edit:    func(c map[string]any) { delete(c, "preferred_username"); delete(c, "email"); delete(c, "sub") },
			wantErr: "no user name in claims",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.ClaimMapping = tc.mapping })
			claims := idp.claims(clk.Now())
			tc.edit(claims)
			tok := sign(t, keyEC1(t), claims)
			if tc.wantErr != "" {
				rejects(t, o, tok, tc.wantErr)
				return
			}
			p, err := o.Authenticate(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tc.user || !slices.Equal(p.Teams, tc.teams) || !slices.Equal(p.Roles, tc.roles) {
				t.Errorf("got name %q teams %q roles %q; want %q %q %q", p.Name, p.Teams, p.Roles, tc.user, tc.teams, tc.roles)
			}
		})
	}
}

func TestOIDCCachedPathDoesNoIO(t *testing.T) {
	idp := newIdP(t, keyRSA1(t))
	o, clk := newTestOIDC(t, idp, nil)
	tok := sign(t, keyRSA1(t), idp.claims(clk.Now()))
	before := idp.jwksHits.Load()
	idp.srv.Close() // any network I/O from here on would fail
	for range 20 {
		if _, err := o.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := idp.jwksHits.Load(); n != before {
		t.Errorf("JWKS fetched %d more times on the cached path", n-before)
	}
}

func TestJWKSRotation(t *testing.T) {
	idp := newIdP(t, keyRSA1(t))
	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.MinRefreshInterval = 30 * time.Second })
	ctx := context.Background()
	oldTok := sign(t, keyRSA1(t), idp.claims(clk.Now()))
	if _, err := o.Authenticate(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	base := idp.jwksHits.Load()

	// The IdP adds a new key and starts signing with it. Past the rate
	// limit, a storm of new-kid tokens shares exactly one refetch.
	idp.publish(keyRSA1(t), keyRSA2(t))
	clk.Advance(31 * time.Second)
	newTok := sign(t, keyRSA2(t), idp.claims(clk.Now()))
	storm(t, 64, func() error { _, err := o.Authenticate(ctx, newTok); return err })
	if n := idp.jwksHits.Load() - base; n != 1 {
		t.Errorf("new kid: %d JWKS fetches, want 1", n)
	}

	// Made-up kids within MinRefreshInterval of that fetch: no fetch at all.
	bogus := sign(t, testKey{"made-up", "RS256", rsaBad}, idp.claims(clk.Now()))
	base = idp.jwksHits.Load()
	storm(t, 64, func() error {
		if _, err := o.Authenticate(ctx, bogus); err == nil {
			return errors.New("bogus kid accepted")
		}
		return nil
	})
	if n := idp.jwksHits.Load() - base; n != 0 {
		t.Errorf("unknown kid inside MinRefreshInterval: %d fetches, want 0", n)
	}
	// Once the interval has passed, a storm costs one fetch again.
	clk.Advance(31 * time.Second)
	storm(t, 64, func() error { _, _ = o.Authenticate(ctx, bogus); return nil })
	if n := idp.jwksHits.Load() - base; n != 1 {
		t.Errorf("unknown kid after MinRefreshInterval: %d fetches, want 1", n)
	}

	// The old key is withdrawn. Cached, it still works; after a refresh it
	// must not.
	idp.publish(keyRSA2(t))
	if _, err := o.Authenticate(ctx, oldTok); err != nil {
		t.Fatalf("old kid before refresh: %v", err)
	}
	if err := o.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	rejects(t, o, oldTok, `no RS256 signing key with kid "rsa-1"`)
	if _, err := o.Authenticate(ctx, newTok); err != nil {
		t.Fatalf("new kid after refresh: %v", err)
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	idp := newIdP(t, keyRSA1(t), keyRSA2(t))
	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.RefreshInterval = 10 * time.Minute })
	ctx := context.Background()
	clk.Advance(11 * time.Minute)
	oldTok := sign(t, keyRSA1(t), idp.claims(clk.Now()))
	idp.publish(keyRSA2(t))
	base := idp.jwksHits.Load()

	// The stale cache still serves the request that notices it is stale;
	// the refetch happens behind it.
	if _, err := o.Authenticate(ctx, oldTok); err != nil {
		t.Fatalf("request on a stale cache should not wait for or fail on the refresh: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := o.Authenticate(ctx, oldTok)
		if err != nil {
			if !strings.Contains(err.Error(), `kid "rsa-1"`) {
				t.Fatalf("unexpected error: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("withdrawn key still accepted 5s after a periodic refresh was due")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := idp.jwksHits.Load() - base; n != 1 {
		t.Errorf("periodic refresh: %d fetches, want 1", n)
	}
}

func TestJWKSRefreshFailureKeepsKeys(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	o, clk := newTestOIDC(t, idp, nil)
	ctx := context.Background()
	tok := sign(t, keyEC1(t), idp.claims(clk.Now()))
	idp.setFail(true)
	if err := o.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Refresh against a failing IdP: %v", err)
	}
	if o.LastRefreshError() == nil {
		t.Error("LastRefreshError is nil after a failed refresh")
	}
	if _, err := o.Authenticate(ctx, tok); err != nil {
		t.Fatalf("cached key dropped after a failed refresh: %v", err)
	}
	idp.setFail(false)
	if err := o.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.LastRefreshError(); err != nil {
		t.Errorf("LastRefreshError after recovery: %v", err)
	}
}

func TestOIDCWaitHonoursContext(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	o, clk := newTestOIDC(t, idp, nil)
	release := make(chan struct{})
	idp.mu.Lock()
	idp.hold = release
	idp.mu.Unlock()
	defer close(release) // lets the detached fetch finish before the server closes
	clk.Advance(time.Minute)
	tok := sign(t, testKey{"rotated", "ES256", ecOne}, idp.claims(clk.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := o.Authenticate(ctx, tok)
	if err == nil || !strings.Contains(err.Error(), "waiting for JWKS refresh") {
		t.Fatalf("got %v, want a context error while waiting for the refresh", err)
	}
}

func TestOIDCConcurrent(t *testing.T) {
	idp := newIdP(t, keyRSA1(t), keyEC1(t))
	o, clk := newTestOIDC(t, idp, func(c *OIDCConfig) { c.MinRefreshInterval = time.Nanosecond })
	ctx := context.Background()
	good := []string{sign(t, keyRSA1(t), idp.claims(clk.Now())), sign(t, keyEC1(t), idp.claims(clk.Now()))}
	bad := sign(t, testKey{"nope", "ES256", ecOne}, idp.claims(clk.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				if g == 0 && i%10 == 0 {
					if err := o.Refresh(ctx); err != nil {
						errs <- err
					}
				}
				p, err := o.Authenticate(ctx, good[(g+i)%2])
				if err != nil || p.Name != "alice" {
					errs <- fmt.Errorf("good token: %v %+v", err, p)
				}
				if _, err := o.Authenticate(ctx, bad); err == nil {
					errs <- errors.New("bad kid accepted")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// storm runs f from n goroutines released together and fails on any error.
func storm(t *testing.T, n int, f func() error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			if err := f(); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkOIDCAuthenticate(b *testing.B) {
	for _, k := range []testKey{keyRSA1(b), keyEC1(b)} {
		b.Run(string(k.alg), func(b *testing.B) {
			idp := newIdP(b, k)
			o, clk := newTestOIDC(b, idp, nil)
			tok := sign(b, k, idp.claims(clk.Now()))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
