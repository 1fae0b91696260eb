// Package console is modelplane's own web console: an approvals inbox, live
// promotions, deployments, models, provenance and the audit trail, served
// as html/template pages from the binary itself.
//
// The console holds no business logic. Every read and every action is a
// call to modelplane's API, made in-process with the signed-in person's own
// token, so the same policy decision and audit record apply as for curl or
// the CLI, and a denied action shows the policy's reason.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
)

//go:embed templates static
var assets embed.FS

// Config wires the console to the API it fronts.
type Config struct {
	// API is modelplane's API handler; the console calls it in-process.
	API http.Handler
	// Auth verifies the token held by a session (the API's own chain).
	Auth identity.Authenticator
	// Events is where the live stream reads the audit trail's new records.
	Events EventSource
	// OIDC, if set, signs people in with the authorization-code flow;
	// otherwise the sign-in page takes an API token.
	OIDC *OIDC
	// SessionKey encrypts and signs session cookies (32 bytes). Empty: a
	// random key, so sessions end when the process does.
	SessionKey []byte
	// PublicURL is where browsers reach the console (cookies are Secure
	// when it is https).
	PublicURL string
	// TemporalUIURL, if set, is linked from each promotion.
	TemporalUIURL string
	Logger        *slog.Logger
	// Poll is how often the live stream checks for new records (default 200ms).
	Poll time.Duration
}

// OIDC is the console's sign-in client.
type OIDC struct {
	Issuer, ClientID, ClientSecret string
}

// Console serves the pages.
type Console struct {
	cfg     Config
	api     http.Handler
	auth    identity.Authenticator
	seal    *sealer
	secure  bool
	pages   map[string]*template.Template
	static  http.Handler
	hub     *hub
	log     *slog.Logger
	oidcMu  sync.Mutex
	oidcEps *endpoints
	mux     *http.ServeMux
}

// New builds the console; Close stops its live stream.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Auth == nil {
		return nil, errors.New("console: API and Auth are required")
	}
	key := cfg.SessionKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://127.0.0.1:8080"
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(assets, "static")
	c := &Console{cfg: cfg, api: cfg.API, auth: cfg.Auth, seal: seal, secure: strings.HasPrefix(cfg.PublicURL, "https://"),
		pages: pages, static: http.StripPrefix("/static/", http.FileServerFS(static)), log: cfg.Logger}
	if cfg.Events != nil {
		c.hub = newHub(cfg.Events, cfg.Poll, cfg.Logger)
	}
	c.mux = c.routes()
	return c, nil
}

// Close stops the live stream's poller.
func (c *Console) Close() {
	if c.hub != nil {
		c.hub.close()
	}
}

// Handler serves every console path; mount it at "/" beside the API's /v1.
func (c *Console) Handler() http.Handler { return c }

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere: the CSP allows only our own files.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /static/", c.static)
	m.HandleFunc("GET /login", c.login)
	m.HandleFunc("POST /login", c.loginToken)
	m.HandleFunc("GET /auth/callback", c.callback)
	m.HandleFunc("POST /logout", c.logout)
	m.HandleFunc("GET /{$}", c.page(func(r *req) error { return r.redirect("/inbox") }))
	m.HandleFunc("GET /inbox", c.page((*req).inbox))
	m.HandleFunc("GET /promotions", c.page((*req).promotions))
	m.HandleFunc("POST /promotions", c.action((*req).startPromotion))
	m.HandleFunc("GET /promotions/{id}", c.page((*req).promotion))
	m.HandleFunc("POST /promotions/{id}/approvals", c.action((*req).approve))
	m.HandleFunc("POST /promotions/{id}/rollback", c.action((*req).rollback))
	m.HandleFunc("POST /promotions/{id}/decision", c.action((*req).decide))
	m.HandleFunc("GET /deployments", c.page((*req).deployments))
	m.HandleFunc("GET /deployments/{target}/{model}", c.page((*req).deployment))
	m.HandleFunc("POST /deployments/rollback", c.action((*req).rollbackDeployment))
	m.HandleFunc("GET /models", c.page((*req).models))
	m.HandleFunc("POST /models", c.action((*req).createModel))
	m.HandleFunc("GET /models/{name}", c.page((*req).model))
	m.HandleFunc("POST /models/{name}/versions", c.action((*req).createVersion))
	m.HandleFunc("POST /drift", c.action((*req).reportDrift))
	m.HandleFunc("GET /models/{name}/versions/{version}/provenance", c.page((*req).provenance))
	m.HandleFunc("GET /audit", c.page((*req).audit))
	m.HandleFunc("GET /audit/verify", c.page((*req).verify))
	m.HandleFunc("GET /audit/export", c.page((*req).export))
	m.HandleFunc("GET /scorecard", c.page((*req).scorecard))
	m.HandleFunc("GET /mcp", c.page((*req).mcp))
	m.HandleFunc("GET /events", c.page((*req).events))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	return m
}

// req is one signed-in request: the page handlers' receiver.
type req struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	sess *session
	who  modelplane.Principal
}

func (r *req) ctx() context.Context { return r.r.Context() }

func (r *req) redirect(to string) error {
	http.Redirect(r.w, r.r, to, http.StatusSeeOther)
	return nil
}

// page wraps a GET handler: no session sends the browser to sign in.
func (c *Console) page(fn func(*req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, ok := c.signedIn(w, r)
		if !ok {
			if r.URL.Path == "/events" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := fn(rq); err != nil {
			c.fail(rq, err)
		}
	}
}

// action wraps a POST handler: a session and its CSRF token are required.
func (c *Console) action(fn func(*req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq, ok := c.signedIn(w, r)
		if !ok {
			c.renderError(w, r, nil, http.StatusUnauthorized, "Signed out", "Your session has ended; sign in again and repeat the action.")
			return
		}
		if err := c.checkCSRF(rq); err != nil {
			c.renderError(w, r, rq, http.StatusForbidden, "Refused", err.Error())
			return
		}
		if err := fn(rq); err != nil {
			c.fail(rq, err)
		}
	}
}

// fail renders an error page; an API error keeps its status and message
// (a policy denial's message is the policy's reason).
func (c *Console) fail(r *req, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		title := map[int]string{400: "Invalid request", 401: "Signed out", 403: "Denied by policy", 404: "Not found", 409: "Conflict"}[ae.Status]
		if title == "" {
			title = "Error"
		}
		msg := ae.Message
		if ae.Field != "" {
			msg = ae.Field + ": " + msg
		}
		c.renderError(r.w, r.r, r, ae.Status, title, msg)
		return
	}
	c.log.Error("console", "path", r.r.URL.Path, "error", err)
	c.renderError(r.w, r.r, r, http.StatusInternalServerError, "Error", "Something went wrong; the server log has the details.")
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, rq *req, status int, title, msg string) {
	d := &view{Title: title, Error: msg}
	if rq != nil {
		d.fill(rq)
	}
	c.render(w, r, status, "error", d)
}

// view is what every page template receives.
type view struct {
	Title   string
	Nav     string
	User    *modelplane.Principal
	CSRF    string
	Error   string
	Notice  string
	Live    string // what the live stream refreshes this page for: "*" or a promotion id
	Seq     int64  // the audit seq the page was read at: the stream resumes from it
	Data    any
	UIURL   string
	Partial bool
}

func (v *view) fill(r *req) {
	v.User, v.CSRF, v.UIURL = &r.who, r.sess.CSRF, r.c.cfg.TemporalUIURL
	if v.Notice == "" {
		v.Notice = r.r.URL.Query().Get("notice")
	}
}

// show renders a page for a signed-in request.
func (r *req) show(name string, v *view) error {
	v.fill(r)
	r.c.render(r.w, r.r, http.StatusOK, name, v)
	return nil
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t := c.pages[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	// The live script asks for the main element alone when it refreshes.
	v.Partial = r.Header.Get("X-Console-Partial") == "1"
	if v.Live != "" && c.hub != nil {
		v.Seq = c.hub.current()
	}
	root := "layout"
	if v.Partial {
		root = "main"
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, root, v); err != nil {
		c.log.Error("console template", "page", name, "error", err)
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		out[name] = t
	}
	return out, nil
}
