package devidp

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// bindCookie ties the login form to the browser that loaded it: the CSRF
// token is an HMAC over the auth request id and this cookie's random
// value, so a token copied to another browser, or a form posted from
// another site (SameSite=Lax keeps the cookie off cross-site POSTs), fails.
const bindCookie = "devidp_login"

const maxForm = 16 << 10 // a login form is a few hundred bytes

// loginPage serves the sign-in form that op redirects to with the auth
// request id, and completes the auth request when the password is right.
type loginPage struct {
	store      *storage
	op         *op.Provider
	issuer     string
	action     string // form target: issuer + loginPath
	cookiePath string
	issOrigin  string
	users      []string // names shown as a hint; passwords are not
	key        []byte   // per-process HMAC key for CSRF tokens
}

func newLoginPage(store *storage, provider *op.Provider, issuer, base string) (*loginPage, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	users := make([]string, 0, len(store.users))
	for name := range store.users {
		users = append(users, name)
	}
	slices.Sort(users)
	return &loginPage{
		store: store, op: provider, issuer: issuer,
		action:     issuer + loginPath,
		cookiePath: base + loginPath,
		issOrigin:  u.Scheme + "://" + u.Host,
		users:      users,
		key:        key,
	}, nil
}

// pageData is what the template renders; html/template escapes it all.
type pageData struct {
	Client, ID, CSRF, Action, Username, Error string
	Users                                     []string
	SignedOut                                 bool
}

func (l *loginPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		l.show(w, r)
	case http.MethodPost:
		l.submit(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (l *loginPage) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	req, err := l.store.authRequest(id)
	if err != nil {
		l.render(w, http.StatusBadRequest, "", pageData{Error: expiredMsg})
		return
	}
	// prompt=none asks for no UI; there is no session to reuse, so answer
	// the client with login_required instead of showing the form.
	if slices.Contains(req.prompt, oidc.PromptNone) {
		op.AuthRequestError(w, r, req, oidc.ErrLoginRequired(), l.op)
		return
	}
	l.renderForm(w, r, http.StatusOK, req, "", "")
}

const (
	expiredMsg  = "This sign-in request is unknown or has expired. Go back to the application and sign in again."
	wrongMsg    = "Wrong username or password."
	staleMsg    = "This sign-in form has expired or was not sent by this page. Please sign in again."
	signedInMsg = "This sign-in request is already complete."
)

func (l *loginPage) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		l.render(w, http.StatusBadRequest, "", pageData{Error: "The form could not be read."})
		return
	}
	id := r.PostForm.Get("id")
	req, err := l.store.authRequest(id)
	if err != nil {
		l.render(w, http.StatusBadRequest, "", pageData{Error: expiredMsg})
		return
	}
	if !l.validCSRF(r, id, r.PostForm.Get("csrf")) {
		l.renderForm(w, r, http.StatusForbidden, req, "", staleMsg)
		return
	}
	name := r.PostForm.Get("username")
	if !l.store.checkPassword(name, r.PostForm.Get("password")) {
		// The typed name is not logged: people type passwords into it.
		slog.InfoContext(r.Context(), "devidp: sign-in refused: wrong username or password", slog.String("client", req.clientID))
		l.renderForm(w, r, http.StatusUnauthorized, req, name, wrongMsg)
		return
	}
	if err := l.store.completeLogin(id, name); err != nil {
		msg := expiredMsg
		if errors.Is(err, errCodeUsed) {
			msg = signedInMsg
		}
		l.render(w, http.StatusBadRequest, "", pageData{Error: msg})
		return
	}
	// 303 turns the POST into a GET of op's callback, which issues the code
	// and redirects to the client.
	http.Redirect(w, r, op.AuthCallbackURL(l.op)(r.Context(), id), http.StatusSeeOther)
}

// renderForm shows the form for req with a CSRF token bound to this
// browser's cookie, setting the cookie first if the browser has none.
func (l *loginPage) renderForm(w http.ResponseWriter, r *http.Request, status int, req *authRequest, username, msg string) {
	bind := ""
	if c, err := r.Cookie(bindCookie); err == nil && len(c.Value) == 43 {
		bind = c.Value
	} else {
		bind = randomID()
		http.SetCookie(w, &http.Cookie{
			Name: bindCookie, Value: bind, Path: l.cookiePath,
			HttpOnly: true, SameSite: http.SameSiteLaxMode,
			Secure: strings.HasPrefix(l.issuer, "https://"),
		})
	}
	// The form posts here; after the redirect chain the browser lands on
	// the client's redirect URI. Browsers apply form-action to those
	// redirects too, so the client's origin must be allowed as well.
	extra := ""
	if u, err := url.Parse(req.redirectURI); err == nil {
		extra = u.Scheme + "://" + u.Host
	}
	l.render(w, status, extra, pageData{
		Client: req.clientID, ID: req.id, CSRF: l.csrfToken(req.id, bind),
		Action: l.action, Username: username, Error: msg, Users: l.users,
	})
}

func (l *loginPage) csrfToken(id, bind string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("devidp login\x00" + id + "\x00" + bind))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (l *loginPage) validCSRF(r *http.Request, id, token string) bool {
	c, err := r.Cookie(bindCookie)
	if err != nil || c.Value == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(l.csrfToken(id, c.Value)))
}

// serveLoggedOut is where end_session lands when the client names no
// post_logout_redirect_uri.
func (l *loginPage) serveLoggedOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	l.render(w, http.StatusOK, "", pageData{SignedOut: true})
}

// render writes a page with headers that keep it from being framed,
// cached, sniffed or leaking the auth request id through Referer; the CSP
// allows only our inline style (by hash) and form posts to ourselves.
func (l *loginPage) render(w http.ResponseWriter, status int, formTarget string, d pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	formAction := "'self' " + l.issOrigin
	if formTarget != "" && formTarget != l.issOrigin {
		formAction += " " + formTarget
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src '"+styleHash+"'; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// pageCSS is the page's only styling, inline so the page needs no other
// request; its hash goes into the CSP.
const pageCSS = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}
main{max-width:26rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.5rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-top:1rem}
input{box-sizing:border-box;width:100%;padding:.5rem;margin-top:.25rem;font:inherit;border:1px solid #6b7280;border-radius:4px}
input:focus,button:focus{outline:3px solid #2563eb;outline-offset:2px}
button{margin-top:1.5rem;width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;background:#1d4ed8;border:0;border-radius:4px;cursor:pointer}
.error{color:#991b1b;background:#fef2f2;border:1px solid #991b1b;border-radius:4px;padding:.5rem .75rem}
.note{font-size:.9rem;color:#374151}
code{font-size:.9em}
`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var pageTmpl = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{if .SignedOut}}Signed out{{else}}Sign in{{end}} · modelplane development</title>
<style>` + pageCSS + `</style>
</head>
<body>
<main>
{{if .SignedOut -}}
<h1>Signed out</h1>
<p>You are signed out of the modelplane development sign-in. You can close this page.</p>
{{- else -}}
<h1>Sign in to modelplane</h1>
<p class="note">This is the modelplane <strong>development</strong> sign-in. The dev passwords are printed by <code>modelplane dev</code> and kept in <code>.modelplane/passwords</code>.</p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
{{if .ID -}}
{{if .Client}}<p class="note">Signing in to <strong>{{.Client}}</strong>.</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="{{.Username}}"{{if .Error}} aria-describedby="error"{{end}}{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{{if .Error}} aria-describedby="error"{{end}}{{if .Username}} autofocus{{end}}>
<button type="submit">Sign in</button>
</form>
{{if .Users}}<p class="note">Development users: {{range $i, $u := .Users}}{{if $i}}, {{end}}<code>{{$u}}</code>{{end}}.</p>{{end}}
{{- end}}
{{- end}}
</main>
</body>
</html>
`))
