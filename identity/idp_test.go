package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Test keys are generated once: RSA generation dominates test time under
// -race on a small machine.
var (
	keysOnce               sync.Once
	rsaOne, rsaTwo, rsaBad *rsa.PrivateKey
	ecOne, ecBad           *ecdsa.PrivateKey
)

func genKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&rsaOne, &rsaTwo, &rsaBad} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		for _, k := range []**ecdsa.PrivateKey{&ecOne, &ecBad} {
			if *k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				panic(err)
			}
		}
	})
}

type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func keyRSA1(t testing.TB) testKey { genKeys(t); return testKey{"rsa-1", jose.RS256, rsaOne} }
func keyRSA2(t testing.TB) testKey { genKeys(t); return testKey{"rsa-2", jose.RS256, rsaTwo} }
func keyPS1(t testing.TB) testKey  { genKeys(t); return testKey{"ps-1", jose.PS256, rsaOne} }
func keyEC1(t testing.TB) testKey  { genKeys(t); return testKey{"ec-1", jose.ES256, ecOne} }

// fakeIdP serves discovery and a JWKS whose contents tests change at will,
// and counts how often it is asked.
type fakeIdP struct {
	srv       *httptest.Server
	issuer    string
	jwksHits  atomic.Int64
	discoHits atomic.Int64

	mu    sync.Mutex
	keys  []testKey
	extra []json.RawMessage // raw JWKs appended as-is (odd key types)
	fail  bool
	hold  chan struct{} // if set, JWKS responses wait until it is closed
}

func newIdP(t testing.TB, keys ...testKey) *fakeIdP {
	t.Helper()
	p := &fakeIdP{keys: keys}
	mux := http.NewServeMux()
	// Discovery answers under any prefix with the IdP's one issuer, so a
	// client configured with a different issuer sees a mismatch, not a 404.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			http.NotFound(w, r)
			return
		}
		p.discoHits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "jwks_uri": p.issuer + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		hold := p.hold
		p.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		set := struct {
			Keys []any `json:"keys"`
		}{}
		for _, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		for _, raw := range p.extra {
			set.Keys = append(set.Keys, raw)
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	p.issuer = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) publish(keys ...testKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func (p *fakeIdP) setFail(fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

// claims returns a valid claim set as of now; tests edit the map.
func (p *fakeIdP) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":                p.issuer,
		"aud":                []string{"modelplane"},
		"sub":                "0f3c-uid",
		"preferred_username": "alice",
		"email":              "alice@example.com",
		"groups":             []string{"team:fraud", "team:risk", "staff"},
		"roles":              []string{"ml-approvers", "requester", "offline_access"},
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, k testKey, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeClock lets rotation tests step past MinRefreshInterval and
// RefreshInterval without sleeping.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testConfig is the baseline config tests start from.
func (p *fakeIdP) config() OIDCConfig {
	return OIDCConfig{
		Issuer:   p.issuer,
		Audience: []string{"modelplane"},
		ClaimMapping: ClaimMapping{
			TeamPrefix: "team:",
			RoleMap:    map[string]string{"ml-approvers": "approver"},
		},
		HTTPClient: p.srv.Client(),
	}
}

// newTestOIDC builds an OIDC on a fake clock. The clock is installed before
// the instance is shared, so no goroutine ever sees the swap.
func newTestOIDC(t testing.TB, p *fakeIdP, edit func(*OIDCConfig)) (*OIDC, *fakeClock) {
	t.Helper()
	cfg := p.config()
	if edit != nil {
		edit(&cfg)
	}
	o, err := NewOIDC(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	clk := newClock()
	o.now = clk.Now
	return o, clk
}

// rejects asserts that tok fails with ErrUnauthenticated, a message
// containing want, and no trace of the token.
func rejects(t *testing.T, a Authenticator, tok, want string) {
	t.Helper()
	p, err := a.Authenticate(context.Background(), tok)
	if err == nil {
		t.Fatalf("accepted, got principal %+v; want error containing %q", p, want)
	}
	if !isUnauth(err) {
		t.Errorf("error %v does not wrap ErrUnauthenticated", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if leaks(err.Error(), tok) {
		t.Errorf("error %q leaks the token", err)
	}
}

// leaks reports whether msg contains the credential or any long piece of it.
func leaks(msg, tok string) bool {
	if tok == "" {
		return false
	}
	if len(tok) < 16 {
		return strings.Contains(msg, tok)
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 16 && strings.Contains(msg, part) {
			return true
		}
	}
	return strings.Contains(msg, tok[:16])
}
