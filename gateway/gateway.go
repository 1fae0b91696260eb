// Package gateway is modelplane's MCP gateway: a Streamable HTTP endpoint
// per published MCP server and channel that relays tool calls to the
// upstream server and governs each one. Only the tools of the approved
// contract are listed or callable (fail closed); every call is
// authenticated, decided by the embedded policy, checked for secrets, PII
// and prompt injection, held to budgets and recorded in the audit chain.
//
// It is built on the MCP Go SDK: one mcp.Server per route whose tools are
// the approved ones, relaying to an mcp.Client session upstream, with a
// receiving middleware on tools/list and tools/call.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
)

// Store is what the gateway reads and writes.
type Store interface {
	GetChannel(ctx context.Context, server, channel string) (modelplane.MCPChannel, error)
	GetMCPServer(ctx context.Context, name, version string) (modelplane.MCPServer, error)
	AppendAudit(ctx context.Context, recs ...modelplane.AuditRecord) error
}

// Policy decides calls (DecideTool) and who may see a server (Decide).
type Policy interface {
	Decide(ctx context.Context, in policy.Input) (modelplane.PolicyDecision, error)
	DecideTool(ctx context.Context, in policy.Input) (modelplane.PolicyDecision, error)
}

// Upstream says how the gateway reaches one MCP server.
type Upstream struct {
	// URL overrides the server's validate_url / remote_url.
	URL string `json:"url,omitempty" yaml:"url"`
	// BearerEnv names the environment variable holding the server's own
	// credential, sent upstream as a bearer token. The caller's token is
	// never sent upstream.
	BearerEnv string `json:"bearer_env,omitempty" yaml:"bearer_env"`
}

// Budget limits calls per user or per agent, for one server and tool or
// any ("" matches all).
type Budget struct {
	Server string `json:"server,omitempty" yaml:"server"`
	Tool   string `json:"tool,omitempty" yaml:"tool"`
	// Per is "user" or "agent" (the OAuth client the token was issued to).
	Per   string `json:"per" yaml:"per"`
	Limit `yaml:",inline"`
}

// Config configures a Gateway.
type Config struct {
	Store  Store
	Policy Policy
	// Auth must accept only tokens meant for this gateway: configure its
	// OIDC audience as Resource.
	Auth identity.Authenticator
	// Resource is the gateway's public URL up to /mcp, e.g.
	// https://modelplane.example.com/mcp: the RFC 9728 resource.
	Resource             string
	AuthorizationServers []string
	// Content rules; nil means DefaultRules.
	Content   []Rule
	Budgets   []Budget
	Upstreams map[string]Upstream
	// DefaultChannel is served at /mcp/{server} (default "prod").
	DefaultChannel string
	// Refresh is how often a route re-reads its channel and contract
	// (default 1 s): a quarantine or rollback hides the tools within it.
	Refresh    time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	HTTPClient *http.Client
	Getenv     func(string) string
	Now        func() time.Time
}

// Gateway is an http.Handler for /mcp/... and the protected resource
// metadata. Close it to stop its routes and flush the audit.
type Gateway struct {
	cfg     Config
	scan    *Scanner
	limiter *Limiter
	audit   *auditWriter
	metrics *metrics
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	routes map[string]*route

	seen sync.Map // visibility decisions: visKey → visEntry
}

// MetadataPath is where the RFC 9728 protected resource metadata is served.
const MetadataPath = "/.well-known/oauth-protected-resource/mcp"

// New builds a gateway.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("gateway: Store is required")
	case cfg.Policy == nil:
		return nil, errors.New("gateway: Policy is required")
	case cfg.Auth == nil:
		return nil, errors.New("gateway: Auth is required")
	case cfg.Resource == "":
		return nil, errors.New("gateway: Resource (the public /mcp URL) is required")
	}
	if cfg.DefaultChannel == "" {
		cfg.DefaultChannel = "prod"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rules := cfg.Content
	if rules == nil {
		rules = DefaultRules()
	}
	scan, err := NewScanner(rules)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	for i, b := range cfg.Budgets {
		if b.Per != "user" && b.Per != "agent" {
			return nil, modelplane.FieldError(fmt.Sprintf("budgets[%d].per", i), "must be user or agent, got %q", b.Per)
		}
		if b.PerMinute < 0 || b.PerDay < 0 || b.PerMinute+b.PerDay == 0 {
			return nil, modelplane.FieldError(fmt.Sprintf("budgets[%d]", i), "needs per_minute or per_day above zero")
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{cfg: cfg, scan: scan, limiter: NewLimiter(cfg.Now), metrics: m, log: cfg.Logger,
		ctx: ctx, cancel: cancel, routes: map[string]*route{}}
	g.audit = newAuditWriter(cfg.Store, cfg.Logger)
	return g, nil
}

// Close stops every route's upstream session and flushes the audit.
func (g *Gateway) Close() error {
	g.cancel()
	g.mu.Lock()
	for _, r := range g.routes {
		r.close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	return g.audit.close()
}

// ServeHTTP authenticates first, so an anonymous caller learns nothing,
// not even which servers exist.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") {
		g.serveMetadata(w, r)
		return
	}
	p, err := g.authenticate(r)
	if err != nil {
		g.challenge(w, http.StatusUnauthorized, `error="invalid_token", error_description="`+challengeText(err)+`"`)
		return
	}
	server, channel, ok := g.parsePath(r.URL.Path)
	if !ok {
		http.Error(w, "no such MCP server: use /mcp/{server} or /mcp/{server}@{channel}", http.StatusNotFound)
		return
	}
	rt, err := g.route(r.Context(), server, channel)
	if err != nil {
		g.log.Error("gateway route", "server", server, "channel", channel, "err", err)
		http.Error(w, "gateway: "+err.Error(), http.StatusBadGateway)
		return
	}
	if rt == nil || !g.visible(r.Context(), p, rt) {
		// The same answer for "absent" and "not yours": names stay private.
		http.Error(w, "no such MCP server: "+server+"@"+channel, http.StatusNotFound)
		return
	}
	if r.Method == http.MethodPost {
		if !g.precheck(w, r, p, rt) {
			return
		}
	}
	info := &auth.TokenInfo{UserID: p.Name, Extra: map[string]any{principalKey: p}}
	if p.Expires != nil {
		info.Expiration = *p.Expires
	}
	rt.handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, info)))
}

type tokenKey struct{}

const principalKey = "modelplane.principal"

func principalOf(extra *sdk.RequestExtra) modelplane.Principal {
	if extra == nil || extra.TokenInfo == nil {
		return modelplane.Principal{}
	}
	p, _ := extra.TokenInfo.Extra[principalKey].(modelplane.Principal)
	return p
}

func (g *Gateway) authenticate(r *http.Request) (modelplane.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return modelplane.Principal{}, errors.New("no bearer token")
	}
	return g.cfg.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
}

// challengeText keeps the reason short and free of quotes; it never holds
// the credential (identity's errors do not).
func challengeText(err error) string {
	s := strings.NewReplacer(`"`, "'", "\\", "/", "\n", " ").Replace(err.Error())
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (g *Gateway) metadataURL() string {
	base := strings.TrimSuffix(g.cfg.Resource, "/mcp")
	return base + MetadataPath
}

// challenge answers 401 or 403 with the RFC 9728 pointer a client follows
// to find where to get a token.
func (g *Gateway) challenge(w http.ResponseWriter, status int, params string) {
	v := fmt.Sprintf(`Bearer resource_metadata=%q`, g.metadataURL())
	if params != "" {
		v += ", " + params
	}
	w.Header().Set("WWW-Authenticate", v)
	http.Error(w, http.StatusText(status), status)
}

func (g *Gateway) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	doc := map[string]any{
		"resource":                 g.cfg.Resource,
		"authorization_servers":    g.cfg.AuthorizationServers,
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "modelplane MCP gateway",
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_ = json.NewEncoder(w).Encode(doc)
}

// parsePath reads /mcp/{ns}/{name}[@channel]: server names are reverse-DNS
// with one slash.
func (g *Gateway) parsePath(path string) (server, channel string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/mcp/")
	if !ok {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	server, channel = rest, g.cfg.DefaultChannel
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		server, channel = rest[:i], rest[i+1:]
	}
	if strings.Count(server, "/") != 1 || channel == "" || strings.ContainsAny(channel, "/@") {
		return "", "", false
	}
	return server, channel, true
}

// visible asks the policy whether p may read the server (mcp.read), cached
// briefly: with the sessionless protocol every request arrives here.
func (g *Gateway) visible(ctx context.Context, p modelplane.Principal, rt *route) bool {
	meta, _, _ := rt.current()
	if meta.Name == "" {
		return false // the server's record could not be read
	}
	key := visKey{user: p.Name, teams: strings.Join(p.Teams, ","), roles: strings.Join(p.Roles, ","), route: rt.key, team: meta.Team}
	now := g.cfg.Now()
	if v, ok := g.seen.Load(key); ok && now.Before(v.(visEntry).until) {
		return v.(visEntry).ok
	}
	d, err := g.cfg.Policy.Decide(ctx, policy.Input{Action: policy.ActionMCPRead, Caller: p,
		Asset: policy.Asset{Kind: policy.KindMCPServer, Name: meta.Name, Owner: meta.Owner, Team: meta.Team, RiskTier: string(meta.RiskTier), Version: meta.Version}})
	ok := err == nil && d.Allow
	g.seen.Store(key, visEntry{ok: ok, until: now.Add(30 * time.Second)})
	return ok
}

type visKey struct{ user, teams, roles, route, team string }

type visEntry struct {
	ok    bool
	until time.Time
}

// SyncAudit returns once every call made before it is in the audit chain.
func (g *Gateway) SyncAudit() { g.audit.sync() }
