package console_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/identity/devidp"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/ui/console"
	"golang.org/x/net/html"
)

// TestOIDCSignIn signs in through the real dev provider's login page with
// the authorization-code flow (public client, PKCE): the console's
// identity is the provider's verified user, and a forged callback fails.
func TestOIDCSignIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idpAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePorts(t, 1))
	issuer := "http://" + idpAddr
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	consoleURL := "http://" + l.Addr().String()
	p, err := devidp.New(ctx, devidp.Config{Issuer: issuer,
		Users:   []devidp.User{{Name: "bob", Email: "bob@example.com", Password: "bob-password-1", Teams: []string{"growth"}, Roles: []string{modelplane.RoleApprover}}},
		Clients: []devidp.Client{{ID: "modelplane-console", RedirectURIs: []string{consoleURL + "/auth/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := devidp.Serve(ctx, idpAddr, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	oidc, err := identity.NewOIDC(ctx, identity.OIDCConfig{Issuer: issuer, Audience: []string{"modelplane-console"}})
	if err != nil {
		t.Fatal(err)
	}
	kit := testkit.New(t, ":memory:")
	apiSrv := &api.Server{Store: kit.Store, Auth: oidc, Providers: kit.Activities.Providers}
	con, err := console.New(console.Config{API: apiSrv.Handler(), Auth: oidc, OIDC: &console.OIDC{Issuer: issuer, ClientID: "modelplane-console"}, PublicURL: consoleURL})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	srv := httptest.NewUnstartedServer(con.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	// The console sends the browser to the provider, which shows its login page.
	res, err := c.Get(consoleURL + "/inbox")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := html.Parse(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(res.Request.URL.String(), issuer+"/login") {
		t.Fatalf("ended at %s, want the provider's login page", res.Request.URL)
	}
	form := findAll(doc, "form")[0]
	vals := url.Values{}
	for _, in := range findAll(form, "input") {
		vals.Set(attr(in, "name"), attr(in, "value"))
	}
	vals.Set("username", "bob")
	vals.Set("password", "bob-password-1")
	action, _ := res.Request.URL.Parse(attr(form, "action"))
	res, err = c.PostForm(action.String(), vals)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ = html.Parse(res.Body)
	res.Body.Close()
	// Back on the console, signed in as the provider's bob, at the page asked for.
	if res.Request.URL.String() != consoleURL+"/inbox" || res.StatusCode != http.StatusOK || !strings.Contains(text(doc), "bob (approver)") {
		t.Fatalf("after sign-in: %s %d %s", res.Request.URL, res.StatusCode, text(doc))
	}
	// A callback this browser did not start (wrong state) signs nobody in.
	other := &http.Client{Timeout: 10 * time.Second}
	res, err = other.Get(consoleURL + "/auth/callback?code=x&state=y")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", res.StatusCode)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "mp_console" && ck.Value != "" {
			t.Fatal("forged callback set a session")
		}
	}
}
