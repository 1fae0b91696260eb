package devidp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoadOrCreatePasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwords")
	if err := os.WriteFile(path, []byte("# dev passwords\nalice keep-me-1\ncustom kept-too\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOrCreatePasswords(path, []string{"alice", "bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["alice"] != "keep-me-1" {
		t.Fatalf("got %v, want alice kept and bob, carol added", got)
	}
	for _, n := range []string{"bob", "carol"} {
		pw := got[n]
		if len(pw) != passwordLen || strings.Trim(pw, passwordAlphabet) != "" {
			t.Fatalf("%s's password %q is not %d characters of the alphabet", n, pw, passwordLen)
		}
	}
	if got["bob"] == got["carol"] {
		t.Fatal("two users got the same random password")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after rewrite: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	want := "# dev passwords\nalice keep-me-1\ncustom kept-too\nbob " + got["bob"] + "\ncarol " + got["carol"] + "\n"
	if string(data) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", data, want)
	}

	again, err := LoadOrCreatePasswords(path, []string{"bob", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	if again["bob"] != got["bob"] || again["dave"] == "" || len(again) != 2 {
		t.Fatalf("second call: %v", again)
	}

	m1, err1 := LoadOrCreatePasswords("", []string{"alice"})
	m2, err2 := LoadOrCreatePasswords("", []string{"alice"})
	if err1 != nil || err2 != nil || m1["alice"] == "" || m1["alice"] == m2["alice"] {
		t.Fatalf("in-memory passwords: %v %v %v %v", m1, m2, err1, err2)
	}

	fresh := filepath.Join(t.TempDir(), "sub", "passwords")
	if _, err := LoadOrCreatePasswords(fresh, []string{"alice"}); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created file: %v %v", fi, err)
	}

	for name, content := range map[string]string{"three fields": "alice a b\n", "one field": "alice\n", "duplicate": "a x\na y\n"} {
		bad := filepath.Join(t.TempDir(), "passwords")
		_ = os.WriteFile(bad, []byte(content), 0o600)
		if _, err := LoadOrCreatePasswords(bad, []string{"alice"}); err == nil {
			t.Errorf("%s: no error", name)
		}
		if data, _ := os.ReadFile(bad); string(data) != content {
			t.Errorf("%s: malformed file was rewritten", name)
		}
	}
	if _, err := LoadOrCreatePasswords("", []string{"has space"}); err == nil {
		t.Error("name with a space accepted")
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := busy.Addr().String()
	p, err := New(ctx, Config{Issuer: "http://" + addr, Users: testUsers[:1], KeyFile: sharedKeyFile,
		Clients: []Client{{ID: "c", RedirectURIs: []string{"http://127.0.0.1:1/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(ctx, addr, p); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Serve on a busy address: %v, want EADDRINUSE", err)
	}
	busy.Close()

	stop, err := Serve(ctx, addr, p)
	if err != nil {
		t.Fatal(err) // only if something grabbed the port in between
	}
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery over Serve: %d", resp.StatusCode)
	}
	cancel() // ctx ends: the server shuts down; stop waits for it
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := stop(sctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stop(sctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := c.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answering after stop")
	}
}

func TestNewValidates(t *testing.T) {
	ctx := context.Background()
	good := func() Config {
		return Config{Issuer: "http://localhost:8234/", Users: []User{testUsers[0]}, KeyFile: sharedKeyFile,
			Clients: []Client{{ID: "c", RedirectURIs: []string{"http://127.0.0.1:8233/cb"}}}}
	}
	p, err := New(ctx, good())
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer() != "http://localhost:8234" {
		t.Fatalf("issuer not normalised: %q", p.Issuer())
	}
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"no issuer":        {func(c *Config) { c.Issuer = "" }, "issuer is required"},
		"http not local":   {func(c *Config) { c.Issuer = "http://idp.example.com" }, "loopback"},
		"issuer query":     {func(c *Config) { c.Issuer = "http://127.0.0.1:1/?a=b" }, "query"},
		"issuer scheme":    {func(c *Config) { c.Issuer = "ftp://127.0.0.1" }, "scheme"},
		"no users":         {func(c *Config) { c.Users = nil }, "user"},
		"duplicate user":   {func(c *Config) { c.Users = append(c.Users, c.Users[0]) }, "duplicate"},
		"unknown role":     {func(c *Config) { c.Users = []User{{Name: "x", Password: "p", Roles: []string{"aprover"}}} }, "unknown role"},
		"empty password":   {func(c *Config) { c.Users = []User{{Name: "x"}} }, "password"},
		"no clients":       {func(c *Config) { c.Clients = nil }, "client"},
		"no redirect":      {func(c *Config) { c.Clients[0].RedirectURIs = nil }, "redirect URI"},
		"fragment":         {func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://127.0.0.1/cb#x"} }, "redirect URI"},
		"relative":         {func(c *Config) { c.Clients[0].RedirectURIs = []string{"/cb"} }, "redirect URI"},
		"duplicate client": {func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "duplicate"},
		"bad key file":     {func(c *Config) { c.KeyFile = writeTemp(t, "not a key") }, "PEM"},
	}
	for name, tc := range cases {
		cfg := good()
		tc.edit(&cfg)
		if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, tc.want)
		}
	}
	cfg := good()
	cfg.Issuer = "https://idp.example.com/dev"
	if p, err := New(ctx, cfg); err != nil || p.Issuer() != "https://idp.example.com/dev" {
		t.Fatalf("https issuer with a path: %v", err)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
