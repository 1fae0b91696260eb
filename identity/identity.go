// Package identity answers "who is calling": it turns a bearer credential
// into a modelplane.Principal, either by validating an OIDC JWT against the
// issuer's JWKS or by looking a static pipeline token up by its digest.
package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/modelplane/modelplane"
)

// Authenticator resolves a bearer credential to a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (modelplane.Principal, error)
}

// ErrUnauthenticated is wrapped by every authentication failure so callers
// can map it to 401 with errors.Is. No error built by this package contains
// the credential itself, because these messages end up in logs and responses.
var ErrUnauthenticated = errors.New("unauthenticated")

// maxBearer bounds the work an unauthenticated caller can make us do; real
// ID/access tokens are a few KiB even with large group claims.
const maxBearer = 64 << 10

// notMine marks a failure that only says "this authenticator does not know
// the credential", so Chain can prefer a more specific error from another.
type notMine struct{ msg string }

func (e *notMine) Error() string { return ErrUnauthenticated.Error() + ": " + e.msg }
func (e *notMine) Unwrap() error { return ErrUnauthenticated }

var (
	errNoCredential = &notMine{"no credential"}
	errUnknownToken = &notMine{"unknown token"}
	errNotJWT       = &notMine{"credential is not a JWT"}
)

// unauth builds a failure that wraps ErrUnauthenticated.
func unauth(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}

// jwtOnly is implemented by authenticators that can only ever accept a JWT;
// Chain skips them for anything else so a static token never costs a JWT
// parse (or, worse, a JWKS refetch).
type jwtOnly interface{ jwtOnly() }

// looksLikeJWT reports whether s has the compact JWS shape: exactly three
// dot-separated parts with a non-empty header.
func looksLikeJWT(s string) bool {
	i := strings.IndexByte(s, '.')
	if i <= 0 {
		return false
	}
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return false
	}
	return !strings.Contains(s[i+1+j+1:], ".")
}

// Chain returns an Authenticator that tries auths in order, except that
// JWT-only authenticators (OIDC) go after the others and are consulted only
// when the bearer looks like a JWT. The first success wins. On failure it
// returns the last error that says something specific (expired, bad
// signature, wrong issuer) rather than a bare "unknown token".
func Chain(auths ...Authenticator) Authenticator {
	c := chain{}
	for _, a := range auths {
		if _, ok := a.(jwtOnly); !ok {
			c.cheap = append(c.cheap, a)
		}
	}
	for _, a := range auths {
		if _, ok := a.(jwtOnly); ok {
			c.jwt = append(c.jwt, a)
		}
	}
	return c
}

type chain struct{ cheap, jwt []Authenticator }

func (c chain) Authenticate(ctx context.Context, bearer string) (modelplane.Principal, error) {
	if bearer == "" {
		return modelplane.Principal{}, errNoCredential
	}
	var last error
	try := func(a Authenticator) (modelplane.Principal, bool) {
		p, err := a.Authenticate(ctx, bearer)
		if err == nil {
			return p, true
		}
		var nm *notMine
		if last == nil || !errors.As(err, &nm) {
			last = err
		}
		return modelplane.Principal{}, false
	}
	for _, a := range c.cheap {
		if p, ok := try(a); ok {
			return p, nil
		}
	}
	if looksLikeJWT(bearer) {
		for _, a := range c.jwt {
			if p, ok := try(a); ok {
				return p, nil
			}
		}
	}
	if last == nil {
		last = errUnknownToken
	}
	return modelplane.Principal{}, last
}
