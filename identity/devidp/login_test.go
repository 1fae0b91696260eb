package devidp

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func (e *env) authURL() string {
	return e.conf().AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
}

// callbackResult asks op's callback for the request's code directly, the
// way the browser would after a successful sign-in, and returns where it
// sends the browser.
func (e *env) callbackResult(t *testing.T, id string) url.Values {
	t.Helper()
	resp, err := noFollow.Get(e.issuer + "/authorize/callback?id=" + url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// TestLoginPage checks what the browser test and screen readers rely on:
// labelled inputs with fixed ids, a "Sign in" button, lang, a heading, the
// dev hint, no scripts or external assets, and a strict CSP whose style
// hash matches the page's only style.
func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	p := e.startLogin(t, browser(t), e.authURL())

	if p.lang != "en" || p.h1 != "Sign in to modelplane" || p.button != "Sign in" {
		t.Fatalf("lang %q, h1 %q, button %q", p.lang, p.h1, p.button)
	}
	if p.labels["Username"] != "username" || p.labels["Password"] != "password" {
		t.Fatalf("labels: %v", p.labels)
	}
	if p.inputs["username"]["name"] != "username" || p.inputs["password"]["type"] != "password" ||
		p.inputs["password"]["autocomplete"] != "current-password" {
		t.Fatalf("inputs: %v", p.inputs)
	}
	if p.formMethod != "post" || p.formAction != e.issuer+loginPath || p.hidden.Get("csrf") == "" {
		t.Fatalf("form: method %q action %q hidden %v", p.formMethod, p.formAction, p.hidden)
	}
	for _, want := range []string{"development", "modelplane dev", ".modelplane/passwords", "temporal-ui"} {
		if !strings.Contains(p.text, want) {
			t.Errorf("page text lacks %q: %s", want, p.text)
		}
	}
	if p.scripts != 0 || p.externalLinks != 0 {
		t.Errorf("page has %d scripts and %d external resources", p.scripts, p.externalLinks)
	}

	csp := p.header.Get("Content-Security-Policy")
	sum := sha256.Sum256([]byte(p.style))
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'",
		"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'", e.app.URL} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows more than it should", csp)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	bad := getPage(t, http.DefaultClient, e.issuer+loginPath+"?id=made-up")
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.alert, "unknown or has expired") || bad.formAction != "" {
		t.Fatalf("unknown auth request: %d %q", bad.status, bad.alert)
	}
}

// TestWrongPassword: wrong credentials re-render the form with an error
// and a 401, and the auth request stays unauthenticated (its callback
// yields an error, not a code); the right password then still works.
func TestWrongPassword(t *testing.T) {
	e := newEnv(t)
	c := browser(t)
	p := e.startLogin(t, c, e.authURL())
	id := p.hidden.Get("id")

	for _, cred := range [][2]string{{"bob", "alice-pw-1"}, {"bob", ""}, {"nobody", "bob-pw-2"}, {"BOB", "bob-pw-2"}} {
		again := readPage(t, post(t, c, p.formAction, p.fill(t, cred[0], cred[1])))
		if again.status != http.StatusUnauthorized || again.alert != wrongMsg || again.url.Path != loginPath {
			t.Fatalf("%v: got %d %q at %s", cred, again.status, again.alert, again.url)
		}
		if again.inputs["username"]["value"] != cred[0] || again.inputs["password"]["value"] != "" {
			t.Fatalf("%v: re-rendered inputs %v", cred, again.inputs)
		}
		if q := e.callbackResult(t, id); q.Get("code") != "" || q.Get("error") == "" {
			t.Fatalf("%v: callback after a failed sign-in gave %v", cred, q)
		}
		p = again
	}
	end := e.signIn(t, c, p, "bob", "bob-pw-2")
	if !strings.HasPrefix(end.String(), e.confCB+"?") || end.Query().Get("code") == "" {
		t.Fatalf("right password after wrong ones ended at %s", end)
	}
}

// TestCSRF: the form only counts when its token matches this auth request
// and this browser's binding cookie.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	c := browser(t)
	p := e.startLogin(t, c, e.authURL())
	other := e.startLogin(t, c, e.authURL()) // second request, same browser
	id := p.hidden.Get("id")

	tamper := map[string]func(url.Values) (*http.Client, url.Values){
		"missing": func(v url.Values) (*http.Client, url.Values) { v.Del("csrf"); return c, v },
		"forged": func(v url.Values) (*http.Client, url.Values) {
			v.Set("csrf", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
			return c, v
		},
		"other request's": func(v url.Values) (*http.Client, url.Values) {
			v.Set("csrf", other.hidden.Get("csrf"))
			return c, v
		},
		"no cookie": func(v url.Values) (*http.Client, url.Values) { return http.DefaultClient, v },
		"other browser": func(v url.Values) (*http.Client, url.Values) {
			b := browser(t)
			e.startLogin(t, b, e.authURL()) // b gets a binding cookie of its own
			return b, v
		},
	}
	for name, f := range tamper {
		cl, form := f(p.fill(t, "bob", "bob-pw-2"))
		resp := post(t, cl, p.formAction, form)
		got := readPage(t, resp)
		if got.status != http.StatusForbidden || got.alert != staleMsg || got.url.Path != loginPath {
			t.Fatalf("%s token: got %d %q at %s", name, got.status, got.alert, got.url)
		}
		if q := e.callbackResult(t, id); q.Get("code") != "" {
			t.Fatalf("%s token: a code was issued: %v", name, q)
		}
	}
	if end := e.signIn(t, c, p, "bob", "bob-pw-2"); end.Query().Get("code") == "" {
		t.Fatalf("genuine form ended at %s", end)
	}
}

// TestCallbackIssuesOneCode: replaying the callback after the code was
// issued does not mint a second code.
func TestCallbackIssuesOneCode(t *testing.T) {
	e := newEnv(t)
	c := browser(t)
	p := e.startLogin(t, c, e.authURL())
	if end := e.signIn(t, c, p, "alice", "alice-pw-1"); end.Query().Get("code") == "" {
		t.Fatalf("sign-in ended at %s", end)
	}
	if q := e.callbackResult(t, p.hidden.Get("id")); q.Get("code") != "" || q.Get("error") == "" {
		t.Fatalf("replayed callback gave %v", q)
	}
}

// TestExpiredAuthRequestsAreSwept: an auth request past its lifetime is
// refused by the login page and removed by the next write.
func TestExpiredAuthRequestsAreSwept(t *testing.T) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	c := browser(t)
	old := e.startLogin(t, c, e.authURL())
	clk.Advance(loginLifetime + time.Second)

	resp := post(t, c, old.formAction, old.fill(t, "bob", "bob-pw-2"))
	if got := readPage(t, resp); got.status != http.StatusBadRequest || !strings.Contains(got.alert, "expired") {
		t.Fatalf("expired request: %d %q", got.status, got.alert)
	}
	fresh := e.startLogin(t, c, e.authURL()) // CreateAuthRequest sweeps
	e.p.store.mu.Lock()
	_, oldKept := e.p.store.authReqs[old.hidden.Get("id")]
	_, freshKept := e.p.store.authReqs[fresh.hidden.Get("id")]
	n := len(e.p.store.authReqs)
	e.p.store.mu.Unlock()
	if oldKept || !freshKept || n != 1 {
		t.Fatalf("after sweep: old kept %v, fresh kept %v, %d requests", oldKept, freshKept, n)
	}
}

// TestLoggedOutAndMethods covers the small remaining surface.
func TestLoggedOutAndMethods(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPut, e.issuer+loginPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /login: %d", resp.StatusCode)
	}
	p := getPage(t, http.DefaultClient, e.issuer+loggedOutPath)
	if p.status != http.StatusOK || p.h1 != "Signed out" || p.header.Get("Content-Security-Policy") == "" {
		t.Fatalf("logged-out page: %d %q", p.status, p.h1)
	}
}
