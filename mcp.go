package modelplane

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// KindMCPServer marks a promotion of an MCP server version (Promotion.Kind);
// the empty kind is a model version.
const KindMCPServer = "mcp_server"

// MCP server states, as modelplane knows them (the registry's own status is
// active | deprecated | deleted).
const (
	MCPRegistered  = "registered"
	MCPValidated   = "validated"
	MCPApproved    = "approved"
	MCPPublished   = "published"
	MCPActive      = "active"      // serves a channel
	MCPDeprecated  = "deprecated"  // replaced, or rolled back
	MCPQuarantined = "quarantined" // its live tools drifted from the approved contract
	MCPRejected    = "rejected"
)

// MCPServer is one version of an MCP (Model Context Protocol) server: a
// lifecycle asset beside model versions, with the same approvals and audit.
type MCPServer struct {
	// Name is reverse-DNS with one slash, e.g. io.github.acme/weather.
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// RemoteURL is the https streamable-HTTP endpoint published in the
	// registry; Package is the alternative (npm, pypi, oci…).
	RemoteURL string      `json:"remote_url,omitempty"`
	Package   *MCPPackage `json:"package,omitempty"`
	// ValidateURL is where modelplane reaches the server to validate it when
	// the published URL is not reachable from here (private networks, tests).
	ValidateURL string   `json:"validate_url,omitempty"`
	Owner       string   `json:"owner"`
	Team        string   `json:"team"`
	RiskTier    RiskTier `json:"risk_tier"`
	DataDomains []string `json:"data_domains,omitempty"`

	Status       string `json:"status"`
	StatusReason string `json:"status_reason,omitempty"`
	// Contract is the approved tool contract: tool name → fingerprint.
	Contract     map[string]string `json:"contract,omitempty"`
	ContractHash string            `json:"contract_hash,omitempty"`
	CreatedBy    string            `json:"created_by"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// MCPPackage is a package distribution of an MCP server.
type MCPPackage struct {
	RegistryType string `json:"registry_type"` // npm | pypi | oci | nuget | mcpb
	Identifier   string `json:"identifier"`
	Version      string `json:"version,omitempty"`
	Transport    string `json:"transport,omitempty"` // stdio (default) | streamable-http | sse
}

// MCPChannel is a named pointer (prod, staging…) to the version agents should
// use. Kept here, not in the registry: the registry's "latest" counts
// pre-releases and deprecated versions.
type MCPChannel struct {
	Server    string    `json:"server"`
	Channel   string    `json:"channel"`
	Version   string    `json:"version"`
	Previous  string    `json:"previous,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

var (
	mcpNameRe = regexp.MustCompile(`^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$`)
	semverRe  = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$`)
)

// Validate checks a registration and names the first bad field.
func (s MCPServer) Validate() error {
	switch {
	case !mcpNameRe.MatchString(s.Name) || len(s.Name) > 200 || !strings.Contains(strings.SplitN(s.Name, "/", 2)[0], "."):
		return FieldError("name", "must be reverse-DNS with one slash, e.g. io.github.acme/weather, got %q", s.Name)
	case !semverRe.MatchString(s.Version):
		return FieldError("version", "must be a semantic version such as 1.2.0, got %q", s.Version)
	case strings.TrimSpace(s.Description) == "":
		return FieldError("description", "is required (the registry shows it)")
	case s.RemoteURL == "" && s.Package == nil:
		return FieldError("remote_url", "give remote_url or package")
	case strings.TrimSpace(s.Owner) == "":
		return FieldError("owner", "is required")
	case strings.TrimSpace(s.Team) == "":
		return FieldError("team", "is required")
	case !s.RiskTier.Valid():
		return FieldError("risk_tier", "must be low, medium, high or critical, got %q", s.RiskTier)
	}
	if s.RemoteURL != "" {
		u, err := url.Parse(s.RemoteURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return FieldError("remote_url", "must be an https URL (the registry refuses others), got %q", s.RemoteURL)
		}
	}
	if s.ValidateURL != "" {
		if u, err := url.Parse(s.ValidateURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return FieldError("validate_url", "must be an http(s) URL, got %q", s.ValidateURL)
		}
	}
	if s.Package != nil && (s.Package.RegistryType == "" || s.Package.Identifier == "") {
		return FieldError("package", "needs registry_type and identifier")
	}
	return nil
}

// Endpoint is where modelplane connects to validate the server.
func (s MCPServer) Endpoint() (string, error) {
	if s.ValidateURL != "" {
		return s.ValidateURL, nil
	}
	if s.RemoteURL != "" {
		return s.RemoteURL, nil
	}
	return "", fmt.Errorf("%s@%s has no remote_url or validate_url to validate against", s.Name, s.Version)
}
