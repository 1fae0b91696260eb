// Package ui serves the Temporal Web UI (github.com/temporalio/ui-server)
// from inside modelplane: approvers see each promotion's evidence there and
// can sign off with Send a Signal → approve.
package ui

import (
	"context"
	"fmt"
	"net"
	"net/http"
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
	cfg := &config.Config{
		Host: c.Host, Port: c.Port, TemporalGRPCAddress: c.TemporalAddress, EnableUI: true,
		DefaultNamespace: c.Namespace, DisableNewsFetch: true, HideLogs: true,
		CORS: config.CORS{CookieInsecure: true},
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

// Stop closes the UI server.
func (s *Server) Stop() { s.srv.Stop() }
