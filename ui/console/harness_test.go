package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/ui/console"
	"github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"golang.org/x/net/html"
)

var tokens = map[string]string{
	"alice":  "tok-alice-console-0123456789",  // requester, growth
	"bob":    "tok-bob-console-0123456789",    // approver, growth
	"dave":   "tok-dave-console-0123456789",   // approver, risk
	"audrey": "tok-audrey-console-0123456789", // auditor
	"admin":  "tok-admin-console-0123456789",
}

// harness is the console in front of the real API, store, policy and an
// in-process Temporal server with modelplane's worker.
type harness struct {
	t      *testing.T
	kit    *testkit.Kit
	tc     client.Client
	url    string
	apiURL string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	kit := testkit.New(t, ":memory:")
	c := ts.GetDefaultClient()
	engine, err := policy.New("")
	if err != nil {
		t.Fatal(err)
	}
	kit.Activities.Temporal, kit.Activities.Policy = c, engine
	id, err := api.NewTokens([]api.Token{
		{Name: "alice", Role: api.RoleRequester, Secret: tokens["alice"], Teams: []string{"growth"}},
		{Name: "bob", Role: api.RoleApprover, Secret: tokens["bob"], Teams: []string{"growth"}},
		{Name: "dave", Role: api.RoleApprover, Secret: tokens["dave"], Teams: []string{"risk"}},
		{Name: "audrey", Role: api.RoleAuditor, Secret: tokens["audrey"]},
		{Name: "admin", Role: api.RoleAdmin, Secret: tokens["admin"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	kit.Activities.Directory = id.Lookup
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, kit.Activities) },
		sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.Interceptor()}})
	apiSrv := &api.Server{Store: kit.Store, Temporal: c, Auth: id, Policy: engine, Providers: kit.Activities.Providers, Sim: kit.Sim}
	con, err := console.New(console.Config{API: apiSrv.Handler(), Auth: id, Events: kit.Store, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiSrv.Handler())
	mux.Handle("/", con.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	kit.Seed(t, modelplane.RiskLow, "v1", "v2")
	kit.Serve(t, "v1", "")
	return &harness{t: t, kit: kit, tc: c, url: srv.URL, apiURL: srv.URL}
}

// browser is one person's cookie jar; it does not follow redirects, so
// tests see where the console sends them.
type browser struct {
	h    *harness
	c    *http.Client
	name string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a fetched response, parsed.
type page struct {
	status int
	loc    string
	body   string
	doc    *html.Node
	hdr    http.Header
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) page {
	b.h.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	rq, err := http.NewRequest(method, b.h.url+path, rd)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if form != nil {
		rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		rq.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(rq)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	p := page{status: res.StatusCode, loc: res.Header.Get("Location"), body: string(raw), hdr: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.h.t.Fatal(err)
		}
	}
	return p
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil) }

// signIn uses the token form, as a person holding an API token would.
func (b *browser) signIn(name string) {
	b.h.t.Helper()
	b.name = name
	p := b.get("/login")
	csrf := p.inputValue("csrf")
	if csrf == "" {
		b.h.t.Fatalf("login page has no csrf field:\n%s", p.body)
	}
	r := b.do(http.MethodPost, "/login", url.Values{"csrf": {csrf}, "token": {tokens[name]}})
	if r.status != http.StatusSeeOther || r.loc != "/inbox" {
		b.h.t.Fatalf("sign-in as %s: %d → %q\n%s", name, r.status, r.loc, r.body)
	}
}

// post submits a form the way the page offers it: the page's own CSRF token.
func (b *browser) post(from, action string, fields url.Values) page {
	b.h.t.Helper()
	p := b.get(from)
	if p.status != http.StatusOK {
		b.h.t.Fatalf("GET %s: %d\n%s", from, p.status, p.body)
	}
	f := p.form(action)
	if f == nil {
		b.h.t.Fatalf("%s has no form posting to %s:\n%s", from, action, p.body)
	}
	vals := url.Values{}
	for _, in := range findAll(f, "input") {
		if attr(in, "type") == "hidden" {
			vals.Set(attr(in, "name"), attr(in, "value"))
		}
	}
	for k, v := range fields {
		vals[k] = v
	}
	return b.do(http.MethodPost, action, vals, "Origin", b.h.url)
}

func (p page) form(action string) *html.Node {
	for _, f := range findAll(p.doc, "form") {
		if attr(f, "action") == action {
			return f
		}
	}
	return nil
}

func (p page) inputValue(name string) string {
	for _, in := range findAll(p.doc, "input") {
		if attr(in, "name") == name {
			return attr(in, "value")
		}
	}
	return ""
}

func (p page) text() string { return text(p.doc) }

func (p page) byID(id string) *html.Node {
	var found *html.Node
	walk(p.doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
		}
	})
	return found
}

func walk(n *html.Node, fn func(*html.Node)) {
	if n == nil {
		return
	}
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

func attr(n *html.Node, k string) string {
	for _, a := range n.Attr {
		if a.Key == k {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (h *harness) promotion(id string) modelplane.Promotion {
	p, err := h.kit.Store.GetPromotion(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}
