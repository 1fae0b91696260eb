package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/labstack/echo/v4"
	"github.com/temporalio/ui-server/v2/server"
	"github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
)

// No Temporal frontend is needed: the UI dials it lazily.
const frontend = "127.0.0.1:1"

func start(t *testing.T, c Config) *Server {
	t.Helper()
	s, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func csrfCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "_csrf" {
			return c
		}
	}
	t.Fatalf("%s: no _csrf cookie in %v", resp.Request.URL, resp.Header.Values("Set-Cookie"))
	return nil
}

func TestAnswersOnTheReturnedAddress(t *testing.T) {
	s := start(t, Config{Host: "127.0.0.1", TemporalAddress: frontend, Namespace: "default"})
	if strings.HasSuffix(s.URL, ":0") {
		t.Fatalf("URL %s names port 0, not the port bound", s.URL)
	}
	for _, path := range []string{"/healthz", "/", "/api/v1/settings"} {
		if resp := get(t, s.URL+path); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	if c := csrfCookie(t, get(t, s.URL+"/")); c.Secure {
		t.Fatal("_csrf cookie is Secure on a plain-HTTP UI: browsers would never send it back")
	}
}

func TestPortInUseIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	s, err := Start(Config{Host: "127.0.0.1", Port: port, TemporalAddress: frontend})
	if err == nil {
		s.Stop()
		t.Fatalf("Start on a port in use succeeded (URL %s)", s.URL)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("error %q should say the address %d is in use", err, port)
	}
}

// issuer is a stand-in OIDC provider: discovery is all the UI reads at start.
func issuer(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCookiesSecureBehindHTTPS(t *testing.T) {
	s := start(t, Config{Host: "127.0.0.1", TemporalAddress: frontend,
		OIDC: &OIDC{Issuer: issuer(t), ClientID: "ui", ClientSecret: "s", PublicURL: "HTTPS://ui.example.com/"}})
	if c := csrfCookie(t, get(t, s.URL+"/")); !c.Secure {
		t.Fatal("_csrf cookie not Secure though browsers reach the UI over HTTPS")
	}
	// Sign-in: ui-server sets its state cookies before redirecting to the provider.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.URL + "/auth/sso")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) == 0 {
		t.Fatalf("/auth/sso (%s) set no cookies", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Fatalf("/auth/sso cookie %s not Secure", c.Name)
		}
	}
}

func TestPublicURLMustBeHTTP(t *testing.T) {
	s, err := Start(Config{Host: "127.0.0.1", TemporalAddress: frontend,
		OIDC: &OIDC{Issuer: issuer(t), ClientID: "ui", PublicURL: "ui.example.com"}})
	if err == nil {
		s.Stop()
		t.Fatal("a public URL without a scheme was accepted")
	}
}

func TestStopEndsServing(t *testing.T) {
	s, err := Start(Config{Host: "127.0.0.1", TemporalAddress: frontend})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err, open := <-s.Err(); open {
		t.Fatalf("Err after Stop delivered %v", err)
	}
	if _, err := http.Get(s.URL + "/healthz"); err == nil {
		t.Fatal("the UI still answers after Stop")
	}
}

// TestHandlerMatchesUpstream guards handler against ui-server drifting:
// server.NewServer must register the routes handler does, with sign-in and without.
func TestHandlerMatchesUpstream(t *testing.T) {
	signIn := config.Auth{Enabled: true, Providers: []config.AuthProvider{{Label: "modelplane", Type: "oidc",
		ProviderURL: issuer(t), ClientID: "ui", CallbackURL: "http://127.0.0.1:1/auth/sso/callback"}}}
	for _, a := range []config.Auth{{}, signIn} {
		cfg := &config.Config{Host: "127.0.0.1", Port: 1, TemporalGRPCAddress: frontend, EnableUI: true, HideLogs: true, Auth: a}
		up := server.NewServer(server_options.WithConfigProvider(cfg))
		f := reflect.ValueOf(up).Elem().FieldByName("httpServer")
		if !f.IsValid() {
			t.Fatal("ui-server's Server has no httpServer field any more: compare handler with server.NewServer by hand")
		}
		upstream := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*echo.Echo)
		cp, err := config.NewConfigProviderWithRefresh(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := handler(cp, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := routes(upstream), routes(ours); !slices.Equal(a, b) {
			t.Fatalf("routes differ from ui-server's NewServer:\nupstream %v\nours     %v", a, b)
		}
	}
}

func routes(e *echo.Echo) []string {
	var out []string
	for _, r := range e.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	slices.Sort(out)
	return out
}
