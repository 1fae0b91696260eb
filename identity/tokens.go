package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/modelplane/modelplane"
)

// TokenEntry is one static API token, as stored: the secret itself is never
// kept, only its SHA-256.
type TokenEntry struct {
	Name  string   `json:"name"`
	Teams []string `json:"teams,omitempty"`
	Roles []string `json:"roles"`
	// Expires is when the token stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// SHA256 is the lowercase hex SHA-256 of the secret.
	SHA256 string `json:"sha256"`
}

// fileEntry is TokenEntry as written in the file; expires stays a string
// so a malformed date is reported with the entry it belongs to.
type fileEntry struct {
	Name    string   `json:"name"`
	Teams   []string `json:"teams,omitempty"`
	Roles   []string `json:"roles"`
	Expires string   `json:"expires,omitempty"`
	SHA256  string   `json:"sha256"`
}

// TokenPrefix starts every secret IssueToken makes, so leaked tokens are
// easy to grep for in logs and secret scanners.
const TokenPrefix = "mpt_"

// secretEncoding is lowercase base32 without padding: shorter than hex and
// safe in URLs, headers and shell.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Tokens authenticates static (pipeline) tokens. It is immutable after
// construction and safe for concurrent use.
type Tokens struct {
	byDigest map[[sha256.Size]byte]*tokenRecord
}

type tokenRecord struct {
	name    string
	teams   []string
	roles   []string
	expires time.Time
}

// NewTokens validates entries and builds the lookup table.
func NewTokens(entries []TokenEntry) (*Tokens, error) {
	t := &Tokens{byDigest: make(map[[sha256.Size]byte]*tokenRecord, len(entries))}
	seen := make(map[[sha256.Size]byte]int, len(entries))
	for i, e := range entries {
		where := func(field, format string, args ...any) error {
			return fmt.Errorf("tokens[%d] %q: %s: %s", i, e.Name, field, fmt.Sprintf(format, args...))
		}
		if strings.TrimSpace(e.Name) == "" {
			return nil, where("name", "missing")
		}
		if len(e.Roles) == 0 {
			return nil, where("roles", "missing (want one or more of %s)", roleList())
		}
		for _, r := range e.Roles {
			if !slices.Contains(modelplane.Roles, r) {
				return nil, where("roles", "unknown role %q (want one of %s)", r, roleList())
			}
		}
		for _, team := range e.Teams {
			if strings.TrimSpace(team) == "" {
				return nil, where("teams", "empty team name")
			}
		}
		if e.SHA256 == "" {
			return nil, where("sha256", "missing (store the hex SHA-256 of the secret, never the secret)")
		}
		var d [sha256.Size]byte
		// Length first: hex.Decode would write past d for a longer string.
		if len(e.SHA256) != 2*sha256.Size {
			return nil, where("sha256", "want %d hex characters, got %d", 2*sha256.Size, len(e.SHA256))
		}
		if _, err := hex.Decode(d[:], []byte(e.SHA256)); err != nil {
			return nil, where("sha256", "want %d hex characters", 2*sha256.Size)
		}
		if j, dup := seen[d]; dup {
			return nil, where("sha256", "same digest as tokens[%d] %q", j, entries[j].Name)
		}
		seen[d] = i
		t.byDigest[d] = &tokenRecord{
			name:    e.Name,
			teams:   slices.Clone(e.Teams),
			roles:   slices.Clone(e.Roles),
			expires: e.Expires,
		}
	}
	return t, nil
}

// LoadTokenFile reads a JSON token file (YAML too, for .yaml/.yml).
func LoadTokenFile(path string) (*Tokens, error) {
	entries, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	t, err := NewTokens(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Len reports how many tokens are loaded.
func (t *Tokens) Len() int { return len(t.byDigest) }

// Authenticate looks the bearer up by its SHA-256. Comparing digests rather
// than secrets is what makes the lookup safe against timing: the map's
// early-exit comparisons leak at most a prefix of a hash the caller cannot
// steer towards a valid one.
func (t *Tokens) Authenticate(_ context.Context, bearer string) (modelplane.Principal, error) {
	if bearer == "" {
		return modelplane.Principal{}, errNoCredential
	}
	if len(bearer) > maxBearer {
		return modelplane.Principal{}, errUnknownToken
	}
	rec, ok := t.byDigest[sha256.Sum256([]byte(bearer))]
	if !ok {
		return modelplane.Principal{}, errUnknownToken
	}
	if !rec.expires.IsZero() && !time.Now().Before(rec.expires) {
		return modelplane.Principal{}, unauth("token %s expired at %s", rec.name, rec.expires.Format(time.RFC3339))
	}
	p := modelplane.Principal{
		Name:   rec.name,
		Teams:  slices.Clone(rec.teams), // callers may append; the table must not change
		Roles:  slices.Clone(rec.roles),
		Method: modelplane.AuthToken,
	}
	if !rec.expires.IsZero() {
		exp := rec.expires
		p.Expires = &exp
	}
	return p, nil
}

// Digest returns the hex SHA-256 stored for secret.
func Digest(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(d[:])
}

// FromLegacy converts a dev-mode plaintext "name role secret" token to an
// entry. Legacy tokens carry no teams, so the caller says which they get.
func FromLegacy(name, role, secret string, teams ...string) TokenEntry {
	return TokenEntry{
		Name:   name,
		Teams:  slices.Clone(teams),
		Roles:  []string{role},
		SHA256: Digest(secret),
	}
}

// IssueToken mints a secret for e, appends e with the secret's digest to
// the token file at path (creating it if needed) and returns the secret,
// which is not recoverable afterwards. e.SHA256 is ignored. The file is
// replaced atomically with mode 0600. Concurrent IssueToken calls on one
// file are not serialised; run them one at a time.
func IssueToken(path string, e TokenEntry) (string, error) {
	entries, err := readTokenFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := TokenPrefix + secretEncoding.EncodeToString(raw[:])
	e.SHA256 = Digest(secret)
	e.Teams = slices.Clone(e.Teams)
	e.Roles = slices.Clone(e.Roles)
	entries = append(entries, e)
	// Validate the whole file as it will be, so we never write one that
	// LoadTokenFile would refuse.
	if _, err := NewTokens(entries); err != nil {
		return "", err
	}
	if err := writeTokenFile(path, entries); err != nil {
		return "", err
	}
	return secret, nil
}

func readTokenFile(path string) ([]TokenEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 || string(bytes.TrimSpace(data)) == "null" {
		return nil, nil // an empty file is an empty table, e.g. before the first IssueToken
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, fmt.Errorf("%s: want a JSON list of token entries: %w", path, err)
	}
	out := make([]TokenEntry, 0, len(raws))
	for i, raw := range raws {
		var fe fileEntry
		dec := json.NewDecoder(bytes.NewReader(raw))
		// A misspelt key ("sha265", "role") would otherwise vanish silently.
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fe); err != nil {
			var name struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(raw, &name)
			return nil, fmt.Errorf("%s: tokens[%d] %q: %w", path, i, name.Name, err)
		}
		e := TokenEntry{Name: fe.Name, Teams: fe.Teams, Roles: fe.Roles, SHA256: strings.ToLower(fe.SHA256)}
		if fe.Expires != "" {
			if e.Expires, err = time.Parse(time.RFC3339, fe.Expires); err != nil {
				return nil, fmt.Errorf("%s: tokens[%d] %q: expires: want RFC 3339 such as 2027-01-01T00:00:00Z, got %q", path, i, fe.Name, fe.Expires)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// writeTokenFile replaces path atomically (temp file in the same directory,
// fsync, rename) so a crash never leaves a truncated table behind.
func writeTokenFile(path string, entries []TokenEntry) error {
	fes := make([]fileEntry, len(entries))
	for i, e := range entries {
		fes[i] = fileEntry{Name: e.Name, Teams: e.Teams, Roles: e.Roles, SHA256: e.SHA256}
		if !e.Expires.IsZero() {
			fes[i].Expires = e.Expires.UTC().Format(time.RFC3339)
		}
	}
	data, err := json.MarshalIndent(fes, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Persist the rename itself; best effort, as not every filesystem
	// supports syncing a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Lookup finds an unexpired principal by name: the roles and teams a name
// typed in the dev-mode Web UI would have. Method is left empty — the
// caller marks the identity as unverified.
func (t *Tokens) Lookup(name string) (modelplane.Principal, bool) {
	if t == nil {
		return modelplane.Principal{}, false
	}
	for _, rec := range t.byDigest {
		if rec.name == name && (rec.expires.IsZero() || time.Now().Before(rec.expires)) {
			return modelplane.Principal{Name: rec.name, Teams: slices.Clone(rec.teams), Roles: slices.Clone(rec.roles)}, true
		}
	}
	return modelplane.Principal{}, false
}
