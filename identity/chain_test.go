package identity

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/modelplane/modelplane"
)

// countingAuth records calls and delegates.
type countingAuth struct {
	calls atomic.Int64
	next  Authenticator
}

func (c *countingAuth) Authenticate(ctx context.Context, bearer string) (modelplane.Principal, error) {
	c.calls.Add(1)
	return c.next.Authenticate(ctx, bearer)
}

// countingJWTAuth is a countingAuth that Chain treats like OIDC.
type countingJWTAuth struct{ countingAuth }

func (*countingJWTAuth) jwtOnly() {}

func TestChain(t *testing.T) {
	idp := newIdP(t, keyEC1(t))
	o, clk := newTestOIDC(t, idp, nil)
	static := "mpt_chain-secret-0123456789"
	expired := "mpt_chain-expired-0123456789"
	toks, err := NewTokens([]TokenEntry{
		{Name: "ci", Teams: []string{"fraud"}, Roles: []string{"requester"}, SHA256: Digest(static)},
		{Name: "ci-old", Roles: []string{"requester"}, Expires: clk.Now().Add(-1e9), SHA256: Digest(expired)},
	})
	if err != nil {
		t.Fatal(err)
	}
	oc := &countingJWTAuth{countingAuth{next: o}}
	tc := &countingAuth{next: toks}
	// OIDC listed first on purpose: the chain still tries tokens first.
	a := Chain(oc, tc)
	ctx := context.Background()

	p, err := a.Authenticate(ctx, static)
	if err != nil || p.Method != modelplane.AuthToken || p.Name != "ci" {
		t.Fatalf("static token: %+v %v", p, err)
	}
	if oc.calls.Load() != 0 {
		t.Error("OIDC consulted for a static token")
	}

	rejects(t, a, "mpt_unknown-0123456789", "unknown token")
	if oc.calls.Load() != 0 {
		t.Error("OIDC consulted for a non-JWT credential")
	}

	rejects(t, a, expired, "token ci-old expired at")

	jwt := sign(t, keyEC1(t), idp.claims(clk.Now()))
	p, err = a.Authenticate(ctx, jwt)
	if err != nil || p.Method != modelplane.AuthOIDC || p.Name != "alice" {
		t.Fatalf("JWT: %+v %v", p, err)
	}
	if tc.calls.Load() != 4 || oc.calls.Load() != 1 {
		t.Errorf("calls: tokens %d (want 4), oidc %d (want 1)", tc.calls.Load(), oc.calls.Load())
	}

	// A failing JWT reports why it failed, not the tokens' "unknown token".
	forged := sign(t, testKey{"ec-1", "ES256", ecBad}, idp.claims(clk.Now()))
	rejects(t, a, forged, "invalid signature")

	rejects(t, a, "", "no credential")
	rejects(t, Chain(), "anything", "unknown token")
}
