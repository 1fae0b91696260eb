package mcpregistry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mcpregistry"
)

// registry is what Client and Memory share: the memory one must stand in
// for the real one wherever modelplane holds either.
type registry interface {
	Publish(ctx context.Context, s mcpregistry.ServerJSON) (mcpregistry.ServerResponse, error)
	SetStatus(ctx context.Context, name, version string, status mcpregistry.Status, message string) (mcpregistry.ServerResponse, error)
	Get(ctx context.Context, name, version string) (mcpregistry.ServerResponse, error)
	Versions(ctx context.Context, name string) ([]mcpregistry.ServerResponse, error)
}

var (
	_ registry = (*mcpregistry.Client)(nil)
	_ registry = (*mcpregistry.Memory)(nil)
)

func wantInvalid(t *testing.T, what string, err error, also error) {
	t.Helper()
	if !errors.Is(err, modelplane.ErrInvalid) || (also != nil && !errors.Is(err, also)) {
		t.Fatalf("%s: %v, want ErrInvalid (and %v)", what, err, also)
	}
}

func TestMemoryPublishGetAndDuplicate(t *testing.T) {
	m := mcpregistry.NewMemory()
	c := context.Background()
	s := server("com.example.mem", "weather", "1.0.0")

	got, err := m.Publish(c, s)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	o := got.Meta.Official
	if got.AlreadyPublished || got.Status() != mcpregistry.StatusActive || !o.IsLatest || o.StatusMessage != "" {
		t.Fatalf("published version: already=%v %+v, want active latest", got.AlreadyPublished, o)
	}
	if o.PublishedAt.IsZero() || !o.UpdatedAt.Equal(o.PublishedAt) || !o.StatusChangedAt.Equal(o.PublishedAt) {
		t.Fatalf("publish times: %+v", o)
	}
	if got.Server.Schema != mcpregistry.SchemaURL {
		t.Fatalf("schema defaulted to %q", got.Server.Schema)
	}

	// What the caller keeps or changes afterwards is not the stored copy.
	s.Meta.PublisherProvided["modelplane"].(map[string]any)["approval_id"] = "changed by the caller"
	got.Server.Remotes[0].URL = "https://elsewhere.example.com/mcp"
	got.Meta.Official.Status = mcpregistry.StatusDeleted

	read, err := m.Get(c, s.Name, "1.0.0")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	mp, _ := read.Server.Lifecycle()["modelplane"].(map[string]any)
	// Numbers come back as float64, as they do through the real registry's JSON.
	if mp["approval_id"] != "appr-42" || mp["contract_hash"] != "sha256:abc" || mp["tools"] != float64(3) {
		t.Fatalf("publisher-provided metadata came back as %#v", read.Server.Lifecycle())
	}
	if read.Server.Remotes[0].URL != "https://weather.com.example.mem.example.com/mcp" || read.Status() != mcpregistry.StatusActive {
		t.Fatalf("stored version was changed through a returned copy: %+v %q", read.Server.Remotes, read.Status())
	}
	if latest, err := m.Get(c, s.Name, "latest"); err != nil || latest.Server.Version != "1.0.0" {
		t.Fatalf("get latest: %q, %v", latest.Server.Version, err)
	}

	// A retried publish of the same content is idempotent.
	again, err := m.Publish(c, server("com.example.mem", "weather", "1.0.0"))
	if err != nil || !again.AlreadyPublished || again.Server.Version != "1.0.0" || !again.Meta.Official.PublishedAt.Equal(o.PublishedAt) {
		t.Fatalf("retried publish: %+v, %v", again, err)
	}
	// An explicit $schema equal to the default is the same content.
	explicit := server("com.example.mem", "weather", "1.0.0")
	explicit.Schema = mcpregistry.SchemaURL
	if again, err := m.Publish(c, explicit); err != nil || !again.AlreadyPublished {
		t.Fatalf("retried publish with the schema spelled out: %v, %v", again.AlreadyPublished, err)
	}

	changed := server("com.example.mem", "weather", "1.0.0")
	changed.Description = "Something else entirely"
	_, err = m.Publish(c, changed)
	wantInvalid(t, "publish of other content under the same version", err, mcpregistry.ErrAlreadyPublished)

	// A deleted version still holds its number.
	if _, err := m.SetStatus(c, s.Name, "1.0.0", mcpregistry.StatusDeleted, "gone"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Publish(c, changed)
	wantInvalid(t, "publish over a deleted version", err, mcpregistry.ErrAlreadyPublished)

	_, err = m.Get(c, s.Name, "9.9.9")
	wantInvalid(t, "get of an unknown version", err, mcpregistry.ErrNotFound)
	_, err = m.Get(c, "com.example.mem/never", "latest")
	wantInvalid(t, "get latest of an unknown server", err, mcpregistry.ErrNotFound)
}

func TestMemoryLatest(t *testing.T) {
	cases := []struct {
		name      string
		published []string
		latest    string
	}{
		{"higher later", []string{"1.0.0", "1.1.0"}, "1.1.0"},
		{"lower later", []string{"1.1.0", "1.0.0"}, "1.1.0"},
		{"numeric, not lexical", []string{"1.10.0", "1.9.0", "1.2.0"}, "1.10.0"},
		{"pre-releases count", []string{"1.0.0", "1.1.0-rc.1"}, "1.1.0-rc.1"},
		{"release above its pre-release", []string{"1.1.0", "1.1.0-rc.1"}, "1.1.0"},
		{"pre-release precedence", []string{"1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-beta.2", "1.0.0-beta", "1.0.0-alpha.beta", "1.0.0-alpha.1", "1.0.0-alpha"}, "1.0.0-rc.1"},
		{"numeric pre-release below alphanumeric", []string{"1.0.0-alpha", "1.0.0-1"}, "1.0.0-alpha"},
		{"longer pre-release above its prefix", []string{"1.0.0-alpha.1", "1.0.0-alpha"}, "1.0.0-alpha.1"},
		{"build metadata ignored", []string{"1.0.0+b2", "1.0.0+b1"}, "1.0.0+b2"},
		{"v prefix", []string{"v2.0.0", "1.5.0"}, "v2.0.0"},
		{"huge numbers", []string{"1.0.99999999999999999999", "1.0.100000000000000000000"}, "1.0.100000000000000000000"},
		{"non-semver: the last published", []string{"2024.10", "2024.9"}, "2024.9"},
		{"semver above non-semver", []string{"1.0.0", "nightly"}, "1.0.0"},
		{"non-semver below semver", []string{"nightly", "0.0.1"}, "0.0.1"},
		{"leading zero is not semver", []string{"1.0.0", "01.0.0"}, "1.0.0"},
		{"two parts is not semver", []string{"1.0.0", "2.0"}, "1.0.0"},
		{"bad pre-release is not semver", []string{"1.0.0", "2.0.0-01", "2.0.0-", "2.0.0-a..b", "2.0.0+", "2.0.0-a_b"}, "1.0.0"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mcpregistry.NewMemory()
			ns := fmt.Sprintf("com.example.latest%d", i)
			for _, v := range tc.published {
				if _, err := m.Publish(context.Background(), server(ns, "tool", v)); err != nil {
					t.Fatalf("publish %s: %v", v, err)
				}
			}
			checkLatest(t, m, ns+"/tool", tc.latest)
		})
	}
}

// checkLatest: exactly one version is flagged latest, and Get agrees.
func checkLatest(t *testing.T, m *mcpregistry.Memory, name, want string) {
	t.Helper()
	vs, err := m.Versions(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var flagged []string
	for _, v := range vs {
		if v.Meta.Official.IsLatest {
			flagged = append(flagged, v.Server.Version)
		}
	}
	if len(flagged) != 1 || flagged[0] != want {
		t.Fatalf("versions flagged latest: %v, want [%s]", flagged, want)
	}
	got, err := m.Get(context.Background(), name, "latest")
	if err != nil || got.Server.Version != want || !got.Meta.Official.IsLatest {
		t.Fatalf("get latest: %q, %v, want %s", got.Server.Version, err, want)
	}
}

func TestMemoryVersionsAndStatus(t *testing.T) {
	m := mcpregistry.NewMemory()
	c := context.Background()
	ns := "com.example.status"
	name := ns + "/tools"

	if vs, err := m.Versions(c, name); err != nil || vs != nil {
		t.Fatalf("versions of an unpublished server: %v, %v", vs, err)
	}
	for _, v := range []string{"1.0.0", "1.2.0", "1.1.0"} {
		if _, err := m.Publish(c, server(ns, "tools", v)); err != nil {
			t.Fatalf("publish %s: %v", v, err)
		}
	}
	vs, err := m.Versions(c, name)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, v := range vs {
		order = append(order, v.Server.Version)
	}
	if strings.Join(order, " ") != "1.1.0 1.2.0 1.0.0" {
		t.Fatalf("versions in order %v, want the most recently published first", order)
	}

	before, _ := m.Get(c, name, "1.2.0")
	const why = "superseded by 1.3.0; approval appr-43"
	dep, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusDeprecated, why)
	if err != nil {
		t.Fatalf("deprecate: %v", err)
	}
	o := dep.Meta.Official
	if o.Status != mcpregistry.StatusDeprecated || o.StatusMessage != why || o.StatusChangedAt.Before(before.Meta.Official.StatusChangedAt) ||
		o.UpdatedAt.Before(o.StatusChangedAt) || !o.PublishedAt.Equal(before.Meta.Official.PublishedAt) {
		t.Fatalf("deprecated version: %+v (was %+v)", o, before.Meta.Official)
	}
	// A deprecated version stays latest.
	checkLatest(t, m, name, "1.2.0")

	// The same status and message again changes nothing and is no error.
	again, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusDeprecated, why)
	if err != nil || *again.Meta.Official != *o {
		t.Fatalf("repeated deprecate: %+v, %v, want %+v", again.Meta.Official, err, o)
	}
	// A new message under the same status: StatusChangedAt stays.
	re, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusDeprecated, "better reason")
	if err != nil || re.Meta.Official.StatusMessage != "better reason" || !re.Meta.Official.StatusChangedAt.Equal(o.StatusChangedAt) {
		t.Fatalf("new message: %+v, %v", re.Meta.Official, err)
	}
	// An empty message clears it, as omitting statusMessage does.
	if cl, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusDeprecated, ""); err != nil || cl.Meta.Official.StatusMessage != "" {
		t.Fatalf("cleared message: %+v, %v", cl.Meta.Official, err)
	}

	// Re-activation drops the message, however long.
	act, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusActive, strings.Repeat("x", 600))
	if err != nil || act.Status() != mcpregistry.StatusActive || act.Meta.Official.StatusMessage != "" {
		t.Fatalf("re-activate: %+v, %v", act.Meta.Official, err)
	}
	if again, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusActive, ""); err != nil || again.Status() != mcpregistry.StatusActive {
		t.Fatalf("activate an active version: %v", err)
	}

	// Deleting the latest hands latest to the highest version left; deleted
	// versions stay readable.
	if _, err := m.SetStatus(c, name, "1.2.0", mcpregistry.StatusDeleted, "withdrawn"); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, m, name, "1.1.0")
	if del, err := m.Get(c, name, "1.2.0"); err != nil || del.Status() != mcpregistry.StatusDeleted || del.Meta.Official.StatusMessage != "withdrawn" {
		t.Fatalf("get of a deleted version: %+v, %v", del.Meta.Official, err)
	}
	// A publish compares with the current latest only: 1.1.5 beats 1.1.0
	// even though the deleted 1.2.0 is higher.
	if p, err := m.Publish(c, server(ns, "tools", "1.1.5")); err != nil || !p.Meta.Official.IsLatest {
		t.Fatalf("publish after a delete: latest=%v, %v", p.Meta.Official.IsLatest, err)
	}
	checkLatest(t, m, name, "1.1.5")
	// With every version deleted the highest deleted one keeps latest.
	for _, v := range []string{"1.0.0", "1.1.0", "1.1.5"} {
		if _, err := m.SetStatus(c, name, v, mcpregistry.StatusDeleted, ""); err != nil {
			t.Fatal(err)
		}
	}
	checkLatest(t, m, name, "1.2.0")
	if _, err := m.SetStatus(c, name, "1.0.0", mcpregistry.StatusDeprecated, "back, deprecated"); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, m, name, "1.0.0")

	_, err = m.SetStatus(c, name, "1.0.0", "retired", "")
	var fe *modelplane.Error
	if wantInvalid(t, "unknown status", err, nil); !errors.As(err, &fe) || fe.Field != "status" {
		t.Fatalf("unknown status: %v, want a field error on status", err)
	}
	_, err = m.SetStatus(c, name, "1.0.0", mcpregistry.StatusDeprecated, strings.Repeat("x", mcpregistry.MaxStatusMessage+1))
	wantInvalid(t, "status message too long", err, nil)
	// The limit counts characters, not bytes.
	if _, err := m.SetStatus(c, name, "1.0.0", mcpregistry.StatusDeprecated, strings.Repeat("é", mcpregistry.MaxStatusMessage)); err != nil {
		t.Fatalf("500 two-byte characters: %v", err)
	}
	_, err = m.SetStatus(c, ns+"/never", "1.0.0", mcpregistry.StatusDeprecated, "x")
	wantInvalid(t, "status of an unknown server", err, mcpregistry.ErrNotFound)
	_, err = m.SetStatus(c, name, "7.0.0", mcpregistry.StatusActive, "")
	wantInvalid(t, "status of an unknown version", err, mcpregistry.ErrNotFound)
}

func TestMemoryRefusals(t *testing.T) {
	m := mcpregistry.NewMemory()
	c := context.Background()
	ns := "com.example.refused"
	cases := []struct {
		name  string
		edit  func(s *mcpregistry.ServerJSON)
		field string
	}{
		{"no name", func(s *mcpregistry.ServerJSON) { s.Name = "" }, "name"},
		{"name without namespace", func(s *mcpregistry.ServerJSON) { s.Name = "weather" }, "name"},
		{"no version", func(s *mcpregistry.ServerJSON) { s.Version = "" }, "version"},
		{"reserved version", func(s *mcpregistry.ServerJSON) { s.Version = "latest" }, "version"},
		{"no description", func(s *mcpregistry.ServerJSON) { s.Description = "" }, "description"},
		{"oversized _meta", func(s *mcpregistry.ServerJSON) {
			s.Meta.PublisherProvided["blob"] = strings.Repeat("x", mcpregistry.MaxPublisherMeta)
		}, "_meta"},
		{"http remote", func(s *mcpregistry.ServerJSON) { s.Remotes[0].URL = "http://weather.example.com/mcp" }, "remotes[0].url"},
		{"localhost remote", func(s *mcpregistry.ServerJSON) { s.Remotes[0].URL = "https://localhost:8443/mcp" }, "remotes[0].url"},
		{"loopback remote", func(s *mcpregistry.ServerJSON) { s.Remotes[0].URL = "https://127.0.0.1/mcp" }, "remotes[0].url"},
		{".localhost remote", func(s *mcpregistry.ServerJSON) { s.Remotes[0].URL = "https://notes.localhost/mcp" }, "remotes[0].url"},
		{"not a URL", func(s *mcpregistry.ServerJSON) { s.Remotes[0].URL = "::" }, "remotes[0].url"},
		{"stdio remote", func(s *mcpregistry.ServerJSON) { s.Remotes[0].Type = mcpregistry.TransportStdio }, "remotes[0].type"},
	}
	for _, tc := range cases {
		s := server(ns, "weather", "1.0.0")
		tc.edit(&s)
		_, err := m.Publish(c, s)
		var fe *modelplane.Error
		if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("publish with %s: %v, want ErrInvalid naming %s", tc.name, err, tc.field)
		}
	}
	if vs, _ := m.Versions(c, ns+"/weather"); len(vs) != 0 {
		t.Fatalf("refused publishes stored %d versions", len(vs))
	}

	// A remote URL belongs to one server name while a version using it lives.
	a := server(ns, "a", "1.0.0")
	if _, err := m.Publish(c, a); err != nil {
		t.Fatal(err)
	}
	b := server(ns, "b", "1.0.0")
	b.Remotes = a.Remotes
	_, err := m.Publish(c, b)
	if wantInvalid(t, "publish of another server's remote", err, nil); !strings.Contains(err.Error(), ns+"/a") {
		t.Fatalf("conflict error does not name the owner: %v", err)
	}
	// The same server may reuse its URL across versions.
	a2 := server(ns, "a", "1.1.0")
	a2.Remotes = a.Remotes
	if _, err := m.Publish(c, a2); err != nil {
		t.Fatalf("new version on the same remote: %v", err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := m.SetStatus(c, a.Name, v, mcpregistry.StatusDeleted, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Publish(c, b); err != nil {
		t.Fatalf("publish on the remote of a deleted server: %v", err)
	}
	// Now a deleted version of a cannot take its remote back.
	_, err = m.SetStatus(c, a.Name, "1.0.0", mcpregistry.StatusActive, "")
	wantInvalid(t, "re-activating onto a taken remote", err, nil)
	if got, _ := m.Get(c, a.Name, "1.0.0"); got.Status() != mcpregistry.StatusDeleted {
		t.Fatalf("refused re-activation changed the status to %q", got.Status())
	}
}

func TestMemoryCanceledContext(t *testing.T) {
	m := mcpregistry.NewMemory()
	c, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Publish(c, server("com.example.ctx", "x", "1.0.0"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("publish with a canceled context: %v, want context.Canceled, retryable", err)
	}
	if _, err := m.Get(c, "com.example.ctx/x", "1.0.0"); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a canceled context: %v", err)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := mcpregistry.NewMemory()
	c := context.Background()
	ns := "com.example.race"
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 20 {
		v := fmt.Sprintf("1.%d.0", i)
		for range 3 { // each version published three times at once: one wins, two are retries
			wg.Go(func() {
				if _, err := m.Publish(c, server(ns, "tool", v)); err != nil {
					errs <- err
				}
			})
		}
		wg.Go(func() {
			_, _ = m.SetStatus(c, ns+"/tool", v, mcpregistry.StatusDeprecated, "racing")
			_, _ = m.Get(c, ns+"/tool", "latest")
			_, _ = m.Versions(c, ns+"/tool")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent publish: %v", err)
	}
	vs, _ := m.Versions(c, ns+"/tool")
	if len(vs) != 20 {
		t.Fatalf("%d versions stored, want 20", len(vs))
	}
	checkLatest(t, m, ns+"/tool", "1.19.0")
}
