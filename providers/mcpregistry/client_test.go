package mcpregistry_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/registrytest"
	"github.com/modelplane/modelplane/providers/mcpregistry"
)

func TestMain(m *testing.M) { os.Exit(registrytest.Main(m)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// server returns a server.json for name@version with a remote the registry
// accepts (https, not localhost, unique per name).
func server(ns, name, version string) mcpregistry.ServerJSON {
	return mcpregistry.ServerJSON{
		Name:        ns + "/" + name,
		Description: "Weather forecasts for tests",
		Version:     version,
		Remotes: []mcpregistry.Remote{{
			Type: mcpregistry.TransportStreamableHTTP,
			URL:  "https://" + name + "." + ns + ".example.com/mcp",
		}},
		Meta: &mcpregistry.ServerMeta{PublisherProvided: map[string]any{
			"modelplane": map[string]any{
				"approval_id":   "appr-42",
				"contract_hash": "sha256:abc",
				"stage":         "approved",
				"tools":         3,
			},
		}},
	}
}

func TestPublishGetAndDuplicate(t *testing.T) {
	reg := registrytest.Start(t)
	ns := reg.Namespace(t)
	c := mcpregistry.New(reg.URL, mcpregistry.StaticToken(reg.Token(ns, "publish")))
	s := server(ns, "weather", "1.0.0")

	got, err := c.Publish(ctx(t), s)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got.AlreadyPublished {
		t.Fatal("first publish reported AlreadyPublished")
	}
	if got.Status() != mcpregistry.StatusActive || !got.Meta.Official.IsLatest {
		t.Fatalf("published version: status %q latest %v, want active latest", got.Status(), got.Meta.Official.IsLatest)
	}
	if got.Server.Schema != mcpregistry.SchemaURL {
		t.Fatalf("schema defaulted to %q", got.Server.Schema)
	}

	// _meta round trip through the registry's storage.
	read, err := c.Get(ctx(t), s.Name, "1.0.0")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	mp, _ := read.Server.Lifecycle()["modelplane"].(map[string]any)
	if mp["approval_id"] != "appr-42" || mp["contract_hash"] != "sha256:abc" || mp["tools"] != float64(3) {
		t.Fatalf("publisher-provided metadata came back as %#v", read.Server.Lifecycle())
	}
	if len(read.Server.Remotes) != 1 || read.Server.Remotes[0].URL != s.Remotes[0].URL {
		t.Fatalf("remotes came back as %+v", read.Server.Remotes)
	}

	// A retried publish with the same content is idempotent.
	again, err := c.Publish(ctx(t), s)
	if err != nil {
		t.Fatalf("retried publish: %v", err)
	}
	if !again.AlreadyPublished || again.Server.Version != "1.0.0" {
		t.Fatalf("retried publish: AlreadyPublished=%v version %q", again.AlreadyPublished, again.Server.Version)
	}

	// The same version with other content is refused for good.
	changed := s
	changed.Description = "Something else entirely"
	_, err = c.Publish(ctx(t), changed)
	if !errors.Is(err, mcpregistry.ErrAlreadyPublished) || !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("publish of changed content under the same version: %v, want ErrAlreadyPublished and ErrInvalid", err)
	}

	// Unknown version.
	_, err = c.Get(ctx(t), s.Name, "9.9.9")
	if !errors.Is(err, mcpregistry.ErrNotFound) || !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("get of an unknown version: %v, want ErrNotFound and ErrInvalid", err)
	}
}

func TestVersionsAndStatus(t *testing.T) {
	reg := registrytest.Start(t)
	ns := reg.Namespace(t)
	c := mcpregistry.New(reg.URL, mcpregistry.StaticToken(reg.Token(ns, "publish")))
	name := ns + "/tools"

	if vs, err := c.Versions(ctx(t), name); err != nil || len(vs) != 0 {
		t.Fatalf("versions of an unpublished server: %v, %v", vs, err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := c.Publish(ctx(t), server(ns, "tools", v)); err != nil {
			t.Fatalf("publish %s: %v", v, err)
		}
	}
	vs, err := c.Versions(ctx(t), name)
	if err != nil {
		t.Fatalf("versions: %v", err)
	}
	latest := map[string]bool{}
	for _, v := range vs {
		latest[v.Server.Version] = v.Meta.Official != nil && v.Meta.Official.IsLatest
	}
	if len(vs) != 2 || !latest["1.1.0"] || latest["1.0.0"] {
		t.Fatalf("versions: %v (latest flags), want 1.0.0 and 1.1.0 with 1.1.0 latest", latest)
	}

	const why = "superseded by 1.1.0; approval appr-43"
	dep, err := c.SetStatus(ctx(t), name, "1.0.0", mcpregistry.StatusDeprecated, why)
	if err != nil {
		t.Fatalf("deprecate: %v", err)
	}
	if dep.Status() != mcpregistry.StatusDeprecated || dep.Meta.Official.StatusMessage != why {
		t.Fatalf("deprecated version: %+v", dep.Meta.Official)
	}
	// Deprecating again with the same message changes nothing and is no error.
	if again, err := c.SetStatus(ctx(t), name, "1.0.0", mcpregistry.StatusDeprecated, why); err != nil || again.Status() != mcpregistry.StatusDeprecated {
		t.Fatalf("repeated deprecate: %v, %v", again.Status(), err)
	}
	read, err := c.Get(ctx(t), name, "1.0.0")
	if err != nil || read.Status() != mcpregistry.StatusDeprecated || read.Meta.Official.StatusMessage != why {
		t.Fatalf("get after deprecate: %+v, %v", read.Meta.Official, err)
	}

	// Re-activate: the message goes (the registry refuses one for active).
	act, err := c.SetStatus(ctx(t), name, "1.0.0", mcpregistry.StatusActive, "ignored")
	if err != nil {
		t.Fatalf("re-activate: %v", err)
	}
	if act.Status() != mcpregistry.StatusActive || act.Meta.Official.StatusMessage != "" {
		t.Fatalf("re-activated version: %+v", act.Meta.Official)
	}

	// Deleted versions stay readable.
	if _, err := c.SetStatus(ctx(t), name, "1.1.0", mcpregistry.StatusDeleted, "withdrawn"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	del, err := c.Get(ctx(t), name, "1.1.0")
	if err != nil || del.Status() != mcpregistry.StatusDeleted {
		t.Fatalf("get of a deleted version: %v, %v", del.Status(), err)
	}

	_, err = c.SetStatus(ctx(t), name, "1.0.0", "retired", "")
	if !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("unknown status: %v, want ErrInvalid", err)
	}
	_, err = c.SetStatus(ctx(t), name, "1.0.0", mcpregistry.StatusDeprecated, strings.Repeat("x", 501))
	if !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("status message too long: %v, want ErrInvalid", err)
	}
}

func TestRefusals(t *testing.T) {
	reg := registrytest.Start(t)
	ns := reg.Namespace(t)
	s := server(ns, "refused", "1.0.0")

	cases := []struct {
		name  string
		token string
	}{
		{"another namespace", reg.Token("com.example.someone-else", "publish")},
		{"expired", reg.TokenFor(time.Now().Add(-time.Minute), ns, "publish")},
		{"garbage", "not-a-jwt"},
	}
	for _, tc := range cases {
		c := mcpregistry.New(reg.URL, mcpregistry.StaticToken(tc.token))
		_, err := c.Publish(ctx(t), s)
		if !errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("publish with %s token: %v, want ErrInvalid", tc.name, err)
		}
	}

	c := mcpregistry.New(reg.URL, mcpregistry.StaticToken(reg.Token(ns, "publish")))

	// The registry refuses http and localhost remotes; the message says why.
	bad := s
	bad.Remotes = []mcpregistry.Remote{{Type: mcpregistry.TransportStreamableHTTP, URL: "http://127.0.0.1:8080/mcp"}}
	_, err := c.Publish(ctx(t), bad)
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "remote") {
		t.Fatalf("publish with a localhost remote: %v, want ErrInvalid naming the remote", err)
	}

	big := server(ns, "big", "1.0.0")
	big.Meta.PublisherProvided["blob"] = strings.Repeat("x", mcpregistry.MaxPublisherMeta)
	_, err = c.Publish(ctx(t), big)
	var fe *modelplane.Error
	if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "_meta" {
		t.Fatalf("oversized _meta: %v, want ErrInvalid naming _meta", err)
	}

	if _, err := c.SetStatus(ctx(t), ns+"/never", "1.0.0", mcpregistry.StatusDeprecated, "x"); !errors.Is(err, mcpregistry.ErrNotFound) {
		t.Fatalf("status of an unknown server: %v, want ErrNotFound", err)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := mcpregistry.New("http://"+addr, mcpregistry.StaticToken("x"))
	_, err = c.Publish(ctx(t), server("com.example.x", "down", "1.0.0"))
	if err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("publish to a closed port: %v, want a retryable error", err)
	}
	_, err = c.Get(ctx(t), "com.example.x/down", "1.0.0")
	if err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("get from a closed port: %v, want a retryable error", err)
	}
}
