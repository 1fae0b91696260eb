package mcpregistry

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
)

// Memory is an in-memory MCP registry with the Client's methods, for
// `modelplane dev`, where no official registry runs. It keeps the rules of
// the official registry (v1.8) that modelplane relies on, so what works in
// dev works against the real one:
//
//   - the Client's own checks (name, version, description, publisher
//     metadata ≤ 4 KB), the reserved version "latest", and remotes that are
//     streamable-http or sse on https, not localhost, and not already used by
//     another server name;
//   - a version is immutable: the same content again returns the stored
//     version with AlreadyPublished set, other content wraps
//     ErrAlreadyPublished and modelplane.ErrInvalid;
//   - "latest" is the highest semantic version, pre-releases included (any
//     semver ranks above a version that is not; of two that are not, the
//     later published ranks higher); deprecated versions stay latest,
//     deleted ones give it up unless every version is deleted;
//   - unknown servers and versions wrap ErrNotFound and modelplane.ErrInvalid.
//
// Like the registry it records no actor. Safe for concurrent use; nothing
// survives the process.
type Memory struct {
	mu      sync.Mutex
	servers map[string][]*memVersion // by server name, in publish order
	seq     int
	now     func() time.Time
}

// memVersion is one stored version.
type memVersion struct {
	raw      []byte // server.json as published: every read decodes a fresh copy
	version  string
	remotes  []string
	official Official
	seq      int // publish order, which orders versions that are not semver
}

// NewMemory returns an empty registry.
func NewMemory() *Memory {
	return &Memory{
		servers: map[string][]*memVersion{},
		// PostgreSQL keeps microseconds: the same precision as the real one.
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// Publish stores s (its Schema defaults to SchemaURL) as a new active
// version, or returns the stored one with AlreadyPublished set when the
// version exists with the same content (a retried publish).
func (m *Memory) Publish(ctx context.Context, s ServerJSON) (ServerResponse, error) {
	if s.Schema == "" {
		s.Schema = SchemaURL
	}
	what := fmt.Sprintf("publish %s@%s", s.Name, s.Version)
	if err := ctx.Err(); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	if err := checkServer(s); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	if err := checkPublish(s); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %v: %w", what, err, modelplane.ErrInvalid)
	}
	remotes := make([]string, 0, len(s.Remotes))
	for _, r := range s.Remotes {
		remotes = append(remotes, r.URL)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	// The registry checks remotes before it looks for the version.
	if err := m.remoteConflict(s.Name, remotes); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}
	if v := m.find(s.Name, s.Version); v != nil {
		existing := v.response()
		if sameContent(s, existing.Server) {
			existing.AlreadyPublished = true
			return existing, nil
		}
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w: %w", what, ErrAlreadyPublished, modelplane.ErrInvalid)
	}

	now := m.now()
	m.seq++
	nv := &memVersion{raw: raw, version: s.Version, remotes: remotes, seq: m.seq,
		official: Official{Status: StatusActive, StatusChangedAt: now, PublishedAt: now, UpdatedAt: now}}
	// Like the registry, a publish only compares with the current latest;
	// a full recalculation happens on status changes.
	cur := m.latest(s.Name)
	nv.official.IsLatest = cur == nil || compareVersions(nv, cur) > 0
	if nv.official.IsLatest && cur != nil {
		cur.official.IsLatest = false
	}
	m.servers[s.Name] = append(m.servers[s.Name], nv)
	return nv.response(), nil
}

// Get returns one version ("latest" for the latest), deleted ones included.
func (m *Memory) Get(ctx context.Context, name, version string) (ServerResponse, error) {
	if err := ctx.Err(); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: get %s@%s: %w", name, version, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var v *memVersion
	if version == "latest" {
		v = m.latest(name)
	} else {
		v = m.find(name, version)
	}
	if v == nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: get %s@%s: %w: %w", name, version, ErrNotFound, modelplane.ErrInvalid)
	}
	return v.response(), nil
}

// Versions returns every version of a server, deleted ones included, the
// most recently published first (the registry's order); none for a server
// never published.
func (m *Memory) Versions(ctx context.Context, name string) ([]ServerResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mcpregistry: versions of %s: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	vs := m.servers[name]
	if len(vs) == 0 {
		return nil, nil
	}
	out := make([]ServerResponse, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		out = append(out, vs[i].response())
	}
	return out, nil
}

// SetStatus moves a version to status with a message (dropped for active;
// at most MaxStatusMessage characters). Setting what is already there
// returns the version unchanged.
func (m *Memory) SetStatus(ctx context.Context, name, version string, status Status, message string) (ServerResponse, error) {
	what := fmt.Sprintf("set %s@%s %s", name, version, status)
	if !status.Valid() {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what,
			invalidField("status", "must be active, deprecated or deleted, not %q", status))
	}
	if status == StatusActive {
		message = ""
	} else if n := len([]rune(message)); n > MaxStatusMessage {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: statusMessage is %d characters, the registry keeps at most %d: %w",
			what, n, MaxStatusMessage, modelplane.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.find(name, version)
	if v == nil {
		return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w: %w", what, ErrNotFound, modelplane.ErrInvalid)
	}
	o := &v.official
	if o.Status == status && o.StatusMessage == message {
		return v.response(), nil // the registry's "no changes to apply"
	}
	// A deleted version gives up its remotes; taking them back must not
	// collide with another server that took them since.
	if status == StatusActive && o.Status == StatusDeleted {
		if err := m.remoteConflict(name, v.remotes); err != nil {
			return ServerResponse{}, fmt.Errorf("mcpregistry: %s: %w", what, err)
		}
	}
	now := m.now()
	if o.Status != status {
		o.StatusChangedAt = now
	}
	o.Status, o.StatusMessage, o.UpdatedAt = status, message, now
	m.recalculateLatest(name)
	return v.response(), nil
}

// checkPublish is what the registry refuses beyond checkServer: the
// reserved version and remotes it would not list.
func checkPublish(s ServerJSON) error {
	if s.Version == "latest" {
		return invalidField("version", `"latest" is reserved`)
	}
	for i, r := range s.Remotes {
		field := fmt.Sprintf("remotes[%d]", i)
		if r.Type != TransportStreamableHTTP && r.Type != TransportSSE {
			return invalidField(field+".type", "remotes must be %s or %s, not %q", TransportStreamableHTTP, TransportSSE, r.Type)
		}
		u, err := url.Parse(r.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return invalidField(field+".url", "remote URL %q must be https", r.URL)
		}
		if h := u.Hostname(); h == "localhost" || h == "127.0.0.1" || strings.HasSuffix(h, ".localhost") {
			return invalidField(field+".url", "remote URL %q must not be localhost", r.URL)
		}
	}
	return nil
}

// remoteConflict: a remote URL belongs to one server name while any of its
// versions that uses it is not deleted. Callers hold m.mu.
func (m *Memory) remoteConflict(name string, remotes []string) error {
	for other, vs := range m.servers {
		if other == name {
			continue
		}
		for _, v := range vs {
			if v.official.Status == StatusDeleted {
				continue
			}
			for _, u := range v.remotes {
				for _, want := range remotes {
					if u == want {
						return invalidField("remotes", "remote URL %s is already used by server %s", want, other)
					}
				}
			}
		}
	}
	return nil
}

// find returns the version, nil when absent. Callers hold m.mu.
func (m *Memory) find(name, version string) *memVersion {
	for _, v := range m.servers[name] {
		if v.version == version {
			return v
		}
	}
	return nil
}

// latest returns the version flagged latest, nil for an unknown server.
// Callers hold m.mu.
func (m *Memory) latest(name string) *memVersion {
	for _, v := range m.servers[name] {
		if v.official.IsLatest {
			return v
		}
	}
	return nil
}

// recalculateLatest flags the highest version that is not deleted, or the
// highest deleted one when all are, as the registry does after a status
// change. Callers hold m.mu.
func (m *Memory) recalculateLatest(name string) {
	vs := m.servers[name]
	pick := func(allowDeleted bool) *memVersion {
		var w *memVersion
		// Newest first, so a tie keeps the most recently published.
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			if !allowDeleted && v.official.Status == StatusDeleted {
				continue
			}
			if w == nil || compareVersions(v, w) > 0 {
				w = v
			}
		}
		return w
	}
	w := pick(false)
	if w == nil {
		w = pick(true)
	}
	for _, v := range vs {
		v.official.IsLatest = v == w
	}
}

// response is a copy the caller may keep and change.
func (v *memVersion) response() ServerResponse {
	var s ServerJSON
	_ = json.Unmarshal(v.raw, &s) // v.raw came from json.Marshal
	o := v.official
	return ServerResponse{Server: s, Meta: ResponseMeta{Official: &o}}
}

// compareVersions orders versions like the registry: semver by precedence;
// two non-semver versions by publish order; a semver above a non-semver.
func compareVersions(a, b *memVersion) int {
	sa, okA := parseSemver(a.version)
	sb, okB := parseSemver(b.version)
	switch {
	case okA && okB:
		return sa.compare(sb)
	case !okA && !okB:
		return cmp.Compare(a.seq, b.seq)
	case okA:
		return 1
	}
	return -1
}

// semver is a parsed semantic version; build metadata is dropped since it
// does not affect precedence.
type semver struct {
	core [3]string // major, minor, patch: digits without leading zeros
	pre  []string
}

// parseSemver accepts MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] with an
// optional "v" prefix, as the registry does.
func parseSemver(v string) (semver, bool) {
	v = strings.TrimPrefix(v, "v")
	var s semver
	if i := strings.IndexByte(v, '+'); i >= 0 {
		if !identifiers(v[i+1:], false) {
			return semver{}, false
		}
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		if !identifiers(v[i+1:], true) {
			return semver{}, false
		}
		s.pre = strings.Split(v[i+1:], ".")
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return semver{}, false
	}
	for i, p := range parts {
		if !numeric(p) || (len(p) > 1 && p[0] == '0') {
			return semver{}, false
		}
		s.core[i] = p
	}
	return s, true
}

const (
	digits     = "0123456789"
	identChars = digits + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
)

// identifiers checks dot-separated [0-9A-Za-z-]+ identifiers; numeric
// pre-release identifiers may not have leading zeros.
func identifiers(s string, pre bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" || strings.Trim(id, identChars) != "" {
			return false
		}
		if pre && numeric(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func (a semver) compare(b semver) int {
	for i := range a.core {
		if c := cmpNumeric(a.core[i], b.core[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1 // a release ranks above its pre-releases
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		nx, ny := numeric(x), numeric(y)
		var c int
		switch {
		case nx && ny:
			c = cmpNumeric(x, y)
		case nx:
			c = -1 // numeric identifiers rank below alphanumeric ones
		case ny:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.pre), len(b.pre))
}

func numeric(s string) bool { return s != "" && strings.Trim(s, digits) == "" }

// cmpNumeric compares digit strings of any length without overflow (no
// leading zeros, so the longer is larger).
func cmpNumeric(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
