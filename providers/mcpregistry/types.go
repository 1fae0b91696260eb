package mcpregistry

import (
	"encoding/json"
	"time"
)

// SchemaURL is the server.json schema the registry v1.8 validates against.
const SchemaURL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"

// PublisherMetaKey is the _meta key whose object the registry stores with a
// version as it was published (up to 4 KB); modelplane keeps its lifecycle
// metadata there.
const PublisherMetaKey = "io.modelcontextprotocol.registry/publisher-provided"

// officialMetaKey is the response _meta key holding the registry's own data.
const officialMetaKey = "io.modelcontextprotocol.registry/official"

// Transport types of remotes and packages.
const (
	TransportStreamableHTTP = "streamable-http"
	TransportSSE            = "sse"
	TransportStdio          = "stdio"
)

// Status is a version's lifecycle status in the registry.
type Status string

const (
	StatusActive     Status = "active"
	StatusDeprecated Status = "deprecated"
	StatusDeleted    Status = "deleted"
)

// Valid reports whether s is a status the registry knows.
func (s Status) Valid() bool {
	switch s {
	case StatusActive, StatusDeprecated, StatusDeleted:
		return true
	}
	return false
}

// ServerJSON is one version of an MCP server as published (server.json).
// Only the fields modelplane uses are typed; the registry accepts more.
type ServerJSON struct {
	Schema      string      `json:"$schema"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Title       string      `json:"title,omitempty"`
	Version     string      `json:"version"`
	WebsiteURL  string      `json:"websiteUrl,omitempty"`
	Repository  *Repository `json:"repository,omitempty"`
	Remotes     []Remote    `json:"remotes,omitempty"`
	Packages    []Package   `json:"packages,omitempty"`
	Meta        *ServerMeta `json:"_meta,omitempty"`
}

// Repository is where the server's source lives.
type Repository struct {
	URL       string `json:"url,omitempty"`
	Source    string `json:"source,omitempty"`
	ID        string `json:"id,omitempty"`
	Subfolder string `json:"subfolder,omitempty"`
}

// Remote is a hosted endpoint of the server. The registry requires https
// URLs that are not localhost, unique per server name.
type Remote struct {
	Type    string   `json:"type"`
	URL     string   `json:"url,omitempty"`
	Headers []Header `json:"headers,omitempty"`
}

// Header is an HTTP header a client sends to a remote (e.g. Authorization,
// with IsSecret and no Value: the client asks its user).
type Header struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	IsRequired  bool   `json:"isRequired,omitempty"`
	IsSecret    bool   `json:"isSecret,omitempty"`
	Value       string `json:"value,omitempty"`
	Default     string `json:"default,omitempty"`
}

// Package is an installable distribution of the server (npm, pypi, oci…).
type Package struct {
	RegistryType    string           `json:"registryType"`
	RegistryBaseURL string           `json:"registryBaseUrl,omitempty"`
	Identifier      string           `json:"identifier"`
	Version         string           `json:"version,omitempty"`
	FileSHA256      string           `json:"fileSha256,omitempty"`
	RuntimeHint     string           `json:"runtimeHint,omitempty"`
	Transport       PackageTransport `json:"transport"`
	Env             []EnvironmentVar `json:"environmentVariables,omitempty"`
	// Arguments are kept as the registry's JSON (positional/named arguments
	// with inputs and variables); modelplane does not interpret them.
	RuntimeArguments []json.RawMessage `json:"runtimeArguments,omitempty"`
	PackageArguments []json.RawMessage `json:"packageArguments,omitempty"`
}

// PackageTransport is how a client talks to an installed package.
type PackageTransport struct {
	Type string `json:"type"`
	URL  string `json:"url,omitempty"`
}

// EnvironmentVar is an environment variable a package needs.
type EnvironmentVar struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	IsRequired  bool   `json:"isRequired,omitempty"`
	IsSecret    bool   `json:"isSecret,omitempty"`
	Default     string `json:"default,omitempty"`
}

// ServerMeta is server.json's _meta.
type ServerMeta struct {
	// PublisherProvided is stored verbatim with the version (≤ 4 KB).
	PublisherProvided map[string]any `json:"io.modelcontextprotocol.registry/publisher-provided,omitempty"`
}

// Lifecycle returns the publisher-provided metadata (nil when there is none).
func (s ServerJSON) Lifecycle() map[string]any {
	if s.Meta == nil {
		return nil
	}
	return s.Meta.PublisherProvided
}

// ServerResponse is a published version with the registry's own metadata.
type ServerResponse struct {
	Server ServerJSON   `json:"server"`
	Meta   ResponseMeta `json:"_meta"`
	// AlreadyPublished is set by Publish when the version was in the
	// registry already with the same content (a retried publish).
	AlreadyPublished bool `json:"-"`
}

// ResponseMeta is the registry-managed _meta of a response.
type ResponseMeta struct {
	Official *Official `json:"io.modelcontextprotocol.registry/official,omitempty"`
}

// Official is what the registry records about a version.
type Official struct {
	Status          Status    `json:"status"`
	StatusChangedAt time.Time `json:"statusChangedAt"`
	StatusMessage   string    `json:"statusMessage,omitempty"`
	PublishedAt     time.Time `json:"publishedAt"`
	UpdatedAt       time.Time `json:"updatedAt,omitempty"`
	IsLatest        bool      `json:"isLatest"`
}

// Status is the version's status ("" when the registry sent none).
func (r ServerResponse) Status() Status {
	if r.Meta.Official == nil {
		return ""
	}
	return r.Meta.Official.Status
}

// serverList is GET /v0/servers/{name}/versions.
type serverList struct {
	Servers  []ServerResponse `json:"servers"`
	Metadata struct {
		NextCursor string `json:"nextCursor,omitempty"`
		Count      int    `json:"count"`
	} `json:"metadata"`
}

// problem is the registry's error body (RFC 9457 style, from huma).
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location,omitempty"`
		Value    any    `json:"value,omitempty"`
	} `json:"errors"`
}

// validation is POST /v0/validate's answer.
type validation struct {
	Valid  bool `json:"valid"`
	Issues []struct {
		Type     string `json:"type"`
		Path     string `json:"path"`
		Message  string `json:"message"`
		Severity string `json:"severity"`
	} `json:"issues"`
}
