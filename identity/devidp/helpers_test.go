package devidp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/modelplane/modelplane/identity"
)

const (
	confID     = "temporal-ui"
	confSecret = "ui-secret-0123456789"
	pubID      = "console"
)

var testUsers = []User{
	{Name: "alice", Email: "alice@modelplane.dev", Password: "alice-pw-1", Teams: []string{"growth"}, Roles: []string{"requester"}},
	{Name: "bob", Email: "bob@modelplane.dev", Password: "bob-pw-2", Teams: []string{"growth"}, Roles: []string{"approver"}},
	{Name: "admin", Email: "admin@modelplane.dev", Password: "admin-pw-3", Roles: []string{"admin"}},
	{Name: "dave", Email: "dave@modelplane.dev", Password: "dave-pw-4", Teams: []string{"fraud"}, Roles: []string{"requester"}},
}

// sharedKeyFile spares most tests an RSA key generation, which dominates
// their run time under -race on a small machine.
var sharedKeyFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devidp-test-")
	if err != nil {
		panic(err)
	}
	sharedKeyFile = filepath.Join(dir, "key.pem")
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// env is one provider on a real listener plus the relying party's app,
// whose pages only say "ok": the tests read the code from the URL the
// browser ends on.
type env struct {
	p      *Provider
	issuer string
	app    *httptest.Server
	confCB string // confidential client's redirect URI
	pubCB  string // public client's redirect URI
}

// envOpt adjusts the config, or the provider before it serves anything.
type envOpt struct {
	cfg  func(*Config)
	prov func(*Provider)
}

func withConfig(f func(*Config)) envOpt { return envOpt{cfg: f} }

func withClock(c *fakeClock) envOpt {
	return envOpt{prov: func(p *Provider) { p.store.now = c.Now }}
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	idp := httptest.NewUnstartedServer(nil)
	e := &env{issuer: "http://" + idp.Listener.Addr().String(), app: app,
		confCB: app.URL + "/auth/sso/callback", pubCB: app.URL + "/console/callback"}
	cfg := Config{
		Issuer: e.issuer,
		Users:  testUsers,
		Clients: []Client{
			{ID: confID, Secret: confSecret, RedirectURIs: []string{e.confCB}},
			{ID: pubID, RedirectURIs: []string{e.pubCB}},
		},
		KeyFile: sharedKeyFile,
	}
	for _, o := range opts {
		if o.cfg != nil {
			o.cfg(&cfg)
		}
	}
	e.issuer = cfg.Issuer
	p, err := New(context.Background(), cfg)
	if err != nil {
		idp.Close()
		t.Fatalf("New: %v", err)
	}
	e.p = p
	for _, o := range opts {
		if o.prov != nil {
			o.prov(p)
		}
	}
	idp.Config.Handler = p
	idp.Start()
	t.Cleanup(idp.Close)
	return e
}

// fakeClock drives the storage's expiry in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// noFollow returns redirects to the caller instead of following them.
var noFollow = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (e *env) oauth(clientID, secret, redirect string, scopes ...string) *oauth2.Config {
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/oauth/token"},
	}
}

func (e *env) conf(scopes ...string) *oauth2.Config {
	return e.oauth(confID, confSecret, e.confCB, scopes...)
}

// page is what a test needs to know about a rendered HTML page.
type page struct {
	status        int
	url           *url.URL
	header        http.Header
	lang, h1      string
	style         string
	scripts       int
	alert         string
	text          string
	formMethod    string
	formAction    string
	hidden        url.Values
	button        string
	labels        map[string]string // label text → the id it points to
	inputs        map[string]map[string]string
	externalLinks int
}

func getPage(t *testing.T, c *http.Client, u string) *page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) *page {
	t.Helper()
	defer resp.Body.Close()
	doc, err := html.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", resp.Request.URL, err)
	}
	p := &page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header,
		hidden: url.Values{}, labels: map[string]string{}, inputs: map[string]map[string]string{}}
	var text strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
		}
		if n.Type == html.ElementNode {
			a := attrs(n)
			switch n.Data {
			case "html":
				p.lang = a["lang"]
			case "h1":
				p.h1 = textOf(n)
			case "style":
				p.style = textOf(n)
			case "script":
				p.scripts++
			case "link", "img", "iframe":
				p.externalLinks++
			case "form":
				p.formMethod, p.formAction = a["method"], a["action"]
			case "label":
				p.labels[strings.TrimSpace(textOf(n))] = a["for"]
			case "button":
				p.button = strings.TrimSpace(textOf(n))
			case "input":
				if a["type"] == "hidden" {
					p.hidden.Set(a["name"], a["value"])
				} else {
					p.inputs[a["id"]] = a
				}
			}
			if a["role"] == "alert" {
				p.alert = strings.TrimSpace(textOf(n))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	p.text = strings.Join(strings.Fields(text.String()), " ")
	return p
}

func attrs(n *html.Node) map[string]string {
	m := map[string]string{}
	for _, a := range n.Attr {
		m[a.Key] = a.Val
	}
	return m
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

// fill sets the inputs the labelled "Username" and "Password" fields
// name, as a person (or the browser test) finds them by label.
func (p *page) fill(t *testing.T, user, pass string) url.Values {
	t.Helper()
	v := url.Values{}
	for k, vs := range p.hidden {
		v[k] = append([]string(nil), vs...)
	}
	for label, val := range map[string]string{"Username": user, "Password": pass} {
		in, ok := p.inputs[p.labels[label]]
		if !ok {
			t.Fatalf("no input labelled %q on %s (labels %v)", label, p.url, p.labels)
		}
		v.Set(in["name"], val)
	}
	return v
}

func post(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return resp
}

// startLogin follows /authorize to the login page and checks it is one.
func (e *env) startLogin(t *testing.T, c *http.Client, authURL string) *page {
	t.Helper()
	p := getPage(t, c, authURL)
	if p.status != http.StatusOK || !strings.HasSuffix(p.url.Path, loginPath) || p.hidden.Get("id") == "" {
		t.Fatalf("GET authorize ended at %s with %d, want the login page; text: %.300s", p.url, p.status, p.text)
	}
	return p
}

// signIn posts the credentials and follows the redirects; it returns the
// URL the browser ends on.
func (e *env) signIn(t *testing.T, c *http.Client, p *page, user, pass string) *url.URL {
	t.Helper()
	resp := post(t, c, p.formAction, p.fill(t, user, pass))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Request.URL
}

// login runs /authorize → login page → sign in → callback with PKCE and
// returns the code and its verifier.
func (e *env) login(t *testing.T, cfg *oauth2.Config, user, pass string, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	return e.loginNoPKCE(t, cfg, user, pass, append(opts, oauth2.S256ChallengeOption(verifier))...), verifier
}

// loginNoPKCE is login as a confidential client like the Temporal UI's
// ui-server does it: state and nonce, no code_challenge.
func (e *env) loginNoPKCE(t *testing.T, cfg *oauth2.Config, user, pass string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	c := browser(t)
	p := e.startLogin(t, c, cfg.AuthCodeURL("state-xyz", opts...))
	end := e.signIn(t, c, p, user, pass)
	q := end.Query()
	if !strings.HasPrefix(end.String(), cfg.RedirectURL+"?") || q.Get("code") == "" || q.Get("state") != "state-xyz" {
		t.Fatalf("sign-in ended at %s, want %s with a code and the state", end, cfg.RedirectURL)
	}
	return q.Get("code")
}

func verifier(t *testing.T, issuer string, aud ...string) *identity.OIDC {
	t.Helper()
	v, err := identity.NewOIDC(context.Background(), identity.OIDCConfig{Issuer: issuer, Audience: aud})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return v
}

// oauthErrorCode is the OAuth error code of a failed token request.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}
