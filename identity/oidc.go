package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/modelplane/modelplane"
)

// OIDCConfig configures JWT validation against one OIDC issuer.
type OIDCConfig struct {
	// Issuer must equal the tokens' iss claim exactly (and the discovery
	// document's issuer).
	Issuer string `json:"issuer"`
	// Audience: the token's aud must contain at least one of these. Empty
	// skips the check (only sensible when the issuer serves modelplane alone).
	Audience []string `json:"audience,omitempty"`
	// JWKSURL overrides discovery via Issuer/.well-known/openid-configuration.
	JWKSURL      string       `json:"jwks_url,omitempty"`
	ClaimMapping ClaimMapping `json:"claims"`
	// HTTPClient fetches discovery and JWKS; default has a 30s timeout.
	HTTPClient *http.Client `json:"-"`
	// RefreshInterval is how old the cached JWKS may get before a background
	// refetch (default 1h). Requests never wait for it.
	RefreshInterval time.Duration `json:"refresh_interval,omitempty"`
	// MinRefreshInterval bounds how often an unknown kid (or a failing
	// IdP) can trigger a refetch (default 30s).
	MinRefreshInterval time.Duration `json:"min_refresh_interval,omitempty"`
	// Leeway tolerates clock skew on exp, nbf and iat (default 60s; negative
	// means none).
	Leeway time.Duration `json:"leeway,omitempty"`
	// AllowedAlgs lists accepted JWS algorithms (default RS256, ES256,
	// PS256). "none" and HMAC algorithms are refused: with a public JWKS an
	// HMAC "secret" is public too.
	AllowedAlgs []string `json:"allowed_algs,omitempty"`
}

const (
	defaultRefresh    = time.Hour
	defaultMinRefresh = 30 * time.Second
	defaultLeeway     = 60 * time.Second
	httpTimeout       = 30 * time.Second
	maxDocument       = 1 << 20 // discovery/JWKS bodies larger than this are not legitimate
	discoveryPath     = "/.well-known/openid-configuration"
)

var defaultAlgs = []string{"RS256", "ES256", "PS256"}

// asymmetricAlgs are the algorithms we are willing to accept at all.
var asymmetricAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// OIDC validates JWTs issued by one OIDC provider. It is safe for
// concurrent use; validating a token whose key is cached does no I/O.
type OIDC struct {
	issuer   string
	audience []string
	jwksURL  string
	mapping  ClaimMapping
	client   *http.Client
	refresh  time.Duration
	minRef   time.Duration
	leeway   time.Duration
	algs     []jose.SignatureAlgorithm
	algNames string
	// bg carries the constructor context's values, not its cancellation,
	// into background refetches that outlive any one request.
	bg  context.Context
	now func() time.Time

	keys atomic.Pointer[keySet]

	mu          sync.Mutex // guards inflight, lastAttempt, lastErr
	inflight    *fetchCall
	lastAttempt time.Time
	lastErr     error
}

// keySet is an immutable snapshot of the JWKS; refreshes swap the pointer.
type keySet struct {
	byKid   map[string][]jose.JSONWebKey
	all     []jose.JSONWebKey
	fetched time.Time
}

// fetchCall lets concurrent callers share one JWKS fetch.
type fetchCall struct {
	done chan struct{}
	err  error // written before done is closed
}

func (*OIDC) jwtOnly() {}

// NewOIDC validates cfg, discovers the JWKS URL if needed and fetches the
// keys once; it fails if the issuer is unreachable so misconfiguration
// shows at startup rather than as 401s.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oidc: issuer is required")
	}
	mapping, err := cfg.ClaimMapping.compile()
	if err != nil {
		return nil, fmt.Errorf("oidc: claims: %w", err)
	}
	o := &OIDC{
		issuer:   cfg.Issuer,
		audience: slices.Clone(cfg.Audience),
		jwksURL:  cfg.JWKSURL,
		mapping:  mapping,
		client:   cfg.HTTPClient,
		refresh:  cfg.RefreshInterval,
		minRef:   cfg.MinRefreshInterval,
		leeway:   cfg.Leeway,
		bg:       context.WithoutCancel(ctx),
		now:      time.Now,
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: httpTimeout}
	}
	if o.refresh <= 0 {
		o.refresh = defaultRefresh
	}
	if o.minRef <= 0 {
		o.minRef = defaultMinRefresh
	}
	switch {
	case o.leeway == 0:
		o.leeway = defaultLeeway
	case o.leeway < 0:
		o.leeway = 0
	}
	algs := cfg.AllowedAlgs
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	for _, a := range algs {
		if !asymmetricAlgs[a] {
			return nil, fmt.Errorf("oidc: allowed_algs: %q is not an accepted asymmetric JWS algorithm", a)
		}
		o.algs = append(o.algs, jose.SignatureAlgorithm(a))
	}
	o.algNames = strings.Join(algs, ", ")

	if o.jwksURL == "" {
		if o.jwksURL, err = o.discover(ctx); err != nil {
			return nil, err
		}
	}
	o.lastAttempt = o.now()
	ks, err := o.fetchKeys(ctx)
	if err != nil {
		return nil, err
	}
	o.keys.Store(ks)
	return o, nil
}

// JWKSURL reports where keys are fetched from (after discovery).
func (o *OIDC) JWKSURL() string { return o.jwksURL }

// Refresh refetches the JWKS now, ignoring MinRefreshInterval (for an
// operator-triggered reload). On failure the cached keys stay in use.
func (o *OIDC) Refresh(ctx context.Context) error {
	c := o.startFetch(true)
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Authenticate validates a JWT and maps its claims to a principal.
func (o *OIDC) Authenticate(ctx context.Context, bearer string) (modelplane.Principal, error) {
	switch {
	case bearer == "":
		return modelplane.Principal{}, errNoCredential
	case len(bearer) > maxBearer:
		return modelplane.Principal{}, unauth("credential larger than %d bytes", maxBearer)
	case !looksLikeJWT(bearer):
		return modelplane.Principal{}, errNotJWT
	}
	jws, err := jose.ParseSignedCompact(bearer, o.algs)
	if err != nil {
		return modelplane.Principal{}, o.parseError(bearer, err)
	}
	hdr := jws.Signatures[0].Header
	alg, kid := hdr.Algorithm, hdr.KeyID

	now := o.now()
	ks := o.keys.Load()
	if now.Sub(ks.fetched) >= o.refresh {
		o.startFetch(false) // in the background: this request uses what we have
	}
	cands := ks.candidates(kid, alg)
	if len(cands) == 0 && kid != "" {
		// Unknown kid: the IdP may have rotated. Join (or start) one
		// rate-limited refetch, then look again; a rate-limited caller may
		// still find the key another caller's fetch just brought in.
		if c := o.startFetch(false); c != nil {
			select {
			case <-c.done:
			case <-ctx.Done():
				return modelplane.Principal{}, unauth("waiting for JWKS refresh: %v", ctx.Err())
			}
		}
		cands = o.keys.Load().candidates(kid, alg)
	}
	if len(cands) == 0 {
		return modelplane.Principal{}, unauth("no %s signing key with kid %.64q in the issuer's JWKS", alg, kid)
	}
	var payload []byte
	for _, k := range cands {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if err != nil {
		return modelplane.Principal{}, unauth("invalid signature (kid %.64q)", kid)
	}

	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return modelplane.Principal{}, unauth("JWT payload is not a JSON object")
	}
	exp, err := o.checkClaims(claims, now)
	if err != nil {
		return modelplane.Principal{}, err
	}
	p, err := o.mapping.principal(claims)
	if err != nil {
		return modelplane.Principal{}, unauth("%v", err)
	}
	p.Method = modelplane.AuthOIDC
	p.Expires = &exp
	p.Client, p.Act = delegation(claims)
	return p, nil
}

// delegation reads the client a token was issued to and its RFC 8693 act
// chain ({"act": {"sub": "agent", "act": {...}}}), nearest actor first. The
// depth is bounded: a token is attacker-shaped input.
func delegation(claims map[string]any) (client string, act []string) {
	for _, c := range []string{"azp", "client_id"} {
		if s, ok := claims[c].(string); ok && s != "" {
			client = s
			break
		}
	}
	cur, _ := claims["act"].(map[string]any)
	for i := 0; cur != nil && i < 8; i++ {
		sub, _ := cur["sub"].(string)
		if sub == "" {
			sub, _ = cur["client_id"].(string)
		}
		if sub != "" {
			act = append(act, sub)
		}
		cur, _ = cur["act"].(map[string]any)
	}
	return client, act
}

// checkClaims validates iss, aud, exp, nbf and iat and returns exp.
func (o *OIDC) checkClaims(claims map[string]any, now time.Time) (time.Time, error) {
	iss, _ := claims["iss"].(string)
	if iss != o.issuer {
		return time.Time{}, unauth("issuer %.200q is not the configured issuer %q", iss, o.issuer)
	}
	if len(o.audience) > 0 {
		aud := stringValues(claims["aud"])
		if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(o.audience, a) }) {
			return time.Time{}, unauth("audience %.200q does not include any of %q", aud, o.audience)
		}
	}
	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, unauth("token has no exp claim")
	}
	if now.Add(-o.leeway).After(exp) {
		return time.Time{}, unauth("token expired at %s", exp.Format(time.RFC3339))
	}
	if nbf, ok, err := numericDate(claims, "nbf"); err != nil {
		return time.Time{}, err
	} else if ok && now.Add(o.leeway).Before(nbf) {
		return time.Time{}, unauth("token not valid before %s", nbf.Format(time.RFC3339))
	}
	if iat, ok, err := numericDate(claims, "iat"); err != nil {
		return time.Time{}, err
	} else if ok && now.Add(o.leeway).Before(iat) {
		// Not required by the RFC, but a token from the future means a
		// broken clock or a forgery; neither should be trusted.
		return time.Time{}, unauth("token issued in the future (%s)", iat.Format(time.RFC3339))
	}
	return exp, nil
}

// numericDate reads a JWT NumericDate claim (seconds since the epoch).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	// 2^40 seconds is ~36,000 years; beyond that int64 nanoseconds overflow.
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, false, unauth("claim %s is not a valid NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// parseError explains a JWS parse failure; a refused algorithm gets a
// message of its own because it is the interesting (attack) case.
func (o *OIDC) parseError(bearer string, err error) error {
	head, _, _ := strings.Cut(bearer, ".")
	if raw, derr := base64.RawURLEncoding.DecodeString(head); derr == nil {
		var h struct {
			Alg string `json:"alg"`
		}
		if json.Unmarshal(raw, &h) == nil && h.Alg != "" &&
			!slices.Contains(o.algs, jose.SignatureAlgorithm(h.Alg)) {
			return unauth("signing algorithm %.16q is not allowed (allowed: %s)", h.Alg, o.algNames)
		}
	}
	return unauth("malformed JWT: %v", err)
}

// candidates returns the keys that may have signed a token with kid and alg.
func (ks *keySet) candidates(kid, alg string) []jose.JSONWebKey {
	pool := ks.all
	if kid != "" {
		pool = ks.byKid[kid]
	}
	// Most sets hold one key per kid, so this usually returns pool itself.
	for i, k := range pool {
		if k.Algorithm != "" && k.Algorithm != alg {
			out := slices.Clone(pool[:i])
			for _, k := range pool[i+1:] {
				if k.Algorithm == "" || k.Algorithm == alg {
					out = append(out, k)
				}
			}
			return out
		}
	}
	return pool
}

// startFetch joins the in-flight JWKS fetch or starts one. Unless force is
// set it returns nil when the last attempt was under MinRefreshInterval ago,
// which is what stops a flood of made-up kids from hammering the IdP.
func (o *OIDC) startFetch(force bool) *fetchCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inflight != nil {
		return o.inflight
	}
	now := o.now()
	if !force && now.Sub(o.lastAttempt) < o.minRef {
		return nil
	}
	o.lastAttempt = now
	c := &fetchCall{done: make(chan struct{})}
	o.inflight = c
	go o.runFetch(c)
	return c
}

func (o *OIDC) runFetch(c *fetchCall) {
	// Detached from any request so one caller giving up does not fail the
	// fetch for everyone waiting on it.
	ctx, cancel := context.WithTimeout(o.bg, httpTimeout)
	defer cancel()
	ks, err := o.fetchKeys(ctx)
	if err == nil {
		// Replace, never merge: a key the IdP withdrew must stop working.
		o.keys.Store(ks)
	}
	o.mu.Lock()
	o.inflight = nil
	o.lastErr = err
	o.mu.Unlock()
	c.err = err
	close(c.done)
}

// LastRefreshError reports the outcome of the most recent JWKS fetch (nil
// if it succeeded), for health checks: a failing IdP does not fail requests
// while cached keys remain.
func (o *OIDC) LastRefreshError() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastErr
}

func (o *OIDC) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(o.issuer, "/") + discoveryPath
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := o.getJSON(ctx, u, &doc); err != nil {
		return "", fmt.Errorf("oidc: discovery: %w", err)
	}
	// OIDC Discovery 1.0 §4.3: a mismatch means we are talking to the wrong
	// issuer (or a spoofed one).
	if doc.Issuer != o.issuer {
		return "", fmt.Errorf("oidc: discovery: %s reports issuer %q, configured %q", u, doc.Issuer, o.issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("oidc: discovery: %s has no jwks_uri", u)
	}
	return doc.JWKSURI, nil
}

func (o *OIDC) fetchKeys(ctx context.Context) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := o.getJSON(ctx, o.jwksURL, &doc); err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	ks := &keySet{byKid: map[string][]jose.JSONWebKey{}, fetched: o.now()}
	skipped := 0
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		// Parse keys one by one: one key of a type we cannot read (a new
		// curve, say) must not take the others down with it.
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped++
			continue
		}
		// Only public asymmetric signing keys: an "oct" key would let HMAC
		// tokens through, and encryption keys do not sign.
		if !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			skipped++
			continue
		}
		ks.all = append(ks.all, k)
		ks.byKid[k.KeyID] = append(ks.byKid[k.KeyID], k)
	}
	if len(ks.all) == 0 {
		return nil, fmt.Errorf("oidc: jwks: %s has no usable signing keys (%d skipped)", o.jwksURL, skipped)
	}
	return ks, nil
}

func (o *OIDC) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: response larger than %d bytes", url, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
