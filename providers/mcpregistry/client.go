// Package mcpregistry is a small client for the official MCP registry API
// (github.com/modelcontextprotocol/registry, /v0): publish a server
// version, read versions back, and move a version between active,
// deprecated and deleted.
//
// Refusals that a retry cannot change (bad server.json, missing
// permission, unknown version, a version already published with other
// content) wrap modelplane.ErrInvalid; everything else (429, 5xx, network
// failures) is a plain error so Temporal retries it. Messages quote the
// registry.
package mcpregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// MaxPublisherMeta is the registry's limit on the publisher-provided _meta
// object, in bytes of JSON.
const MaxPublisherMeta = 4 * 1024

// MaxStatusMessage is the registry's limit on a status message, in characters.
const MaxStatusMessage = 500

var (
	// ErrNotFound: the registry has no such server or version. Wrapped
	// together with modelplane.ErrInvalid.
	ErrNotFound = errors.New("not found in the MCP registry")
	// ErrAlreadyPublished: the version exists with different content (a
	// version is immutable). Wrapped together with modelplane.ErrInvalid.
	// The same content is not an error: Publish returns the existing
	// version with AlreadyPublished set.
	ErrAlreadyPublished = errors.New("version already published with different content")
)

// TokenSource supplies registry JWTs (they live 5 minutes; a source should
// refresh them). Reads need no token.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a fixed token.
type StaticToken string

// Token returns t.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// TokenFunc adapts a function to TokenSource.
type TokenFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// Client talks to one registry.
type Client struct {
	base  string
	token TokenSource
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default client (30 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client for the registry at baseURL (e.g.
// https://registry.modelcontextprotocol.io; the /v0 prefix is added).
// token may be nil for a read-only client.
func New(baseURL string, token TokenSource, opts ...Option) *Client {
	c := &Client{
		base:  strings.TrimSuffix(strings.TrimSuffix(baseURL, "/"), "/v0"),
		token: token,
		hc:    &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Publish publishes s (its Schema defaults to SchemaURL). When the version
// is already in the registry with the same content — a retried publish
// whose first answer was lost — the stored version is returned with
// AlreadyPublished set; with other content the error wraps
// ErrAlreadyPublished and modelplane.ErrInvalid.
func (c *Client) Publish(ctx context.Context, s ServerJSON) (ServerResponse, error) {
	if s.Schema == "" {
		s.Schema = SchemaURL
	}
	what := fmt.Sprintf("publish %s@%s", s.Name, s.Version)
	if err := checkServer(s); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	var out ServerResponse
	err := c.do(ctx, http.MethodPost, "/v0/publish", nil, s, &out, true)
	if err == nil {
		return out, nil
	}
	var re *responseError
	if !errors.As(err, &re) {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	switch {
	case re.status == http.StatusBadRequest && re.mentions("duplicate version"):
		existing, gerr := c.Get(ctx, s.Name, s.Version)
		if gerr != nil {
			return ServerResponse{}, fmt.Errorf("mcpregistry: %s: already published, and reading it back failed: %w", what, gerr)
		}
		if sameContent(s, existing.Server) {
			existing.AlreadyPublished = true
			return existing, nil
		}
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w: %w", what, ErrAlreadyPublished, modelplane.ErrInvalid)
	case re.status == http.StatusUnprocessableEntity:
		// The publish answer only says "call /validate for details": do so.
		if issues := c.issues(ctx, s); issues != "" {
			return ServerResponse{}, fmt.Errorf("mcpregistry: %s: HTTP 422: %q: %w", what, re.detail+": "+issues, modelplane.ErrInvalid)
		}
	}
	return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
}

// Get returns one version ("latest" for the registry's latest), deleted
// ones included. An unknown server or version wraps ErrNotFound and
// modelplane.ErrInvalid.
func (c *Client) Get(ctx context.Context, name, version string) (ServerResponse, error) {
	var out ServerResponse
	q := url.Values{"include_deleted": {"true"}}
	err := c.do(ctx, http.MethodGet, versionPath(name, version), q, nil, &out, false)
	if err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: get %s@%s: %w", name, version, err)
	}
	return out, nil
}

// Versions returns every version of a server, deleted ones included, in
// the registry's order; none (and no error) for a server never published.
func (c *Client) Versions(ctx context.Context, name string) ([]ServerResponse, error) {
	var out serverList
	q := url.Values{"include_deleted": {"true"}}
	err := c.do(ctx, http.MethodGet, "/v0/servers/"+url.PathEscape(name)+"/versions", q, nil, &out, false)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mcpregistry: versions of %s: %w", name, err)
	}
	return out.Servers, nil
}

// SetStatus moves a version to status with a message explaining why
// (dropped for active, which the registry refuses a message for; at most
// MaxStatusMessage characters). Setting what is already there is not an
// error: the version is returned as it is. The registry records no actor:
// keep your own audit.
func (c *Client) SetStatus(ctx context.Context, name, version string, status Status, message string) (ServerResponse, error) {
	what := fmt.Sprintf("set %s@%s %s", name, version, status)
	if !status.Valid() {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what,
			invalidField("status", "must be active, deprecated or deleted, not %q", status))
	}
	body := map[string]any{"status": status}
	if status != StatusActive && message != "" {
		if n := len([]rune(message)); n > MaxStatusMessage {
			return ServerResponse{}, fmt.Errorf("mcpregistry: %s: statusMessage is %d characters, the registry keeps at most %d: %w",
				what, n, MaxStatusMessage, modelplane.ErrInvalid)
		}
		body["statusMessage"] = message
	}
	var out ServerResponse
	err := c.do(ctx, http.MethodPatch, versionPath(name, version)+"/status", nil, body, &out, true)
	var re *responseError
	if errors.As(err, &re) && re.status == http.StatusBadRequest && re.mentions("no changes to apply") {
		return c.Get(ctx, name, version)
	}
	if err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	return out, nil
}

// invalidField names the offending field and wraps modelplane.ErrInvalid.
func invalidField(field, format string, args ...any) error {
	return errors.Join(modelplane.FieldError(field, format, args...), modelplane.ErrInvalid)
}

func versionPath(name, version string) string {
	return "/v0/servers/" + url.PathEscape(name) + "/versions/" + url.PathEscape(version)
}

// checkServer refuses, before calling the registry, what it would refuse
// with a less helpful message.
func checkServer(s ServerJSON) error {
	switch {
	case s.Name == "":
		return invalidField("name", "required")
	case strings.Count(s.Name, "/") != 1:
		return invalidField("name", "%q must be <reverse-DNS namespace>/<name>", s.Name)
	case s.Version == "":
		return invalidField("version", "required")
	case s.Description == "":
		return invalidField("description", "required")
	}
	if s.Meta != nil && s.Meta.PublisherProvided != nil {
		b, err := json.Marshal(s.Meta.PublisherProvided)
		if err != nil {
			return invalidField("_meta", "publisher-provided metadata is not JSON: %v", err)
		}
		if len(b) > MaxPublisherMeta {
			return invalidField("_meta", "publisher-provided metadata is %d bytes, the registry keeps at most %d",
				len(b), MaxPublisherMeta)
		}
	}
	return nil
}

// sameContent compares what we publish with what the registry holds,
// through one JSON round trip each so number types and empty values match.
func sameContent(a, b ServerJSON) bool {
	norm := func(s ServerJSON) any {
		raw, _ := json.Marshal(s)
		var v any
		_ = json.Unmarshal(raw, &v)
		return v
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// issues asks /v0/validate why s is refused; "" when that fails too.
func (c *Client) issues(ctx context.Context, s ServerJSON) string {
	var v validation
	if err := c.do(ctx, http.MethodPost, "/v0/validate", nil, s, &v, false); err != nil {
		return ""
	}
	var parts []string
	for _, is := range v.Issues {
		if is.Severity != "error" {
			continue
		}
		if is.Path != "" {
			parts = append(parts, is.Path+": "+is.Message)
		} else {
			parts = append(parts, is.Message)
		}
	}
	return strings.Join(parts, "; ")
}

// responseError is a non-2xx answer.
type responseError struct {
	status int
	detail string // the registry's title/detail/errors, joined
}

func (e *responseError) Error() string {
	return fmt.Sprintf("HTTP %d: %q", e.status, e.detail)
}

func (e *responseError) mentions(s string) bool {
	return strings.Contains(strings.ToLower(e.detail), s)
}

// permanent: statuses a retry cannot change.
func permanent(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// do sends one request; in and out are JSON (either may be nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, auth bool) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %v: %w", err, modelplane.ErrInvalid)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%v: %w", err, modelplane.ErrInvalid)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		if c.token == nil {
			return fmt.Errorf("no registry token configured: %w", modelplane.ErrInvalid)
		}
		tok, err := c.token.Token(ctx)
		if err != nil {
			return fmt.Errorf("registry token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // connection refused, timeouts…: retryable
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s %s answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		re := &responseError{status: resp.StatusCode, detail: describe(raw, resp.Status)}
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %w: %w", re, ErrNotFound, modelplane.ErrInvalid)
		case permanent(resp.StatusCode):
			return fmt.Errorf("%w: %w", re, modelplane.ErrInvalid)
		}
		return re
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s %s answer: %v", method, path, err)
	}
	return nil
}

// describe renders the registry's problem body in its own words.
func describe(raw []byte, status string) string {
	var p problem
	if json.Unmarshal(raw, &p) != nil || (p.Title == "" && p.Detail == "") {
		s := strings.TrimSpace(string(raw))
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		if s == "" {
			return status
		}
		return s
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	for _, e := range p.Errors {
		m := e.Message
		if e.Location != "" {
			m = e.Location + ": " + m
		}
		msg += ": " + m
	}
	return msg
}
