// Package ui serves the Temporal Web UI (github.com/temporalio/ui-server)
// from inside modelplane: approvers see each promotion's evidence there and
// can sign off with Send a Signal → approve.
package ui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/temporalio/ui-server/v2/server"
	"github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// Config says where the UI listens and which frontend it talks to.
type Config struct {
	Host, TemporalAddress, Namespace string
	Port                             int
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
	PublicURL string
}

// Server is a running Web UI.
type Server struct {
	srv *server.Server
	URL string
}

// Start serves the UI and returns once it answers HTTP.
func Start(c Config) (*Server, error) {
	addr := net.JoinHostPort(c.Host, fmt.Sprint(c.Port))
	// ui-server exits the process when it cannot bind: check first.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web UI: %w", err)
	}
	l.Close()
	publicURL := "http://" + addr
	if c.OIDC != nil && c.OIDC.PublicURL != "" {
		publicURL = strings.TrimSuffix(c.OIDC.PublicURL, "/")
	}
	cfg := &config.Config{
		Host: c.Host, Port: c.Port, TemporalGRPCAddress: c.TemporalAddress, EnableUI: true,
		DefaultNamespace: c.Namespace, DisableNewsFetch: true, HideLogs: true,
		// Secure cookies wherever browsers reach the UI over HTTPS; plain
		// HTTP (dev on loopback) could not send them back at all.
		CORS: config.CORS{CookieInsecure: !strings.HasPrefix(publicURL, "https://")},
	}
	if o := c.OIDC; o != nil {
		// ui-server exits the process when it cannot reach the provider: check first.
		if err := reachable(o.Issuer); err != nil {
			return nil, fmt.Errorf("web UI sign-in: %w", err)
		}
		cfg.Auth = config.Auth{Enabled: true, Providers: []config.AuthProvider{{
			Label: "modelplane", Type: "oidc", ProviderURL: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Scopes: []string{"openid", "profile", "email"}, CallbackURL: publicURL + "/auth/sso/callback",
			// The ID token is what the frontend verifies: its audience is this client.
			UseIDTokenAsBearer: true,
		}}}
	}
	if c.CodecEndpoint != "" {
		cfg.Codec.Endpoint, cfg.Codec.PassAccessToken, cfg.Codec.IncludeCredentials = c.CodecEndpoint, true, true
	}
	s := &Server{srv: server.NewServer(server_options.WithConfigProvider(cfg)), URL: "http://" + addr}
	go func() { _ = s.srv.Start() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("web UI did not come up on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
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

// Stop closes the UI server.
func (s *Server) Stop() { s.srv.Stop() }
