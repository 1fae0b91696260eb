package main

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/ui/console"
)

// consoleOptions are what dev decides for the console beyond the config:
// its own sign-in client at the dev provider and the Web UI's address.
type consoleOptions struct {
	oidc          *console.OIDC
	temporalUIURL string
}

// mountConsole serves the console at "/" beside the API's own paths, or
// the API alone when the console is off.
func (b *backend) mountConsole(mux *http.ServeMux, apiHandler http.Handler, auth identity.Authenticator) error {
	for _, p := range []string{"/v1/", "/healthz", "/readyz", "/openapi.json"} {
		mux.Handle(p, apiHandler)
	}
	cc := b.cfg.Console
	if cc.Disabled {
		mux.Handle("/", apiHandler)
		return nil
	}
	key, err := sessionKey(cc)
	if err != nil {
		return err
	}
	cfg := console.Config{API: apiHandler, Auth: auth, Events: b.store, SessionKey: key, Logger: b.log,
		PublicURL: b.cfg.API.PublicURL, TemporalUIURL: cc.TemporalUIURL}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + b.cfg.API.Addr
	}
	if o := b.consoleOpts; o != nil {
		cfg.OIDC = o.oidc
		if o.temporalUIURL != "" {
			cfg.TemporalUIURL = o.temporalUIURL
		}
	} else if cc.ClientID != "" {
		if b.cfg.OIDC.Issuer == "" {
			return fmt.Errorf("config console.client_id needs oidc.issuer: the console signs people in at that provider")
		}
		secret, err := config.Secret(os.Getenv, "MODELPLANE_CONSOLE_CLIENT_SECRET", cc.ClientSecretFile)
		if err != nil {
			return err
		}
		cfg.OIDC = &console.OIDC{Issuer: b.cfg.OIDC.Issuer, ClientID: cc.ClientID, ClientSecret: secret}
	}
	c, err := console.New(cfg)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, c.Close)
	mux.Handle("/", c.Handler())
	// The console's MCP servers page is /mcp exactly; /mcp/... is the
	// gateway's, and without this pattern the mux would redirect /mcp there.
	mux.Handle("/mcp", c.Handler())
	return nil
}

func sessionKey(cc config.Console) ([]byte, error) {
	v, err := config.Secret(os.Getenv, "MODELPLANE_CONSOLE_SESSION_KEY", cc.SessionKeyFile)
	if err != nil || v == "" {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("console session key (MODELPLANE_CONSOLE_SESSION_KEY or console.session_key_file) must be 64 hex characters (openssl rand -hex 32)")
	}
	return key, nil
}
