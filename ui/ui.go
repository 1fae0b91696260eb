// Package ui serves the Temporal Web UI (github.com/temporalio/ui-server)
// from inside modelplane: approvers see each promotion's evidence there and
// can sign off with Send a Signal → approve.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/temporalio/ui-server/v2/server/api"
	"github.com/temporalio/ui-server/v2/server/auth"
	"github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/cors"
	"github.com/temporalio/ui-server/v2/server/csrf"
	"github.com/temporalio/ui-server/v2/server/headers"
	"github.com/temporalio/ui-server/v2/server/route"
	uiassets "github.com/temporalio/ui-server/v2/ui"
)

// Config says where the UI listens and which frontend it talks to.
type Config struct {
	Host, TemporalAddress, Namespace string
	// Port 0 picks a free port; Server.URL names the one bound.
	Port int
	// CodecEndpoint, if set, is where the UI decodes encrypted payloads
	// (modelplane's /codec); the signed-in user's access token goes with it.
	CodecEndpoint string
	// OIDC, if set, turns on sign-in: the UI sends the signed-in user's ID
	// token as the bearer to the frontend, which verifies it.
	OIDC *OIDC
}

// OIDC is the Web UI's sign-in client.
type OIDC struct {
	// Issuer is the provider's URL (discovery at /.well-known/openid-configuration).
	Issuer       string
	ClientID     string
	ClientSecret string
	// PublicURL is where browsers reach the UI; the callback is PublicURL + /auth/sso/callback.
	// An https URL makes every cookie the UI sets Secure.
	PublicURL string
}

// Server is a running Web UI.
type Server struct {
	// URL is where the UI answers: the configured host and the port bound.
	URL string

	srv  *http.Server
	cfg  *config.ConfigProviderWithRefresh
	errc chan error
}

// Start binds the UI's address and serves it. A bind failure (the port
// taken) is returned; once Start returns, the UI answers on URL.
//
// ui-server's own Server.Start binds by itself after we could only have
// probed the port, and exits the process when it cannot; so the listener
// is ours and ui-server provides the handler.
func Start(c Config) (*Server, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	if err != nil {
		return nil, fmt.Errorf("web UI: %w", err)
	}
	s, err := serve(l, c)
	if err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

func serve(l net.Listener, c Config) (*Server, error) {
	port := l.Addr().(*net.TCPAddr).Port
	local := "http://" + net.JoinHostPort(c.Host, strconv.Itoa(port))
	publicURL := local
	if c.OIDC != nil && c.OIDC.PublicURL != "" {
		publicURL = strings.TrimSuffix(c.OIDC.PublicURL, "/")
	}
	secure, err := httpsURL(publicURL)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{
		Host: c.Host, Port: port, TemporalGRPCAddress: c.TemporalAddress, EnableUI: true,
		DefaultNamespace: c.Namespace, DisableNewsFetch: true, HideLogs: true,
		// Secure cookies wherever browsers reach the UI over HTTPS; plain
		// HTTP (dev on loopback) could not send them back at all.
		CORS: config.CORS{CookieInsecure: !secure},
	}
	if o := c.OIDC; o != nil {
		// ui-server exits the process when it cannot reach the provider: check first.
		if err := reachable(o.Issuer); err != nil {
			return nil, fmt.Errorf("web UI sign-in: %w", err)
		}
		cfg.Auth = config.Auth{Enabled: true, Providers: []config.AuthProvider{{
			Label: "modelplane", Type: "oidc", ProviderURL: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			// ui-server makes the sign-in cookies Secure when this URL is https.
			Scopes: []string{"openid", "profile", "email"}, CallbackURL: publicURL + "/auth/sso/callback",
			// The ID token is what the frontend verifies: its audience is this client.
			UseIDTokenAsBearer: true,
		}}}
	}
	if c.CodecEndpoint != "" {
		cfg.Codec.Endpoint, cfg.Codec.PassAccessToken, cfg.Codec.IncludeCredentials = c.CodecEndpoint, true, true
	}
	cp, err := config.NewConfigProviderWithRefresh(cfg)
	if err != nil {
		return nil, fmt.Errorf("web UI: %w", err)
	}
	e, err := handler(cp, cfg)
	if err != nil {
		cp.Close()
		return nil, fmt.Errorf("web UI: %w", err)
	}
	s := &Server{URL: local, cfg: cp, errc: make(chan error, 1),
		srv: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("web UI on %s: %w", l.Addr(), err)
		}
		close(s.errc)
	}()
	return s, nil
}

// handler is what ui-server's server.NewServer (v2.55.0) builds — the same
// middleware in the same order, the same routes — from ui-server's exported
// packages, because NewServer keeps its Echo to itself; unlike NewServer it
// returns the errors it meets. TestHandlerMatchesUpstream compares the
// routes; recheck the middleware against server.go when ui-server is upgraded.
func handler(cp *config.ConfigProviderWithRefresh, cfg *config.Config) (*echo.Echo, error) {
	apiMiddleware := []api.Middleware{headers.WithForwardHeaders([]string{auth.AuthorizationExtrasHeader, "Caller-Type"})}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(cors.CORSMiddleware(cors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, auth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cp,
	}))
	e.Use(middleware.Secure())
	csrfSecure := !cfg.CORS.CookieInsecure
	e.Use(csrf.EnsureTokenCookie(csrfSecure))
	e.Use(middleware.CSRFWithConfig(csrf.MiddlewareConfig(cp, csrfSecure)))

	e.Pre(route.PublicPath(cfg.PublicPath))
	route.SetHealthRoute(e)
	if err := route.SetAPIRoutes(e, cp, apiMiddleware); err != nil {
		return nil, err
	}
	route.SetAuthRoutes(e, cp)
	assets, err := uiassets.Assets()
	if err != nil {
		return nil, err
	}
	if assets, err = fs.Sub(assets, "local"); err != nil {
		return nil, err
	}
	if err := route.SetUIRoutes(e, cfg.PublicPath, assets, cp); err != nil {
		return nil, err
	}
	route.SetRenderRoute(e, "/")
	return e, nil
}

// httpsURL reports whether browsers reach the UI over HTTPS.
func httpsURL(public string) (bool, error) {
	u, err := url.Parse(public)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return u.Scheme == "https", nil
	}
	return false, fmt.Errorf("web UI: public URL %q is not an http or https URL", public)
}

// reachable checks the OIDC provider's discovery document answers.
func reachable(issuer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("OIDC provider %s: %w", issuer, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OIDC provider %s: discovery answered %s", issuer, resp.Status)
	}
	return nil
}

// Err delivers the error that stopped the UI serving, if anything but
// Stop did; it is closed once the UI has stopped.
func (s *Server) Err() <-chan error { return s.errc }

// Stop closes the UI server and its open connections.
func (s *Server) Stop() {
	_ = s.srv.Close()
	s.cfg.Close()
}
