// Package devidp is a small but real OpenID Connect provider for
// development: `modelplane dev` runs it so people sign in to the Temporal
// Web UI (and the console) as the dev identities through the same
// authorization-code flow a production IdP would use. The protocol is
// handled by the certified github.com/zitadel/oidc/v3/pkg/op; this package
// adds in-memory storage, the users and clients, a signing key that
// survives restarts, and a server-rendered login page.
//
// It is not a production IdP: users and passwords come from configuration,
// all state but the signing key is in memory, and plain http is allowed
// for loopback issuers.
package devidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/modelplane/modelplane"
)

// User is a dev identity that can sign in on the login page.
type User struct {
	Name     string   // login name, sub and preferred_username, e.g. "bob"
	Email    string   // e.g. "bob@modelplane.dev"; email_verified is true
	Password string   // compared in constant time; never logged
	Teams    []string // emitted in the "groups" claim
	Roles    []string // emitted in the "roles" claim (requester, approver, admin, auditor)
}

// Client is a registered relying party.
type Client struct {
	ID, Secret   string   // Secret empty = public client (PKCE with S256 required)
	RedirectURIs []string // exact match
}

// Config configures New.
type Config struct {
	// Issuer is the base URL, e.g. "http://127.0.0.1:8234". http is
	// accepted only for loopback hosts (dev). A path is allowed; every
	// endpoint lives under it. A trailing slash is dropped.
	Issuer  string
	Users   []User
	Clients []Client
	// KeyFile, if set, holds the RSA signing key (PEM, 0600); created when
	// missing, so tokens stay valid across restarts of `modelplane dev`.
	KeyFile string
	// IDTokenLifetime / AccessTokenLifetime default to 1h.
	IDTokenLifetime     time.Duration
	AccessTokenLifetime time.Duration
}

// Lifetimes of the state kept in memory. Auth requests must be finished
// on the login page within loginLifetime; a code must be redeemed within
// codeLifetime of being issued.
const (
	defaultTokenLifetime = time.Hour
	loginLifetime        = 15 * time.Minute
	codeLifetime         = 5 * time.Minute
	refreshLifetime      = 24 * time.Hour
	sweepInterval        = time.Minute
)

// Paths served next to op's endpoints, relative to the issuer.
const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
)

// Provider is the OpenID provider plus its login page. It is an
// http.Handler for everything under the issuer's URL.
type Provider struct {
	issuer   string
	op       *op.Provider
	store    *storage
	login    *loginPage
	handler  http.Handler
	basePath string // issuer's path, "" for a root issuer
}

// New validates cfg, loads or creates the signing key and builds the
// provider. ctx bounds only the set-up.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	issuer, base, insecure, err := checkIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	users, err := checkUsers(cfg.Users)
	if err != nil {
		return nil, err
	}
	idTTL := orDefault(cfg.IDTokenLifetime, defaultTokenLifetime)
	atTTL := orDefault(cfg.AccessTokenLifetime, defaultTokenLifetime)
	clients, err := checkClients(cfg.Clients, issuer, idTTL)
	if err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	store := newStorage(issuer, users, clients, key, atTTL)

	// The AES key only protects codes for the lifetime of this process
	// (codes are op-encrypted auth request ids), so a random one is enough.
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail,
			oidc.ScopeOfflineAccess, claimGroups, claimRoles},
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims), claimGroups, claimRoles),
	}
	var opts []op.Option
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(opCfg, store, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	login, err := newLoginPage(store, provider, issuer, base)
	if err != nil {
		return nil, err
	}
	p := &Provider{issuer: issuer, op: provider, store: store, login: login, basePath: base}

	mux := http.NewServeMux()
	mux.Handle(loginPath, login)
	mux.HandleFunc(loggedOutPath, login.serveLoggedOut)
	mux.Handle("/", provider)
	// Our pages need the issuer in the context too (op.AuthCallbackURL
	// reads it); op's own router sets it again, harmlessly.
	var h http.Handler = op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(mux)
	if base != "" {
		h = http.StripPrefix(base, h)
	}
	p.handler = h
	return p, nil
}

// ServeHTTP serves discovery, the OIDC endpoints and the login page under
// the issuer's URL: /.well-known/openid-configuration, /authorize,
// /authorize/callback, /oauth/token, /userinfo, /keys, /end_session,
// /revoke, /oauth/introspect, /healthz, /ready, /login and /logged-out.
// With an issuer path (http://host/idp) requests must carry it, so the
// provider can be mounted on a larger mux at that path.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Issuer is the normalised issuer URL, exactly as it appears in tokens and
// in the discovery document; relying parties must be configured with it.
func (p *Provider) Issuer() string { return p.issuer }

// Serve listens on addr (host:port) and serves p until ctx ends. It
// returns once the listener is bound, so bind errors come back here. stop
// shuts the server down gracefully (bounded by its context) and reports
// any serve error; calling it after ctx ended is fine.
func Serve(ctx context.Context, addr string, p *Provider) (stop func(context.Context) error, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan struct{})
	var serveErr error
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx) // a stuck connection is cut off by the timeout
		case <-served:
		}
	}()
	var once sync.Once
	var stopErr error
	return func(sctx context.Context) error {
		once.Do(func() {
			err := srv.Shutdown(sctx)
			select {
			case <-served:
				stopErr = errors.Join(err, serveErr)
			case <-sctx.Done():
				stopErr = errors.Join(err, sctx.Err())
			}
		})
		return stopErr
	}, nil
}

// checkIssuer normalises the issuer and refuses http for anything but a
// loopback host: with known dev passwords, a plain-http IdP reachable from
// the network would be an open door.
func checkIssuer(raw string) (issuer, base string, insecure bool, err error) {
	issuer = strings.TrimSuffix(raw, "/")
	u, err := url.Parse(issuer)
	switch {
	case raw == "":
		return "", "", false, errors.New("devidp: issuer is required")
	case err != nil || u.Host == "" || u.Opaque != "" || u.User != nil:
		return "", "", false, fmt.Errorf("devidp: issuer %q is not an absolute http(s) URL", raw)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(issuer, "?#"):
		return "", "", false, fmt.Errorf("devidp: issuer %q must not have a query or fragment", raw)
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !isLoopback(u.Hostname()) {
			return "", "", false, fmt.Errorf("devidp: issuer %q: http is only allowed on a loopback host (127.0.0.1, ::1, localhost)", raw)
		}
		insecure = true
	default:
		return "", "", false, fmt.Errorf("devidp: issuer %q: scheme must be http or https", raw)
	}
	return issuer, u.Path, insecure, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkUsers validates the users and indexes them by name. Roles are
// checked against modelplane's so a typo fails at start-up rather than as
// a refused token later.
func checkUsers(in []User) (map[string]*User, error) {
	if len(in) == 0 {
		return nil, errors.New("devidp: at least one user is required")
	}
	users := make(map[string]*User, len(in))
	for i, u := range in {
		switch {
		case u.Name == "" || strings.ContainsFunc(u.Name, isSpaceOrControl):
			return nil, fmt.Errorf("devidp: users[%d]: name %q must be non-empty without spaces", i, u.Name)
		case users[u.Name] != nil:
			return nil, fmt.Errorf("devidp: users[%d]: duplicate name %q", i, u.Name)
		case u.Password == "":
			return nil, fmt.Errorf("devidp: user %q: password is empty", u.Name)
		}
		for _, r := range u.Roles {
			if !slices.Contains(modelplane.Roles, r) {
				return nil, fmt.Errorf("devidp: user %q: unknown role %q (want one of %s)", u.Name, r, strings.Join(modelplane.Roles, ", "))
			}
		}
		c := u
		c.Teams = slices.Clone(u.Teams)
		c.Roles = slices.Clone(u.Roles)
		users[u.Name] = &c
	}
	return users, nil
}

// checkClients validates the clients. Redirect URIs must be absolute URLs
// without fragments and without characters that would break the login
// page's Content-Security-Policy, which names their origins.
func checkClients(in []Client, issuer string, idTTL time.Duration) (map[string]*client, error) {
	if len(in) == 0 {
		return nil, errors.New("devidp: at least one client is required")
	}
	clients := make(map[string]*client, len(in))
	for i, c := range in {
		switch {
		case c.ID == "" || strings.ContainsFunc(c.ID, isSpaceOrControl):
			return nil, fmt.Errorf("devidp: clients[%d]: id %q must be non-empty without spaces", i, c.ID)
		case clients[c.ID] != nil:
			return nil, fmt.Errorf("devidp: clients[%d]: duplicate id %q", i, c.ID)
		case len(c.RedirectURIs) == 0:
			return nil, fmt.Errorf("devidp: client %q: at least one redirect URI is required", c.ID)
		}
		for _, r := range c.RedirectURIs {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				u.Fragment != "" || strings.ContainsAny(r, " \t\r\n;,'\"#") {
				return nil, fmt.Errorf("devidp: client %q: redirect URI %q must be an absolute http(s) URL without fragment", c.ID, r)
			}
		}
		clients[c.ID] = newClient(c, issuer, idTTL)
	}
	return clients, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
