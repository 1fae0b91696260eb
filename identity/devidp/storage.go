package devidp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Claim names emitted besides the standard ones; identity's default claim
// mapping reads exactly these.
const (
	claimGroups = "groups"
	claimRoles  = "roles"
)

var (
	errNotFound      = errors.New("unknown or expired sign-in request")
	errCodeUsed      = errors.New("a code was already issued for this sign-in request")
	errUnknownClient = errors.New("unknown client")
)

// storage is op.Storage in memory. One mutex guards everything: a dev IdP
// sees a handful of requests. Values handed to op are copies, so op reads
// them without the lock while logins and sweeps change the originals.
type storage struct {
	issuer  string
	users   map[string]*User
	pwds    map[string][sha256.Size]byte // digests of the passwords
	clients map[string]*client
	key     *signingKey
	atTTL   time.Duration
	now     func() time.Time // replaced in tests

	mu        sync.Mutex
	authReqs  map[string]*authRequest
	codes     map[string]string // code → auth request id
	access    map[string]*tokenGrant
	refresh   map[string]*tokenGrant // keyed by the refresh token itself
	lastSweep time.Time
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func newStorage(issuer string, users map[string]*User, clients map[string]*client, key *signingKey, atTTL time.Duration) *storage {
	pwds := make(map[string][sha256.Size]byte, len(users))
	for name, u := range users {
		pwds[name] = sha256.Sum256([]byte(u.Password))
	}
	return &storage{
		issuer: issuer, users: users, pwds: pwds, clients: clients, key: key, atTTL: atTTL,
		now:      time.Now,
		authReqs: map[string]*authRequest{},
		codes:    map[string]string{},
		access:   map[string]*tokenGrant{},
		refresh:  map[string]*tokenGrant{},
	}
}

// authRequest is op.AuthRequest: one pass through /authorize, the login
// page and the callback, until its code is redeemed.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge
	prompt                                  []string
	expires                                 time.Time

	subject  string // set by the login page
	authTime time.Time
	done     bool
	code     bool // a code was issued; there is only ever one
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.prompt = slices.Clone(a.prompt)
	return &c
}

// tokenGrant records an issued access or refresh token: what userinfo,
// introspection, refresh and revocation need to know about it. It is also
// op.RefreshTokenRequest.
type tokenGrant struct {
	id, clientID, subject string
	scopes, audience      []string
	authTime, expires     time.Time
}

func (g *tokenGrant) GetAMR() []string            { return []string{"pwd"} }
func (g *tokenGrant) GetAudience() []string       { return g.audience }
func (g *tokenGrant) GetAuthTime() time.Time      { return g.authTime }
func (g *tokenGrant) GetClientID() string         { return g.clientID }
func (g *tokenGrant) GetScopes() []string         { return g.scopes }
func (g *tokenGrant) GetSubject() string          { return g.subject }
func (g *tokenGrant) SetCurrentScopes(s []string) { g.scopes = s }

func (g *tokenGrant) clone() *tokenGrant {
	c := *g
	c.scopes = slices.Clone(g.scopes)
	c.audience = slices.Clone(g.audience)
	return &c
}

// randomID returns 256 random bits, URL-safe: ids, codes and tokens must
// be unguessable because holding one is all it takes to use it.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CreateAuthRequest stores a validated /authorize request. op has checked
// the client, the exact redirect URI and the response type; PKCE policy is
// ours: S256 only, and mandatory for public clients.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	cl, ok := s.clients[req.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithParent(errUnknownClient)
	}
	var challenge *oidc.CodeChallenge
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "":
		challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
	case cl.public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	}
	now := s.now()
	a := &authRequest{
		id: randomID(), clientID: req.ClientID, redirectURI: req.RedirectURI,
		state: req.State, nonce: req.Nonce, scopes: slices.Clone(req.Scopes),
		responseType: req.ResponseType, responseMode: req.ResponseMode,
		challenge: challenge, prompt: slices.Clone(req.Prompt),
		expires: now.Add(loginLifetime),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	s.authReqs[a.id] = a
	return a.clone(), nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	a, err := s.authRequest(id)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// authRequest returns a copy of a live auth request.
func (s *storage) authRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || !s.now().Before(a.expires) {
		return nil, errNotFound
	}
	return a.clone(), nil
}

// AuthRequestByCode redeems a code: the code and its auth request are
// removed in the same critical section, so a code works at most once even
// when two exchanges race, and a failed exchange burns it too.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errors.New("unknown, expired or already used code")
	}
	delete(s.codes, code)
	a, ok := s.authReqs[id]
	delete(s.authReqs, id)
	if !ok || !a.done || !s.now().Before(a.expires) {
		return nil, errors.New("unknown, expired or already used code")
	}
	return a.clone(), nil
}

// SaveAuthCode records the code op made for a signed-in request. A second
// code for the same request (a replayed callback) is refused.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	switch {
	case !ok || !s.now().Before(a.expires):
		return oidc.ErrInvalidRequest().WithDescription("%s", errNotFound.Error())
	case !a.done:
		return oidc.ErrInteractionRequired().WithDescription("not signed in")
	case a.code:
		return oidc.ErrInvalidRequest().WithDescription("%s", errCodeUsed.Error())
	}
	a.code = true
	a.expires = s.now().Add(codeLifetime)
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest is idempotent: redeeming the code already removed it.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authReqs, id)
	return nil
}

// completeLogin marks the auth request as signed in by user. It refuses a
// request that is already done, so a second form post cannot swap users.
func (s *storage) completeLogin(id, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	switch {
	case !ok || !s.now().Before(a.expires):
		return errNotFound
	case a.done:
		return errCodeUsed
	}
	a.subject, a.authTime, a.done = user, s.now(), true
	return nil
}

// checkPassword compares digests in constant time, and does the same work
// for unknown users, so neither names nor passwords leak through timing.
func (s *storage) checkPassword(name, password string) bool {
	want, known := s.pwds[name]
	got := sha256.Sum256([]byte(password))
	eq := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	return known && eq
}

// grantFrom extracts what a token records from any request op passes.
func (s *storage) grantFrom(req op.TokenRequest, ttl time.Duration) *tokenGrant {
	g := &tokenGrant{
		id: randomID(), subject: req.GetSubject(),
		scopes: slices.Clone(req.GetScopes()), audience: slices.Clone(req.GetAudience()),
		expires: s.now().Add(ttl),
	}
	if r, ok := req.(interface{ GetClientID() string }); ok {
		g.clientID = r.GetClientID()
	}
	if r, ok := req.(interface{ GetAuthTime() time.Time }); ok {
		g.authTime = r.GetAuthTime()
	}
	return g
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	g := s.grantFrom(req, s.atTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	s.access[g.id] = g
	return g.id, g.expires, nil
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh
// token; when refreshing, the presented token is rotated out atomically so
// it cannot be used twice.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	at := s.grantFrom(req, s.atTTL)
	rt := s.grantFrom(req, refreshLifetime) // its id is the token
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		old, ok := s.refresh[current]
		if !ok || old.clientID != at.clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked")
		}
		delete(s.refresh, current)
	}
	s.sweepLocked(s.now())
	s.access[at.id] = at
	s.refresh[rt.id] = rt
	return at.id, rt.id, at.expires, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok || !s.now().Before(g.expires) || s.users[g.subject] == nil {
		return nil, op.ErrInvalidRefreshToken
	}
	return g.clone(), nil
}

// TerminateSession (end_session) revokes the user's tokens for the client;
// there is no browser session to end because every sign-in asks again.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]*tokenGrant{s.access, s.refresh} {
		for k, g := range m {
			if g.subject == userID && g.clientID == clientID {
				delete(m, k)
			}
		}
	}
	return nil
}

// RevokeToken removes an access token (by id) or a refresh token. Unknown
// tokens succeed, as RFC 7009 asks; another client's token is refused.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]*tokenGrant{s.access, s.refresh} {
		if g, ok := m[tokenOrID]; ok {
			if g.clientID != clientID {
				return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
			}
			delete(m, tokenOrID)
		}
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok || g.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.subject, token, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errUnknownClient
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if c, ok := s.clients[id]; ok && c.secretMatches(secret) {
		return nil
	}
	return errors.New("invalid client_id or client_secret")
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's identity claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	return s.fillUserinfo(info, req.GetSubject())
}

// SetUserinfoFromToken answers /userinfo for a live access token (op has
// verified its signature already).
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	if _, err := s.liveAccess(tokenID, subject); err != nil {
		return err
	}
	return s.fillUserinfo(info, subject)
}

// SetIntrospectionFromToken answers only the client the token was issued
// to, so one client cannot inspect another's tokens.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	g, err := s.liveAccess(tokenID, subject)
	if err != nil {
		return err
	}
	if !slices.Contains(g.audience, clientID) {
		return errors.New("token was not issued to this client")
	}
	info := new(oidc.UserInfo)
	if err := s.fillUserinfo(info, subject); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = g.scopes
	resp.ClientID = g.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(g.expires)
	resp.AuthTime = oidc.FromTime(g.authTime)
	resp.Audience = g.audience
	resp.Issuer = s.issuer
	resp.JWTID = g.id
	return nil
}

func (s *storage) liveAccess(tokenID, subject string) (*tokenGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.access[tokenID]
	if !ok || g.subject != subject || !s.now().Before(g.expires) {
		return nil, errors.New("access token unknown, expired or revoked")
	}
	return g.clone(), nil
}

// GetPrivateClaimsFromScopes adds the identity claims to JWT access
// tokens, so an API verifying them needs no userinfo call.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	var info oidc.UserInfo
	if err := s.fillUserinfo(&info, userID); err != nil {
		return nil, err
	}
	claims := map[string]any{
		"preferred_username": info.PreferredUsername,
		"name":               info.Name,
	}
	if info.Email != "" {
		claims["email"], claims["email_verified"] = info.Email, true
	}
	for k, v := range info.Claims {
		claims[k] = v
	}
	return claims, nil
}

// fillUserinfo sets every identity claim regardless of scope: dev clients
// should not have to know which scope carries which claim.
func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string) error {
	u, ok := s.users[subject]
	if !ok {
		return errors.New("unknown user")
	}
	info.Subject = u.Name
	info.PreferredUsername = u.Name
	info.Name = u.Name
	if u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = true
	}
	info.AppendClaims(claimGroups, nonNil(u.Teams))
	info.AppendClaims(claimRoles, nonNil(u.Roles))
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// JWT profile grants (private_key_jwt) are not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// sweepLocked drops expired auth requests, codes and tokens, at most once
// per sweepInterval; it runs on writes, so memory stays bounded without a
// background goroutine to stop.
func (s *storage) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepInterval {
		return
	}
	s.lastSweep = now
	for id, a := range s.authReqs {
		if !now.Before(a.expires) {
			delete(s.authReqs, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.authReqs[id]; !ok {
			delete(s.codes, code)
		}
	}
	for _, m := range []map[string]*tokenGrant{s.access, s.refresh} {
		for k, g := range m {
			if !now.Before(g.expires) {
				delete(m, k)
			}
		}
	}
}
