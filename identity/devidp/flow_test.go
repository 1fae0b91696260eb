package devidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
)

// TestAuthorizationCodeFlow drives the whole flow the Temporal UI uses:
// discovery, /authorize with PKCE, the login page, the callback, the code
// exchange with client_secret_basic, then checks the tokens with
// modelplane's own verifier and with go-oidc (what ui-server uses).
func TestAuthorizationCodeFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	var disc struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		JwksURI               string   `json:"jwks_uri"`
		EndSessionEndpoint    string   `json:"end_session_endpoint"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
		AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
		Claims                []string `json:"claims_supported"`
	}
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != e.issuer || disc.Issuer != e.p.Issuer() || disc.AuthorizationEndpoint != e.issuer+"/authorize" ||
		disc.TokenEndpoint != e.issuer+"/oauth/token" || disc.JwksURI != e.issuer+"/keys" || disc.EndSessionEndpoint != e.issuer+"/end_session" {
		t.Fatalf("discovery endpoints: %+v", disc)
	}
	if !slices.Contains(disc.CodeChallengeMethods, "S256") || !slices.Contains(disc.AuthMethods, "client_secret_basic") ||
		!slices.Contains(disc.AuthMethods, "client_secret_post") || !slices.Contains(disc.Claims, "groups") || !slices.Contains(disc.Claims, "roles") {
		t.Fatalf("discovery capabilities: %+v", disc)
	}

	cfg := e.conf()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	code, pkce := e.login(t, cfg, "bob", "bob-pw-2", oauth2.SetAuthURLParam("nonce", "n-0S6"))
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" || tok.AccessToken == "" {
		t.Fatalf("token response lacks tokens: %+v", tok)
	}

	// modelplane's verifier accepts both tokens as bob.
	v := verifier(t, e.issuer, confID)
	for name, jwt := range map[string]string{"id token": idToken, "access token": tok.AccessToken} {
		p, err := v.Authenticate(ctx, jwt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Name != "bob" || !slices.Equal(p.Teams, []string{"growth"}) || !slices.Equal(p.Roles, []string{modelplane.RoleApprover}) ||
			p.Method != modelplane.AuthOIDC || p.Expires == nil {
			t.Fatalf("%s principal = %+v", name, p)
		}
		hdr, claims := decodeJWT(t, jwt)
		if hdr["alg"] != "RS256" || hdr["kid"] == "" || hdr["kid"] != e.p.store.key.kid {
			t.Fatalf("%s header = %v", name, hdr)
		}
		if !slices.Equal(audience(claims["aud"]), []string{confID}) || claims["email"] != "bob@modelplane.dev" ||
			claims["email_verified"] != true || claims["sub"] != "bob" || claims["preferred_username"] != "bob" {
			t.Fatalf("%s claims = %v", name, claims)
		}
	}
	// Audience is enforced: another client's verifier refuses the token.
	if _, err := verifier(t, e.issuer, pubID).Authenticate(ctx, idToken); !errors.Is(err, identity.ErrUnauthenticated) {
		t.Fatalf("token for %s accepted with audience %s: %v", confID, pubID, err)
	}

	// go-oidc, as in the Temporal UI's ui-server: ID token with email and nonce.
	gp, err := gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	it, err := gp.Verifier(&gooidc.Config{ClientID: confID}).Verify(ctx, idToken)
	if err != nil {
		t.Fatalf("go-oidc verify: %v", err)
	}
	var c struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Name          string   `json:"name"`
		Groups        []string `json:"groups"`
		Roles         []string `json:"roles"`
	}
	if err := it.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if it.Nonce != "n-0S6" || it.Subject != "bob" || c.Email != "bob@modelplane.dev" || !c.EmailVerified || c.Name != "bob" ||
		!slices.Equal(c.Groups, []string{"growth"}) || !slices.Equal(c.Roles, []string{"approver"}) {
		t.Fatalf("go-oidc claims: nonce %q sub %q %+v", it.Nonce, it.Subject, c)
	}
	ui, err := gp.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if err := ui.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "bob" || ui.Email != "bob@modelplane.dev" || !slices.Equal(c.Roles, []string{"approver"}) || !slices.Equal(c.Groups, []string{"growth"}) {
		t.Fatalf("userinfo: %+v %+v", ui, c)
	}
}

// TestTemporalUIShape mirrors ui-server's calls: endpoints from go-oidc
// discovery, a confidential client without PKCE, a nonce, the default
// (auto-detected) client authentication, then go-oidc verification of the
// ID token with its email, and a refresh.
func TestTemporalUIShape(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gp, err := gooidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: confID, ClientSecret: confSecret, Endpoint: gp.Endpoint(), RedirectURL: e.confCB,
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
	code := e.loginNoPKCE(t, cfg, "bob", "bob-pw-2", gooidc.Nonce("ui-nonce"))
	tok, err := cfg.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idt, err := gp.Verifier(&gooidc.Config{ClientID: confID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&c); err != nil || idt.Nonce != "ui-nonce" || c.Email != "bob@modelplane.dev" || !c.EmailVerified {
		t.Fatalf("id token: nonce %q claims %+v err %v", idt.Nonce, c, err)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// PKCE cannot be bolted on at the token endpoint when /authorize had none.
	code = e.loginNoPKCE(t, cfg, "bob", "bob-pw-2")
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(err) != "invalid_request" {
		t.Fatalf("verifier without challenge: got %v, want invalid_request", err)
	}
}

func decodeJWT(t *testing.T, jwt string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40s", jwt)
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, s := range a {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

// TestClientSecretPostAndWrongSecret: the secret is accepted in the body,
// and a wrong one is refused with invalid_client.
func TestClientSecretPostAndWrongSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.conf()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	code, pkce := e.login(t, cfg, "alice", "alice-pw-1")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("client_secret_post exchange: %v", err)
	}
	if p, err := verifier(t, e.issuer, confID).Authenticate(ctx, tok.AccessToken); err != nil || p.Name != "alice" {
		t.Fatalf("access token: %+v %v", p, err)
	}

	bad := e.conf()
	bad.ClientSecret = "not-the-secret"
	bad.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	code, pkce = e.login(t, bad, "alice", "alice-pw-1")
	if _, err := bad.Exchange(ctx, code, oauth2.VerifierOption(pkce)); oauthErrorCode(err) != "invalid_client" {
		t.Fatalf("wrong secret: got %v, want invalid_client", err)
	}
}

// TestCodeIsSingleUse: a second exchange of the same code fails, a failed
// exchange (wrong verifier) burns the code, and of concurrent exchanges
// exactly one wins.
func TestCodeIsSingleUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.conf()
	code, pkce := e.login(t, cfg, "bob", "bob-pw-2")
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("replayed code: got %v, want invalid_grant", err)
	}

	code, pkce = e.login(t, cfg, "bob", "bob-pw-2")
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("wrong verifier: got %v, want invalid_grant", err)
	}
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce)); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("code after a failed exchange: got %v, want invalid_grant", err)
	}

	code, pkce = e.login(t, cfg, "bob", "bob-pw-2")
	const n = 8
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err == nil {
				wins.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of %d concurrent exchanges of one code succeeded, want 1", wins.Load(), n)
	}
}

// TestRedirectURIAndClientChecked: an unregistered redirect URI (even one
// on the right origin) or an unknown client gets a 400 from the IdP and no
// redirect anywhere.
func TestRedirectURIAndClientChecked(t *testing.T) {
	e := newEnv(t)
	cases := map[string]*oauth2.Config{
		"other path":     e.oauth(confID, confSecret, e.app.URL+"/evil"),
		"prefix":         e.oauth(confID, confSecret, e.confCB+"/x"),
		"query added":    e.oauth(confID, confSecret, e.confCB+"?next=/"),
		"other client's": e.oauth(confID, confSecret, e.pubCB),
		"unknown client": e.oauth("nobody", "", e.confCB),
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			u := cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
			resp, err := noFollow.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("got %d Location %q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

// TestPublicClientNeedsPKCE: a public client without a code_challenge (or
// with the plain method) is sent back with invalid_request before any
// login; with S256 it completes without a secret, and a wrong verifier is
// refused.
func TestPublicClientNeedsPKCE(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.oauth(pubID, "", e.pubCB)
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no challenge": nil,
		"plain": {oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		resp, err := noFollow.Get(cfg.AuthCodeURL("st", opts...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.pubCB+"?") ||
			loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" || loc.Query().Get("state") != "st" {
			t.Fatalf("%s: got %d %s, want a redirect with error=invalid_request", name, resp.StatusCode, loc)
		}
	}

	code, pkce := e.login(t, cfg, "alice", "alice-pw-1")
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("wrong verifier: got %v, want invalid_grant", err)
	}
	code, pkce = e.login(t, cfg, "alice", "alice-pw-1")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("public exchange: %v", err)
	}
	if p, err := verifier(t, e.issuer, pubID).Authenticate(ctx, tok.AccessToken); err != nil || p.Name != "alice" {
		t.Fatalf("public client's access token: %+v %v", p, err)
	}
}

// TestRefreshTokenRotates: offline_access yields a refresh token; using it
// returns fresh tokens and a new refresh token, and the old one is dead.
func TestRefreshTokenRotates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.conf("openid", "profile", "email", "offline_access")
	code, pkce := e.login(t, cfg, "dave", "dave-pw-4")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v, refresh token %q", err, tok.RefreshToken)
	}
	fresh, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	p, err := verifier(t, e.issuer, confID).Authenticate(ctx, fresh.Extra("id_token").(string))
	if err != nil || p.Name != "dave" || !slices.Equal(p.Teams, []string{"fraud"}) {
		t.Fatalf("refreshed id token: %+v %v", p, err)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: got %v, want invalid_grant", err)
	}
}

// TestEndSession: logout with an id_token_hint may return to the client's
// origin and revokes the user's refresh tokens; without one it lands on
// our signed-out page.
func TestEndSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.conf("openid", "email", "offline_access")
	code, pkce := e.login(t, cfg, "bob", "bob-pw-2")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {e.app.URL + "/"}}
	resp, err := noFollow.Get(e.issuer + "/end_session?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.app.URL+"/" {
		t.Fatalf("end_session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh after logout: got %v, want invalid_grant", err)
	}

	q.Set("post_logout_redirect_uri", "https://elsewhere.example/")
	resp, err = noFollow.Get(e.issuer + "/end_session?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign post_logout_redirect_uri: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	p := getPage(t, http.DefaultClient, e.issuer+"/end_session")
	if p.status != http.StatusOK || p.url.Path != loggedOutPath || p.h1 != "Signed out" {
		t.Fatalf("plain end_session ended at %s (%d, %q)", p.url, p.status, p.h1)
	}
}

// TestPromptNone: there is no session to reuse, so prompt=none returns
// login_required to the client instead of showing the form.
func TestPromptNone(t *testing.T) {
	e := newEnv(t)
	cfg := e.conf()
	u := cfg.AuthCodeURL("pn", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"))
	resp, err := browser(t).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	end := resp.Request.URL
	if !strings.HasPrefix(end.String(), e.confCB+"?") || end.Query().Get("error") != "login_required" || end.Query().Get("code") != "" {
		t.Fatalf("prompt=none ended at %s", end)
	}
}

// TestKeyFilePersists: a token signed before a restart verifies after it
// when KeyFile is set, and not against a provider with a fresh key.
func TestKeyFilePersists(t *testing.T) {
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "state", "devidp-key.pem")
	var current atomic.Pointer[Provider]
	idp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r)
	}))
	issuer := "http://" + idp.Listener.Addr().String()
	app := httptest.NewServer(http.NotFoundHandler())
	defer app.Close()
	cfg := Config{Issuer: issuer, Users: testUsers, KeyFile: keyFile,
		Clients: []Client{{ID: confID, Secret: confSecret, RedirectURIs: []string{app.URL + "/cb"}}}}
	newProvider := func(cfg Config) *Provider {
		p, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := newProvider(cfg)
	current.Store(first)
	idp.Start()
	defer idp.Close()

	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi)
	}
	e := &env{p: first, issuer: issuer, app: app, confCB: app.URL + "/cb"}
	oc := e.conf()
	code, pkce := e.login(t, oc, "bob", "bob-pw-2")
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}

	second := newProvider(cfg)
	if second.store.key.kid != first.store.key.kid {
		t.Fatalf("kid changed across restarts: %s → %s", first.store.key.kid, second.store.key.kid)
	}
	current.Store(second)
	if p, err := verifier(t, issuer, confID).Authenticate(ctx, tok.AccessToken); err != nil || p.Name != "bob" {
		t.Fatalf("token from before the restart: %+v %v", p, err)
	}

	cfg.KeyFile = ""
	current.Store(newProvider(cfg))
	if _, err := verifier(t, issuer, confID).Authenticate(ctx, tok.AccessToken); !errors.Is(err, identity.ErrUnauthenticated) {
		t.Fatalf("token verified against a fresh key: %v", err)
	}
}

// TestIssuerWithPath: with an issuer path every endpoint, the login page
// and its cookie live under it, and the flow works end to end.
func TestIssuerWithPath(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Issuer += "/idp/" }))
	if !strings.HasSuffix(e.issuer, "/idp/") || e.p.Issuer() != strings.TrimSuffix(e.issuer, "/") {
		t.Fatalf("issuer %q, normalised %q", e.issuer, e.p.Issuer())
	}
	e.issuer = e.p.Issuer()
	ctx := context.Background()
	cfg := e.conf()
	code, pkce := e.login(t, cfg, "alice", "alice-pw-1")
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := verifier(t, e.issuer, confID).Authenticate(ctx, tok.Extra("id_token").(string)); err != nil || p.Name != "alice" {
		t.Fatalf("id token: %+v %v", p, err)
	}
	root := strings.TrimSuffix(e.issuer, "/idp")
	resp, err := http.Get(root + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("discovery outside the issuer path: %d", resp.StatusCode)
	}
}
