// Package mcp validates MCP servers before approval and watches them after:
// Validate connects over streamable HTTP with the MCP Go SDK, checks the
// handshake and every tool, and fingerprints the tool contract; Drift
// compares a live report with the approved fingerprints.
//
// A server that cannot be reached (connection refused, timeouts, 5xx, 429)
// is a plain error, so Temporal retries; a server that answers but fails
// checks — including refusing the handshake with another 4xx — is a Report
// with Passed=false and no error.
package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelplane/modelplane"
)

// ProtocolVersion is the MCP protocol version Validate asks for. Pinned:
// with the SDK's default (2026-07-28) stateful servers first refuse the
// discover call (an extra round trip) and stateless ones fail Ping (SDK
// v1.8.0).
const ProtocolVersion = "2025-11-25"

// Severities of findings. Any error fails the report.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Options tune Validate. The zero value is usable.
type Options struct {
	// HTTPClient reaches the server (default: 30 s timeout). Put
	// authentication in its Transport.
	HTTPClient *http.Client
	// Headers are added to every request (e.g. Authorization). Never logged.
	Headers map[string]string
	// ProtocolVersion overrides the pinned ProtocolVersion.
	ProtocolVersion string
	// Timeout bounds the whole validation (default 60 s).
	Timeout time.Duration
	// MaxTools bounds the tool inventory (default 1000); more is an error
	// finding, not an endless listing.
	MaxTools int
}

// Report is what Validate found; it is stored as approval evidence.
type Report struct {
	Endpoint      string   `json:"endpoint"`
	Protocol      string   `json:"protocol"`
	ServerName    string   `json:"server_name"`
	ServerVersion string   `json:"server_version"`
	Capabilities  []string `json:"capabilities"`
	// Instructions are the server's instructions to clients (scanned like descriptions).
	Instructions string    `json:"instructions,omitempty"`
	Tools        []Tool    `json:"tools"`
	Findings     []Finding `json:"findings"`
	Passed       bool      `json:"passed"`
	// ContractHash is sha256 over the sorted tool fingerprints: one value
	// that changes whenever any tool's contract does.
	ContractHash string `json:"contract_hash"`
	// Fingerprints maps tool name to fingerprint: what an approval pins.
	Fingerprints map[string]string `json:"fingerprints"`
}

// Tool is one tool as listed by the server.
type Tool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// Fingerprint is sha256 over name, description and the canonical JSON
	// of the input and output schemas, hex-encoded with a "sha256:" prefix.
	Fingerprint string    `json:"fingerprint"`
	Findings    []Finding `json:"findings,omitempty"`
}

// Finding is one problem. Tool is empty for server-level findings.
type Finding struct {
	Severity string `json:"severity"`
	Tool     string `json:"tool,omitempty"`
	Check    string `json:"check"`
	Message  string `json:"message"`
}

// Checks (Finding.Check).
const (
	CheckHandshake    = "handshake"
	CheckProtocol     = "protocol"
	CheckCapabilities = "capabilities"
	CheckInventory    = "inventory"
	CheckName         = "name"
	CheckDescription  = "description"
	CheckSchema       = "schema"
	CheckInjection    = "prompt_injection"
)

// Validate connects to the MCP server at endpoint (streamable HTTP) and
// checks it. Errors are connection failures only (retryable); everything
// the server answered is in the Report.
func Validate(ctx context.Context, endpoint string, opts Options) (Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxTools <= 0 {
		opts.MaxTools = 1000
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Report{}, errors.Join(modelplane.FieldError("endpoint", "%q is not an http(s) URL", endpoint), modelplane.ErrInvalid)
	}
	version := opts.ProtocolVersion
	if version == "" {
		version = ProtocolVersion
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	rec := &recorder{}
	hc := httpClient(opts, rec)
	client := sdk.NewClient(&sdk.Implementation{Name: "modelplane-validator", Version: "1"}, nil)
	transport := &sdk.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: hc,
		MaxRetries: -1, // Temporal owns retries
		// One request at a time; no server-initiated stream to hold open.
		DisableStandaloneSSE: true,
	}
	r := Report{Endpoint: endpoint, Capabilities: []string{}, Tools: []Tool{}, Findings: []Finding{}, Fingerprints: map[string]string{}}

	cs, err := client.Connect(ctx, transport, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		if st := rec.refusal(); st != 0 {
			// The server answered and said no: evidence, not a retry.
			r.add(Finding{Severity: SeverityError, Check: CheckHandshake,
				Message: fmt.Sprintf("handshake refused: HTTP %d %s: %v", st, http.StatusText(st), err)})
			r.finish()
			return r, nil
		}
		return Report{}, fmt.Errorf("mcp: connect to %s: %w", endpoint, err)
	}
	defer cs.Close()

	init := cs.InitializeResult()
	checkHandshake(&r, init, version)
	if err := cs.Ping(ctx, nil); err != nil {
		if transient(err, rec) {
			return Report{}, fmt.Errorf("mcp: ping %s: %w", endpoint, err)
		}
		r.add(Finding{Severity: SeverityError, Check: CheckHandshake, Message: fmt.Sprintf("ping failed: %v", err)})
	}

	if init != nil && init.Capabilities != nil && init.Capabilities.Tools != nil {
		tools, err := listTools(ctx, cs, opts.MaxTools)
		if err != nil {
			if transient(err, rec) {
				return Report{}, fmt.Errorf("mcp: list tools of %s: %w", endpoint, err)
			}
			r.add(Finding{Severity: SeverityError, Check: CheckInventory, Message: err.Error()})
		}
		checkTools(&r, tools)
	}
	r.finish()
	return r, nil
}

// listTools pages through tools/list, at most max tools.
func listTools(ctx context.Context, cs *sdk.ClientSession, max int) ([]*sdk.Tool, error) {
	var out []*sdk.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return out, fmt.Errorf("tools/list: %w", err)
		}
		if len(out) == max {
			return out, fmt.Errorf("more than %d tools listed; inventory truncated", max)
		}
		out = append(out, t)
	}
	return out, nil
}

func checkHandshake(r *Report, init *sdk.InitializeResult, asked string) {
	if init == nil {
		r.add(Finding{Severity: SeverityError, Check: CheckHandshake, Message: "no initialize result"})
		return
	}
	r.Protocol = init.ProtocolVersion
	r.Instructions = init.Instructions
	if init.ServerInfo == nil || init.ServerInfo.Name == "" {
		r.add(Finding{Severity: SeverityError, Check: CheckHandshake, Message: "server does not name itself (serverInfo.name)"})
	} else {
		r.ServerName, r.ServerVersion = init.ServerInfo.Name, init.ServerInfo.Version
		if r.ServerVersion == "" {
			r.add(Finding{Severity: SeverityWarning, Check: CheckHandshake, Message: "server reports no version (serverInfo.version)"})
		}
	}
	if r.Protocol != asked {
		r.add(Finding{Severity: SeverityWarning, Check: CheckProtocol,
			Message: fmt.Sprintf("server negotiated protocol %s instead of %s", r.Protocol, asked)})
	}
	r.Capabilities = capabilities(init.Capabilities)
	if init.Capabilities == nil || init.Capabilities.Tools == nil {
		r.add(Finding{Severity: SeverityError, Check: CheckCapabilities, Message: "server does not advertise the tools capability"})
	}
	for _, m := range InjectionMarkers(init.Instructions) {
		r.add(Finding{Severity: SeverityError, Check: CheckInjection,
			Message: fmt.Sprintf("server instructions contain instruction-like text %q (prompt-injection risk)", m)})
	}
}

func capabilities(c *sdk.ServerCapabilities) []string {
	out := []string{}
	if c == nil {
		return out
	}
	if c.Tools != nil {
		out = append(out, "tools")
		if c.Tools.ListChanged {
			out = append(out, "tools.listChanged")
		}
	}
	if c.Resources != nil {
		out = append(out, "resources")
		if c.Resources.Subscribe {
			out = append(out, "resources.subscribe")
		}
		if c.Resources.ListChanged {
			out = append(out, "resources.listChanged")
		}
	}
	if c.Prompts != nil {
		out = append(out, "prompts")
		if c.Prompts.ListChanged {
			out = append(out, "prompts.listChanged")
		}
	}
	if c.Logging != nil {
		out = append(out, "logging")
	}
	if c.Completions != nil {
		out = append(out, "completions")
	}
	for k := range c.Experimental {
		out = append(out, "experimental."+k)
	}
	for k := range c.Extensions {
		out = append(out, "extensions."+k)
	}
	sort.Strings(out)
	return out
}

// add records f on the report and, for tool findings, on the tool.
func (r *Report) add(f Finding) {
	r.Findings = append(r.Findings, f)
	if f.Tool == "" {
		return
	}
	for i := range r.Tools {
		if r.Tools[i].Name == f.Tool {
			r.Tools[i].Findings = append(r.Tools[i].Findings, f)
			return
		}
	}
}

// finish computes Passed and the contract hash.
func (r *Report) finish() {
	r.Passed = true
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			r.Passed = false
		}
	}
	r.ContractHash = ContractHash(r.Fingerprints)
}

// ContractHash is sha256 over the sorted fingerprints, one per line.
func ContractHash(fingerprints map[string]string) string {
	fps := make([]string, 0, len(fingerprints))
	for _, fp := range fingerprints {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	h := sha256.Sum256([]byte(strings.Join(fps, "\n")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// httpClient is opts' client (or a default) with headers added and
// statuses recorded.
func httpClient(opts Options, rec *recorder) *http.Client {
	base := opts.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	hc := *base
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &recordingTransport{next: rt, headers: opts.Headers, rec: rec}
	return &hc
}

// recorder keeps the last HTTP status the server answered with.
type recorder struct {
	mu     sync.Mutex
	status int
}

func (r *recorder) set(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *recorder) last() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// refusal is the last status when it was a 4xx a retry cannot change.
func (r *recorder) refusal() int {
	s := r.last()
	if s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests {
		return s
	}
	return 0
}

// transient: err is a transport failure or a status worth retrying.
func transient(err error, rec *recorder) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sdk.ErrConnectionClosed) {
		return true
	}
	s := rec.last()
	return s == 0 || s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout
}

type recordingTransport struct {
	next    http.RoundTripper
	headers map[string]string
	rec     *recorder
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.headers) > 0 {
		req = req.Clone(req.Context())
		for k, v := range t.headers {
			req.Header.Set(k, v)
		}
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.rec.set(0)
		return nil, err
	}
	// A DELETE closing the session says nothing about the server's health.
	if req.Method != http.MethodDelete {
		t.rec.set(resp.StatusCode)
	}
	return resp, nil
}
