package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// login is where a sealed login cookie carries the flow's state, PKCE
// verifier and the page to return to.
type login struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Next     string `json:"n"`
}

type endpoints struct{ Authorization, Token string }

// localPath keeps a return address on this console (no open redirect).
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.HasPrefix(p, "/login") {
		return "/inbox"
	}
	return p
}

func (c *Console) oauth(ctx context.Context) (*oauth2.Config, error) {
	c.oidcMu.Lock()
	defer c.oidcMu.Unlock()
	if c.oidcEps == nil {
		ep, err := discover(ctx, c.cfg.OIDC.Issuer)
		if err != nil {
			return nil, err
		}
		c.oidcEps = ep
	}
	ep := oauth2.Endpoint{AuthURL: c.oidcEps.Authorization, TokenURL: c.oidcEps.Token}
	if c.cfg.OIDC.ClientSecret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams // a public client: its id in the form, PKCE as proof
	}
	return &oauth2.Config{ClientID: c.cfg.OIDC.ClientID, ClientSecret: c.cfg.OIDC.ClientSecret,
		Endpoint:    ep,
		RedirectURL: c.cfg.PublicURL + "/auth/callback", Scopes: []string{"openid", "profile", "email"}}, nil
}

func discover(ctx context.Context, issuer string) (*endpoints, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		return nil, fmt.Errorf("sign-in provider unreachable: %w", err)
	}
	defer res.Body.Close()
	var d struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&d) != nil || d.Authorization == "" || d.Token == "" {
		return nil, fmt.Errorf("sign-in provider %s: no usable discovery document (HTTP %d)", issuer, res.StatusCode)
	}
	return &endpoints{Authorization: d.Authorization, Token: d.Token}, nil
}

type loginView struct {
	OIDC bool
	Next string
}

// login starts the authorization-code flow (with PKCE), or shows the
// token form when no provider is configured.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if msg := r.URL.Query().Get("error"); msg != "" || r.URL.Query().Get("signed_out") != "" {
		c.showLogin(w, r, next, msg, http.StatusOK)
		return
	}
	if c.cfg.OIDC == nil {
		c.showLogin(w, r, next, "", http.StatusOK)
		return
	}
	cfg, err := c.oauth(r.Context())
	if err != nil {
		c.showLogin(w, r, next, err.Error(), http.StatusBadGateway)
		return
	}
	l := login{State: randomToken(), Verifier: oauth2.GenerateVerifier(), Next: next}
	v, err := c.seal.seal(loginCookie, l)
	if err != nil {
		c.showLogin(w, r, next, err.Error(), http.StatusInternalServerError)
		return
	}
	c.setCookie(w, loginCookie, v, "/", time.Now().Add(10*time.Minute))
	http.Redirect(w, r, cfg.AuthCodeURL(l.State, oauth2.S256ChallengeOption(l.Verifier)), http.StatusFound)
}

// showLogin renders the sign-in page; its form's CSRF token lives in the
// sealed login cookie, since there is no session yet.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, next, msg string, status int) {
	l := login{State: randomToken(), Next: next}
	v, err := c.seal.seal(loginCookie, l)
	if err == nil {
		c.setCookie(w, loginCookie, v, "/", time.Now().Add(30*time.Minute))
	}
	c.render(w, r, status, "login", &view{Title: "Sign in", Error: msg, CSRF: l.State, Data: loginView{OIDC: c.cfg.OIDC != nil, Next: next}})
}

func (c *Console) readLogin(r *http.Request) (login, error) {
	var l login
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		return l, errors.New("the sign-in took too long or cookies are blocked; try again")
	}
	if err := c.seal.open(loginCookie, ck.Value, &l); err != nil {
		return l, errors.New("the sign-in could not be verified; try again")
	}
	return l, nil
}

// loginToken signs in with an API token (when no provider is configured,
// or for people who hold a token rather than an account).
func (c *Console) loginToken(w http.ResponseWriter, r *http.Request) {
	l, err := c.readLogin(r)
	if err != nil {
		c.showLogin(w, r, "/inbox", err.Error(), http.StatusForbidden)
		return
	}
	_ = r.ParseForm()
	if f := r.PostForm.Get("csrf"); f == "" || f != l.State {
		c.showLogin(w, r, l.Next, "the form's security token is missing or stale; try again", http.StatusForbidden)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if tok == "" {
		c.showLogin(w, r, l.Next, "token: enter the API token you were given", http.StatusBadRequest)
		return
	}
	if err := c.startSession(w, r, tok); err != nil {
		c.showLogin(w, r, l.Next, "token: not accepted ("+err.Error()+")", http.StatusUnauthorized)
		return
	}
	c.clearCookie(w, loginCookie, "/")
	http.Redirect(w, r, localPath(l.Next), http.StatusSeeOther)
}

// callback finishes the code flow: the state must match the one this
// browser started with, and the ID token must be one the API accepts.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	l, err := c.readLogin(r)
	if err != nil {
		c.showLogin(w, r, "/inbox", err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		c.showLogin(w, r, l.Next, "the sign-in provider refused: "+e+" "+q.Get("error_description"), http.StatusUnauthorized)
		return
	}
	if q.Get("state") == "" || q.Get("state") != l.State || l.Verifier == "" {
		c.showLogin(w, r, l.Next, "the sign-in response does not match this browser's request; try again", http.StatusBadRequest)
		return
	}
	cfg, err := c.oauth(r.Context())
	if err != nil {
		c.showLogin(w, r, l.Next, err.Error(), http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(l.Verifier))
	if err != nil {
		c.showLogin(w, r, l.Next, "the sign-in code could not be exchanged; try again", http.StatusBadGateway)
		return
	}
	id, _ := tok.Extra("id_token").(string)
	if id == "" {
		c.showLogin(w, r, l.Next, "the sign-in provider returned no ID token", http.StatusBadGateway)
		return
	}
	if err := c.startSession(w, r, id); err != nil {
		c.showLogin(w, r, l.Next, "signed in at the provider, but modelplane does not accept the identity: "+err.Error(), http.StatusForbidden)
		return
	}
	c.clearCookie(w, loginCookie, "/")
	http.Redirect(w, r, localPath(l.Next), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if rq, ok := c.signedIn(w, r); ok {
		if err := c.checkCSRF(rq); err != nil {
			c.renderError(w, r, rq, http.StatusForbidden, "Refused", err.Error())
			return
		}
	}
	c.clearCookie(w, sessionCookie, "/")
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}
