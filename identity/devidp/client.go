package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client adapts a configured Client to op.Client. Only the authorization
// code flow (plus refresh tokens) is offered: no implicit flow, no
// client_credentials, no private_key_jwt.
type client struct {
	id           string
	secretDigest [sha256.Size]byte // of the secret; zero for public clients
	public       bool
	redirectURIs []string
	postLogout   []string
	loginURL     string // issuer + loginPath
	idTTL        time.Duration
}

var _ op.Client = (*client)(nil)

func newClient(c Client, issuer string, idTTL time.Duration) *client {
	cl := &client{
		id:           c.ID,
		public:       c.Secret == "",
		redirectURIs: slices.Clone(c.RedirectURIs),
		loginURL:     issuer + loginPath,
		idTTL:        idTTL,
	}
	if !cl.public {
		cl.secretDigest = sha256.Sum256([]byte(c.Secret))
	}
	// Logout may return to the root of any origin the client redirects to
	// (e.g. http://127.0.0.1:8233/): Client has no field of its own for it
	// and an origin the client already owns is no open redirect.
	for _, r := range c.RedirectURIs {
		if u, err := url.Parse(r); err == nil {
			root := u.Scheme + "://" + u.Host + "/"
			if !slices.Contains(cl.postLogout, root) {
				cl.postLogout = append(cl.postLogout, root)
			}
		}
	}
	return cl
}

// secretMatches compares digests so neither the content nor the length of
// the secret leaks through timing.
func (c *client) secretMatches(secret string) bool {
	if c.public {
		return false
	}
	d := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(d[:], c.secretDigest[:]) == 1
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return slices.Clone(c.redirectURIs) }
func (c *client) PostLogoutRedirectURIs() []string { return slices.Clone(c.postLogout) }

// ApplicationType: confidential clients are "web". Public clients are
// "user agent" rather than "native" because op lets native clients use a
// loopback redirect URI on any port, and we promise exact matching.
func (c *client) ApplicationType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}

// AuthMethod: client_secret_basic for confidential clients; op then also
// accepts the secret in the body (client_secret_post), as advertised.
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?id=" + url.QueryEscape(authRequestID)
}

// AccessTokenType: JWTs, so APIs can verify them against the JWKS.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c *client) IDTokenLifetime() time.Duration { return c.idTTL }

// DevMode lets a public client use an http redirect URI; op still requires
// it to match a registered one exactly.
func (c *client) DevMode() bool { return c.public }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed keeps "groups" and "roles" in the granted scopes when a
// client asks for them (op drops unknown scopes); the claims are emitted
// either way.
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == claimGroups || scope == claimRoles
}

// IDTokenUserinfoClaimsAssertion keeps the profile and email claims in
// the ID token even when an access token is issued: the Temporal UI reads
// email from the ID token. (fillUserinfo emits every claim whatever the
// scopes, so this states the intent rather than changing the output.)
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) ClockSkew() time.Duration { return 0 }
