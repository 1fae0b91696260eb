package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/identity/devidp"
	"github.com/spf13/cobra"
)

// devUIClient is the OIDC client the dev Web UI signs people in with; its
// ID tokens (audience devUIClient) are what the Temporal frontend verifies.
const devUIClient = "temporal-ui"

// devIdP is the running dev OIDC provider and what the banner says of it.
type devIdP struct {
	issuer, uiSecret string
	passwords        map[string]string
	passwordsPath    string
	stop             func()
}

// startDevIdP signs in the dev identities (the same names, roles and teams
// as the dev tokens) with passwords kept in DATA_DIR/passwords.
func startDevIdP(ctx context.Context, addr, dataDir string, inMemory bool, tokens []api.Token, uiHost string, uiPort int) (*devIdP, error) {
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Name
	}
	d := &devIdP{issuer: "http://" + addr, uiSecret: api.NewSecret("mp_ui_")}
	keyFile := ""
	if !inMemory {
		d.passwordsPath, keyFile = filepath.Join(dataDir, "passwords"), filepath.Join(dataDir, "idp-key.pem")
	}
	var err error
	if d.passwords, err = devidp.LoadOrCreatePasswords(d.passwordsPath, names); err != nil {
		return nil, err
	}
	users := make([]devidp.User, len(tokens))
	for i, t := range tokens {
		users[i] = devidp.User{Name: t.Name, Email: t.Name + "@modelplane.dev", Password: d.passwords[t.Name], Teams: t.Teams, Roles: []string{t.Role}}
	}
	uiURL := "http://" + net.JoinHostPort(uiHost, fmt.Sprint(uiPort))
	p, err := devidp.New(ctx, devidp.Config{Issuer: d.issuer, Users: users, KeyFile: keyFile, Clients: []devidp.Client{
		{ID: devUIClient, Secret: d.uiSecret, RedirectURIs: []string{uiURL + "/auth/sso/callback"}},
	}})
	if err != nil {
		return nil, fmt.Errorf("dev OIDC provider: %w", err)
	}
	stop, err := devidp.Serve(ctx, addr, p)
	if err != nil {
		return nil, fmt.Errorf("dev OIDC provider on %s: %w", addr, err)
	}
	d.stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = stop(sctx)
	}
	return d, nil
}

// devBanner is what `modelplane dev` prints once it is ready.
type devBanner struct {
	apiAddr, uiURL, temporalAddr, idpURL, dataDir string
	inMemory                                      bool
	tokens                                        []api.Token
	tokensPath                                    string
	passwords                                     map[string]string
	passwordsPath                                 string
}

func printDev(cmd *cobra.Command, b devBanner, took time.Duration) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "modelplane dev is ready in %s\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(out, "  API             http://%s   (OpenAPI: /openapi.json)\n", b.apiAddr)
	fmt.Fprintf(out, "  Temporal Web UI %s   (sign in: approvers sign off as themselves)\n", b.uiURL)
	fmt.Fprintf(out, "  Sign-in (OIDC)  %s\n", b.idpURL)
	fmt.Fprintf(out, "  Temporal        %s (namespace default; every caller is verified)\n", b.temporalAddr)
	if b.inMemory {
		fmt.Fprintf(out, "  Data            in memory (gone when this process exits)\n")
	} else {
		fmt.Fprintf(out, "  Data            %s/ (temporal.db, modelplane.db)\n", b.dataDir)
	}
	fmt.Fprintf(out, "  Targets         staging, prod (simulated provider)\n\n")
	fmt.Fprint(out, "  Dev users: API token (also in ")
	fmt.Fprint(out, orMemory(b.tokensPath), ") and Web UI password (also in ", orMemory(b.passwordsPath), "):\n")
	for _, t := range b.tokens {
		fmt.Fprintf(out, "    %-6s %-9s %-7s %s  password %s\n", t.Name, t.Role, strings.Join(t.Teams, ","), t.Secret, b.passwords[t.Name])
	}
	fmt.Fprintf(out, "\n  Approve in the Web UI: open %s, sign in (e.g. as bob), open promotion/<id>,\n", b.uiURL)
	fmt.Fprintln(out, `  More Actions → Send a Signal → approve with {"decision": "approve", "comment": "..."}.`)
	fmt.Fprintln(out, "  The vote counts for the signed-in user, verified by the Temporal frontend, whatever name a payload types.")
}

func orMemory(path string) string {
	if path == "" {
		return "memory only"
	}
	return path
}
