package identity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTokenFile(t *testing.T) {
	fraud, prod := "mpt_fraud-secret-0123456789", "mpt_prod-secret-0123456789"
	body := `[
  {"name":"ci-fraud","teams":["fraud"],"roles":["requester"],"expires":"2099-01-01T00:00:00Z","sha256":"` + Digest(fraud) + `"},
  {"name":"ci-prod","roles":["approver","auditor"],"sha256":"` + strings.ToUpper(Digest(prod)) + `"}
]`
	toks, err := LoadTokenFile(writeFile(t, "tokens.json", body))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Fatalf("Len %d, want 2", toks.Len())
	}
	p, err := toks.Authenticate(context.Background(), fraud)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "ci-fraud" || !slices.Equal(p.Teams, []string{"fraud"}) || !slices.Equal(p.Roles, []string{"requester"}) ||
		p.Method != modelplane.AuthToken || p.Expires == nil || !p.Expires.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("principal %+v", p)
	}
	// A caller mutating the principal must not change the table.
	p.Teams[0] = "hijacked"
	if p, _ = toks.Authenticate(context.Background(), fraud); p.Teams[0] != "fraud" {
		t.Errorf("stored teams changed through a returned principal: %v", p.Teams)
	}
	p, err = toks.Authenticate(context.Background(), prod)
	if err != nil || p.Expires != nil || p.Name != "ci-prod" {
		t.Errorf("never-expiring token (upper-case digest): %+v, %v", p, err)
	}
	rejects(t, toks, "mpt_guess-0123456789abcdef", "unknown token")
	rejects(t, toks, "", "no credential")
}

func TestLoadTokenFileYAML(t *testing.T) {
	secret := "mpt_yaml-secret-0123456789"
	toks, err := LoadTokenFile(writeFile(t, "tokens.yaml", `
- name: ci-yaml
  teams: [fraud]
  roles: [requester]
  sha256: `+Digest(secret)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := toks.Authenticate(context.Background(), secret); err != nil || p.Name != "ci-yaml" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestLoadTokenFileErrors(t *testing.T) {
	d1, d2 := Digest("one-secret-0123456789"), Digest("two-secret-0123456789")
	cases := []struct{ name, body, want string }{
		{"unknown role", `[{"name":"ok","roles":["admin"],"sha256":"` + d1 + `"},{"name":"ci-x","roles":["aprover"],"sha256":"` + d2 + `"}]`,
			`tokens[1] "ci-x": roles: unknown role "aprover"`},
		{"no roles", `[{"name":"ci-x","sha256":"` + d1 + `"}]`, `tokens[0] "ci-x": roles: missing`},
		{"bad expiry", `[{"name":"ci-x","roles":["requester"],"expires":"2027-13-01","sha256":"` + d1 + `"}]`,
			`tokens[0] "ci-x": expires: want RFC 3339`},
		{"date without time", `[{"name":"ci-x","roles":["requester"],"expires":"2027-01-01","sha256":"` + d1 + `"}]`,
			`tokens[0] "ci-x": expires`},
		{"missing digest", `[{"name":"ci-x","roles":["requester"]}]`, `tokens[0] "ci-x": sha256: missing`},
		{"short digest", `[{"name":"ci-x","roles":["requester"],"sha256":"abcd"}]`, `tokens[0] "ci-x": sha256: want 64 hex characters`},
		{"long digest", `[{"name":"ci-x","roles":["requester"],"sha256":"` + d1 + `00"}]`, `tokens[0] "ci-x": sha256: want 64 hex characters`},
		{"non-hex digest", `[{"name":"ci-x","roles":["requester"],"sha256":"` + strings.Repeat("z", 64) + `"}]`, `tokens[0] "ci-x": sha256: want 64 hex`},
		{"duplicate digest", `[{"name":"a","roles":["requester"],"sha256":"` + d1 + `"},{"name":"b","roles":["admin"],"sha256":"` + d1 + `"}]`,
			`tokens[1] "b": sha256: same digest as tokens[0] "a"`},
		{"missing name", `[{"roles":["requester"],"sha256":"` + d1 + `"}]`, `tokens[0] "": name: missing`},
		{"empty team", `[{"name":"ci-x","teams":[""],"roles":["requester"],"sha256":"` + d1 + `"}]`, `tokens[0] "ci-x": teams: empty team name`},
		{"misspelt field", `[{"name":"ci-x","roles":["requester"],"sha265":"` + d1 + `"}]`, `tokens[0] "ci-x": json: unknown field "sha265"`},
		{"plaintext secret field", `[{"name":"ci-x","roles":["requester"],"secret":"hunter2"}]`, `unknown field "secret"`},
		{"not a list", `{"name":"ci-x"}`, "want a JSON list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "tokens.json", tc.body)
			_, err := LoadTokenFile(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := LoadTokenFile(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestTokenExpiry(t *testing.T) {
	secret := "mpt_old-secret-0123456789"
	exp := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	toks, err := NewTokens([]TokenEntry{{Name: "ci-old", Roles: []string{"requester"}, Expires: exp, SHA256: Digest(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	rejects(t, toks, secret, "token ci-old expired at "+exp.Format(time.RFC3339))
}

func TestIssueToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	exp := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	s1, err := IssueToken(path, TokenEntry{Name: "ci-fraud", Teams: []string{"fraud"}, Roles: []string{"requester"}, Expires: exp, SHA256: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := IssueToken(path, TokenEntry{Name: "ci-risk", Teams: []string{"risk"}, Roles: []string{"requester", "approver"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2} {
		if !strings.HasPrefix(s, TokenPrefix) || len(s) != len(TokenPrefix)+52 {
			t.Errorf("secret %q: want %s + 52 base32 characters", s, TokenPrefix)
		}
	}
	if s1 == s2 {
		t.Fatal("two issued secrets are equal")
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %o, want 600", mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2, strings.TrimPrefix(s1, TokenPrefix), strings.TrimPrefix(s2, TokenPrefix)} {
		if strings.Contains(string(data), s) {
			t.Fatalf("token file contains a secret:\n%s", data)
		}
	}
	var stored []map[string]any
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0]["sha256"] != Digest(s1) || stored[1]["sha256"] != Digest(s2) || stored[0]["expires"] != "2030-06-01T12:00:00Z" {
		t.Errorf("stored entries %v", stored)
	}
	if _, ok := stored[1]["expires"]; ok {
		t.Errorf("never-expiring entry written with an expiry: %v", stored[1])
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	toks, err := LoadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for s, name := range map[string]string{s1: "ci-fraud", s2: "ci-risk"} {
		if p, err := toks.Authenticate(context.Background(), s); err != nil || p.Name != name {
			t.Errorf("issued secret for %s: %+v %v", name, p, err)
		}
	}

	// An invalid entry is refused and the file left as it was.
	if _, err := IssueToken(path, TokenEntry{Name: "bad", Roles: []string{"root"}}); err == nil ||
		!strings.Contains(err.Error(), `tokens[2] "bad": roles: unknown role "root"`) {
		t.Errorf("invalid entry: %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(data) {
		t.Error("file changed by a refused IssueToken")
	}
}

func TestIssueTokenTightensMode(t *testing.T) {
	path := writeFile(t, "tokens.json", "[]")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := IssueToken(path, TokenEntry{Name: "ci", Roles: []string{"requester"}}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o after IssueToken over a 0644 file, want 600", fi.Mode().Perm())
	}
}

func TestFromLegacy(t *testing.T) {
	e := FromLegacy("alice", "approver", "dev-secret-0123456789", "fraud", "risk")
	if e.SHA256 != Digest("dev-secret-0123456789") || strings.Contains(e.SHA256, "dev-secret") {
		t.Errorf("digest %q", e.SHA256)
	}
	toks, err := NewTokens([]TokenEntry{e, FromLegacy("bob", "requester", "other-secret-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := toks.Authenticate(context.Background(), "dev-secret-0123456789")
	if err != nil || p.Name != "alice" || !slices.Equal(p.Roles, []string{"approver"}) || !slices.Equal(p.Teams, []string{"fraud", "risk"}) {
		t.Errorf("%+v %v", p, err)
	}
	if p, _ := toks.Authenticate(context.Background(), "other-secret-0123456789"); len(p.Teams) != 0 {
		t.Errorf("legacy token without teams got %v", p.Teams)
	}
	if _, err := NewTokens([]TokenEntry{FromLegacy("x", "superuser", "s")}); err == nil {
		t.Error("legacy token with an unknown role accepted")
	}
}

func TestTokensConcurrent(t *testing.T) {
	secret := "mpt_concurrent-0123456789"
	toks, err := NewTokens([]TokenEntry{{Name: "ci", Roles: []string{"requester"}, SHA256: Digest(secret)}})
	if err != nil {
		t.Fatal(err)
	}
	storm(t, 32, func() error {
		for range 100 {
			p, err := toks.Authenticate(context.Background(), secret)
			if err != nil {
				return err
			}
			p.Roles[0] = "admin" // must not leak into other goroutines' results
		}
		return nil
	})
}

func BenchmarkTokenAuthenticate(b *testing.B) {
	secret := "mpt_" + strings.Repeat("a", 52)
	entries := []TokenEntry{{Name: "ci", Teams: []string{"fraud"}, Roles: []string{"requester"}, Expires: time.Now().Add(time.Hour), SHA256: Digest(secret)}}
	for i := range 1000 {
		entries = append(entries, TokenEntry{Name: "filler", Roles: []string{"requester"}, SHA256: Digest(strings.Repeat("x", i+1))})
	}
	toks, err := NewTokens(entries)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := toks.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}
