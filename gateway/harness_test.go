package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/gateway"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/mcp"
	"github.com/modelplane/modelplane/providers/mcp/mcptest"
	"github.com/modelplane/modelplane/store"
)

const server = "io.github.acme/notes"

// Static tokens: alice requests in growth, bob approves in growth, eve is in
// another team, audrey audits.
var secrets = map[string]string{"alice": "tok-alice-0123456789", "bob": "tok-bob-0123456789",
	"eve": "tok-eve-0123456789", "audrey": "tok-audrey-0123456789"}

const upstreamSecret = "upstream-credential-for-tests"

func notesTools() []mcptest.Tool {
	f := false
	obj := func(arg, desc string) map[string]any {
		return map[string]any{"type": "object", "required": []any{arg},
			"properties": map[string]any{arg: map[string]any{"type": "string", "description": desc}}}
	}
	return []mcptest.Tool{
		mcptest.Echo(),
		{Name: "search_notes", Description: "Finds notes whose text contains the query.", InputSchema: obj("query", "Words to look for."),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}, Reply: "note 1: ship v2; contact ops@example.com"},
		{Name: "add_note", Description: "Adds a note.", InputSchema: obj("text", "The note."),
			Annotations: &sdk.ToolAnnotations{DestructiveHint: &f}, Reply: "added"},
		{Name: "delete_note", Description: "Deletes a note for good.", InputSchema: obj("id", "The note's id."), Reply: "deleted"},
		{Name: "list_commits", Description: "Lists a repository's commits.", InputSchema: obj("repo", "owner/name of the repository."),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}, Reply: "abc123 fix"},
		{Name: "card_on_file", Description: "Shows the card on file.", InputSchema: obj("customer", "Customer id."),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}, Reply: "card 4111 1111 1111 1111 exp 12/29"},
		{Name: "trace", Description: "Answers with the traceparent the call carried.", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true},
			Handler: func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				tp, _ := req.Params.Meta["traceparent"].(string)
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "traceparent=" + tp}}}, nil
			}},
	}
}

type harness struct {
	t        *testing.T
	st       *store.Store
	pol      *policy.Engine
	gw       *gateway.Gateway
	url      string // the gateway's base URL
	up       *mcptest.Handle
	upURL    string
	clock    *clock
	registry *prometheus.Registry
	idp      *issuer
}

type options struct {
	budgets   []gateway.Budget
	data      map[string]any
	stateless bool
	content   []gateway.Rule
}

type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{}, registry: prometheus.NewRegistry()}
	var err error
	h.st, err = store.Open(filepath.Join(t.TempDir(), "mp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.st.Close() })
	var opts []policy.Option
	if o.data != nil {
		opts = append(opts, policy.WithData(o.data))
	}
	h.pol, err = policy.New("", opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.upURL, h.up = mcptest.Serve(t, mcptest.ServerSpec{Name: "notes", Tools: notesTools(), Stateless: o.stateless})
	h.publish("1.0.0")

	toks, err := identity.NewTokens([]identity.TokenEntry{
		{Name: "alice", Teams: []string{"growth"}, Roles: []string{modelplane.RoleRequester}, SHA256: identity.Digest(secrets["alice"])},
		{Name: "bob", Teams: []string{"growth"}, Roles: []string{modelplane.RoleApprover}, SHA256: identity.Digest(secrets["bob"])},
		{Name: "eve", Teams: []string{"risk"}, Roles: []string{modelplane.RoleRequester, modelplane.RoleApprover}, SHA256: identity.Digest(secrets["eve"])},
		{Name: "audrey", Roles: []string{modelplane.RoleAuditor}, SHA256: identity.Digest(secrets["audrey"])},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.idp = newIssuer(t)
	oidc, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{Issuer: h.idp.url, Audience: []string{h.url + "/mcp"},
		ClaimMapping: identity.ClaimMapping{TeamsClaim: "groups", RolesClaim: "roles"}, Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	h.gw, err = gateway.New(gateway.Config{Store: h.st, Policy: h.pol, Auth: identity.Chain(toks, oidc),
		Resource: h.url + "/mcp", AuthorizationServers: []string{h.idp.url},
		Upstreams: map[string]gateway.Upstream{server: {BearerEnv: "NOTES_TOKEN"}},
		Getenv: func(k string) string {
			if k == "NOTES_TOKEN" {
				return upstreamSecret
			}
			return ""
		},
		Budgets: o.budgets, Content: o.content, Refresh: 100 * time.Millisecond, Registerer: h.registry, Now: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h.gw
	t.Cleanup(func() { h.gw.Close() })
	return h
}

// publish registers version v with the contract the live server shows now
// and points prod at it, as an approved promotion would.
func (h *harness) publish(v string) {
	h.t.Helper()
	ctx := context.Background()
	r, err := mcp.Validate(ctx, h.upURL, mcp.Options{})
	if err != nil || !r.Passed {
		h.t.Fatalf("validate: %v %+v", err, r.Findings)
	}
	m := modelplane.MCPServer{Name: server, Version: v, Description: "Team notes.", RemoteURL: "https://notes.example.com/mcp",
		ValidateURL: h.upURL, Owner: "alice", Team: "growth", RiskTier: modelplane.RiskLow,
		Status: modelplane.MCPActive, Contract: r.Fingerprints, ContractHash: r.ContractHash, CreatedBy: "alice"}
	if _, err := h.st.CreateMCPServer(ctx, m); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.UpdateMCPServer(ctx, server, v, func(s *modelplane.MCPServer) {
		s.Status, s.Contract, s.ContractHash = modelplane.MCPActive, r.Fingerprints, r.ContractHash
	}); err != nil {
		h.t.Fatal(err)
	}
	ch, _ := h.st.GetChannel(ctx, server, "prod")
	if err := h.st.PutChannel(ctx, modelplane.MCPChannel{Server: server, Channel: "prod", Version: v, Previous: ch.Version}); err != nil {
		h.t.Fatal(err)
	}
}

// connect opens a go-sdk client session through the gateway as user (a
// static token name) or with a raw bearer.
func (h *harness) connect(bearer string, opt ...any) *session {
	h.t.Helper()
	s := &session{}
	co := &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { s.changed.Add(1) }}
	version := "2025-11-25"
	for _, o := range opt {
		switch o := o.(type) {
		case func(*sdk.ClientOptions):
			o(co)
		case string:
			version = o // "" is the SDK's latest
		}
	}
	c := sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "1"}, co)
	tok := bearer
	if s, ok := secrets[bearer]; ok {
		tok = s
	}
	hc := &http.Client{Transport: withBearer{tok}}
	cs, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: h.url + "/mcp/" + server, HTTPClient: hc, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		h.t.Fatalf("connect as %s: %v", bearer, err)
	}
	h.t.Cleanup(func() { cs.Close() })
	s.ClientSession = cs
	return s
}

type session struct {
	*sdk.ClientSession
	changed atomic.Int32
}

func (s *session) names(t *testing.T) []string {
	t.Helper()
	res, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tl := range res.Tools {
		out = append(out, tl.Name)
	}
	return out
}

func (s *session) call(name string, args map[string]any) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
}

type withBearer struct{ tok string }

func (b withBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// calls reads the tool-call audit records, oldest first.
func (h *harness) calls() []modelplane.AuditRecord {
	h.t.Helper()
	h.gw.SyncAudit()
	recs, err := h.st.ListAudit(context.Background(), store.AuditFilter{Action: modelplane.AuditToolCall, Limit: 10000})
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issuer is an OIDC issuer stand-in: discovery, a JWKS and RS256 tokens
// with whatever claims a test needs (expired, another audience, act chains).
type issuer struct {
	url string
	key *rsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: k}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	is.url = srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.url, "jwks_uri": is.url + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	return is
}

func (is *issuer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: is.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{"iss": is.url, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		base[k] = v
	}
	b, _ := json.Marshal(base)
	obj, err := sig.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
