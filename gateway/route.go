package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mcp"
)

// route serves one server on one channel: an MCP server whose tools are
// exactly the approved, live-matching tools of the version the channel
// points at, relaying to one upstream session.
type route struct {
	g               *Gateway
	key             string
	server, channel string
	srv             *sdk.Server
	handler         http.Handler

	mu     sync.RWMutex
	meta   modelplane.MCPServer // the version served (Name "" if the server is unknown)
	tools  map[string]*sdk.Tool // callable now, by name
	reason string               // why nothing is served, when nothing is
	up     *sdk.ClientSession   // upstream, for meta.Version

	syncMu sync.Mutex // one sync at a time
	kick   chan struct{}
	done   chan struct{}
}

// servable statuses: approved and published, serving a channel.
func servable(status string) bool {
	return status == modelplane.MCPActive || status == modelplane.MCPPublished
}

// route returns the route for server@channel, creating and syncing it on
// first use; nil when no channel of that name exists for the server.
func (g *Gateway) route(ctx context.Context, server, channel string) (*route, error) {
	key := server + "@" + channel
	g.mu.Lock()
	rt, ok := g.routes[key]
	g.mu.Unlock()
	if ok {
		if m, _, _ := rt.current(); m.Name == "" {
			return nil, nil
		}
		return rt, nil
	}
	ch, err := g.cfg.Store.GetChannel(ctx, server, channel)
	if err != nil {
		return nil, err
	}
	if ch.Version == "" {
		return nil, nil // not cached: a channel may appear later
	}
	g.mu.Lock()
	if rt, ok = g.routes[key]; !ok {
		rt = g.newRoute(server, channel)
		g.routes[key] = rt
	}
	g.mu.Unlock()
	if !ok {
		rt.sync(ctx)
		g.wg.Add(1)
		go rt.loop()
	}
	return rt, nil
}

func (g *Gateway) newRoute(server, channel string) *route {
	rt := &route{g: g, key: server + "@" + channel, server: server, channel: channel,
		tools: map[string]*sdk.Tool{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	rt.srv = sdk.NewServer(&sdk.Implementation{Name: "modelplane-gateway/" + server, Version: "1"},
		&sdk.ServerOptions{Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}}})
	rt.srv.AddReceivingMiddleware(rt.middleware)
	stream := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return rt.srv },
		&sdk.StreamableHTTPOptions{Logger: g.log, SessionTimeout: 30 * time.Minute, MaxRequestBodyBytes: maxBody, JSONResponse: true})
	verify := func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := ctx.Value(tokenKey{}).(*auth.TokenInfo); ok {
			return ti, nil
		}
		return nil, auth.ErrInvalidToken
	}
	rt.handler = auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: g.metadataURL(), AllowMissingExpiration: true})(stream)
	return rt
}

// current is what the route serves: the version, the callable tools and
// whether anything is served at all.
func (rt *route) current() (modelplane.MCPServer, map[string]*sdk.Tool, bool) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.meta, rt.tools, rt.reason == ""
}

func (rt *route) loop() {
	defer rt.g.wg.Done()
	t := time.NewTicker(rt.g.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-rt.g.ctx.Done():
			return
		case <-rt.done:
			return
		case <-t.C:
		case <-rt.kick:
		}
		rt.sync(rt.g.ctx)
	}
}

func (rt *route) poke() {
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

func (rt *route) close() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	select {
	case <-rt.done:
	default:
		close(rt.done)
	}
	if rt.up != nil {
		_ = rt.up.Close()
		rt.up = nil
	}
}

// sync brings the served tools in line with the store and the upstream:
// the channel's version, its status, and each live tool against its
// approved fingerprint. Anything it cannot confirm is withdrawn.
func (rt *route) sync(ctx context.Context) {
	rt.syncMu.Lock()
	defer rt.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := rt.g.cfg.Store
	ch, err := st.GetChannel(ctx, rt.server, rt.channel)
	if err != nil {
		rt.withdraw("reading the channel: " + err.Error())
		return
	}
	if ch.Version == "" {
		rt.withdraw("channel " + rt.channel + " serves no version")
		return
	}
	meta, err := st.GetMCPServer(ctx, rt.server, ch.Version)
	if err != nil {
		rt.withdraw("reading the server: " + err.Error())
		return
	}
	rt.mu.Lock()
	if rt.meta.Version != meta.Version && rt.up != nil {
		_ = rt.up.Close()
		rt.up = nil
	}
	rt.meta = meta
	rt.mu.Unlock()
	if !servable(meta.Status) {
		rt.withdraw(fmt.Sprintf("%s@%s is %s", meta.Name, meta.Version, meta.Status))
		return
	}
	cs, err := rt.upstream(ctx)
	if err != nil {
		rt.withdraw("upstream: " + err.Error())
		return
	}
	want := map[string]*sdk.Tool{}
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			rt.dropUpstream(cs)
			rt.withdraw("listing upstream tools: " + err.Error())
			return
		}
		fp, err := mcp.ToolFingerprint(t)
		if err == nil && meta.Contract[t.Name] != "" && meta.Contract[t.Name] == fp {
			want[t.Name] = t
		}
	}
	rt.apply(want, "")
}

// withdraw hides every tool; clients are told at once (list_changed).
func (rt *route) withdraw(reason string) {
	rt.apply(map[string]*sdk.Tool{}, reason)
}

func (rt *route) apply(want map[string]*sdk.Tool, reason string) {
	rt.mu.Lock()
	var gone []string
	for name, t := range rt.tools {
		if w, ok := want[name]; !ok || !sameTool(w, t) {
			gone = append(gone, name)
		}
	}
	var added []*sdk.Tool
	for name, t := range want {
		if old, ok := rt.tools[name]; !ok || !sameTool(old, t) {
			added = append(added, t)
		}
	}
	rt.tools, rt.reason = want, reason
	rt.mu.Unlock()
	if len(gone) > 0 {
		slices.Sort(gone)
		rt.srv.RemoveTools(gone...)
		if reason == "" {
			reason = "the live definition no longer matches the approved contract"
		}
		rt.g.log.Warn("gateway withdrew tools", "server", rt.server, "channel", rt.channel, "tools", gone, "reason", reason)
		meta, _, _ := rt.current()
		rt.g.audit.add(modelplane.AuditRecord{Key: "tools-withdrawn/" + newKey(), Time: rt.g.cfg.Now().UTC(), Actor: "system",
			Action: modelplane.AuditToolsWithdrawn, Subject: rt.server + "@" + rt.channel, Model: rt.server, Target: rt.channel,
			Version: meta.Version, Decision: "withdrawn", Details: map[string]any{"tools": gone, "reason": reason}})
	}
	for _, t := range added {
		rt.srv.AddTool(t, rt.relay)
	}
}

func sameTool(a, b *sdk.Tool) bool {
	fa, ea := mcp.ToolFingerprint(a)
	fb, eb := mcp.ToolFingerprint(b)
	return ea == nil && eb == nil && fa == fb
}

// upstream returns the session to the served version, connecting on first
// use with the server's own credential.
func (rt *route) upstream(ctx context.Context) (*sdk.ClientSession, error) {
	rt.mu.RLock()
	cs, meta := rt.up, rt.meta
	rt.mu.RUnlock()
	if cs != nil {
		return cs, nil
	}
	endpoint, err := meta.Endpoint()
	up := rt.g.cfg.Upstreams[meta.Name]
	if up.URL != "" {
		endpoint, err = up.URL, nil
	}
	if err != nil {
		return nil, err
	}
	hc := rt.g.cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	if up.BearerEnv != "" {
		secret := rt.g.cfg.Getenv(up.BearerEnv)
		if secret == "" {
			return nil, fmt.Errorf("upstream credential %s is empty", up.BearerEnv)
		}
		c := *hc
		c.Transport = bearer{base: transportOf(hc), token: secret}
		hc = &c
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "modelplane-gateway", Version: "1"},
		&sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { rt.poke() }})
	cs, err = client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: 2},
		&sdk.ClientSessionOptions{ProtocolVersion: mcp.ProtocolVersion})
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.up != nil || rt.meta.Version != meta.Version {
		_ = cs.Close() // another sync won, or the version moved meanwhile
		if rt.up == nil {
			return nil, errors.New("the channel moved while connecting")
		}
		return rt.up, nil
	}
	rt.up = cs
	return cs, nil
}

// dropUpstream forgets a broken session so the next use reconnects.
func (rt *route) dropUpstream(cs *sdk.ClientSession) {
	rt.mu.Lock()
	if rt.up == cs {
		rt.up = nil
	}
	rt.mu.Unlock()
	_ = cs.Close()
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// bearer presents the upstream's own credential.
type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
