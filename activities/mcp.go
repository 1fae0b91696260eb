package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mcp"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// MCPRef names an MCP server version and the channel it is promoted to.
type MCPRef struct {
	Name, Version, Channel string
}

func (a *Activities) mcpServer(ctx context.Context, in MCPRef) (modelplane.MCPServer, error) {
	s, err := a.Store.GetMCPServer(ctx, in.Name, in.Version)
	return s, nonRetryable(err)
}

// validateMCP connects to the server and turns the validator's report into
// our evidence: every check, and the tool contract the approval binds to.
func (a *Activities) validateMCP(ctx context.Context, s modelplane.MCPServer) (modelplane.ValidationReport, mcp.Report, error) {
	endpoint, err := s.Endpoint()
	if err != nil {
		return modelplane.ValidationReport{}, mcp.Report{}, nonRetryable(modelplane.FieldError("validate_url", "%v", err))
	}
	r, err := mcp.Validate(ctx, endpoint, mcp.Options{HTTPClient: a.HTTP})
	if err != nil {
		return modelplane.ValidationReport{}, r, nonRetryable(err)
	}
	rep := modelplane.ValidationReport{Passed: r.Passed, Contract: r.Fingerprints, EvidenceHash: r.ContractHash}
	rep.Checks = append(rep.Checks, modelplane.Check{Name: "handshake", Passed: r.Protocol != "",
		Detail: fmt.Sprintf("protocol %s, server %s %s, capabilities %s", r.Protocol, r.ServerName, r.ServerVersion, strings.Join(r.Capabilities, ","))})
	rep.Checks = append(rep.Checks, modelplane.Check{Name: "tools", Passed: len(r.Tools) > 0, Detail: fmt.Sprintf("%d tools, contract %s", len(r.Tools), r.ContractHash)})
	for _, f := range r.Findings {
		name := f.Check
		if f.Tool != "" {
			name = f.Tool + ": " + f.Check
		}
		rep.Checks = append(rep.Checks, modelplane.Check{Name: name, Passed: f.Severity != "error", Detail: f.Severity + ": " + f.Message})
	}
	return rep, r, nil
}

// ValidateMCP is the validation stage of an MCP server promotion.
func (a *Activities) ValidateMCP(ctx context.Context, in MCPRef) (ValidateResult, error) {
	s, err := a.mcpServer(ctx, in)
	if err != nil {
		return ValidateResult{}, err
	}
	rep, _, err := a.validateMCP(ctx, s)
	if err != nil {
		return ValidateResult{}, err
	}
	status := modelplane.MCPValidated
	if !rep.Passed {
		status = modelplane.MCPRejected
	}
	if _, err := a.Store.UpdateMCPServer(ctx, in.Name, in.Version, func(m *modelplane.MCPServer) {
		if m.Status == modelplane.MCPRegistered || m.Status == modelplane.MCPValidated {
			m.Status, m.StatusReason = status, strings.Join(rep.Failed(), ", ")
		}
	}); err != nil {
		return ValidateResult{}, err
	}
	ch, err := a.Store.GetChannel(ctx, in.Name, in.Channel)
	if err != nil {
		return ValidateResult{}, err
	}
	return ValidateResult{Report: rep, RiskTier: s.RiskTier, RequiredApprovals: s.RiskTier.BaseApprovals(), Stable: ch.Version}, nil
}

// MCPStatusInput sets what modelplane knows of a server version.
type MCPStatusInput struct {
	MCPRef
	Status, Reason string
	// Contract is the approved tool contract (with Status approved).
	Contract     map[string]string
	ContractHash string
}

// SetMCPStatus records a server version's state (and its approved contract).
func (a *Activities) SetMCPStatus(ctx context.Context, in MCPStatusInput) error {
	_, err := a.Store.UpdateMCPServer(ctx, in.Name, in.Version, func(m *modelplane.MCPServer) {
		m.Status, m.StatusReason = in.Status, in.Reason
		if in.Contract != nil {
			m.Contract, m.ContractHash = in.Contract, in.ContractHash
		}
	})
	return nonRetryable(err)
}

// PublishMCPInput publishes an approved server version.
type PublishMCPInput struct {
	MCPRef
	PromotionID string
	Approvers   []string
}

func (a *Activities) registry() (Registry, error) {
	if a.MCPRegistry == nil {
		return nil, temporal.NewNonRetryableApplicationError("no MCP registry configured (MODELPLANE_MCP_REGISTRY_URL)", "invalid", nil)
	}
	return a.MCPRegistry, nil
}

// PublishMCP checks that the live tools are still the ones approved — an
// approval holds only for the evidence it saw — and publishes the version,
// with the promotion, approvers and contract in the publisher metadata.
func (a *Activities) PublishMCP(ctx context.Context, in PublishMCPInput) (string, error) {
	reg, err := a.registry()
	if err != nil {
		return "", err
	}
	s, err := a.mcpServer(ctx, in.MCPRef)
	if err != nil {
		return "", err
	}
	if len(s.Contract) == 0 {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s@%s has no approved tool contract", s.Name, s.Version), "invalid", nil)
	}
	_, live, err := a.validateMCP(ctx, s)
	if err != nil {
		return "", err
	}
	if changes := mcp.Drift(s.Contract, live); len(changes) > 0 {
		return "", temporal.NewNonRetryableApplicationError("the tools changed since they were approved, so the approval no longer holds: "+describeChanges(changes), "evidence_changed", nil)
	}
	sj := mcpregistry.ServerJSON{Schema: mcpregistry.SchemaURL, Name: s.Name, Description: s.Description, Version: s.Version,
		Meta: &mcpregistry.ServerMeta{PublisherProvided: map[string]any{"modelplane": map[string]any{
			"promotion_id": in.PromotionID, "approvers": in.Approvers, "contract_hash": s.ContractHash, "channel": in.Channel,
			"owner": s.Owner, "team": s.Team, "risk_tier": s.RiskTier, "data_domains": s.DataDomains}}}}
	if s.RemoteURL != "" {
		sj.Remotes = []mcpregistry.Remote{{Type: mcpregistry.TransportStreamableHTTP, URL: s.RemoteURL}}
	}
	if p := s.Package; p != nil {
		tr := p.Transport
		if tr == "" {
			tr = mcpregistry.TransportStdio
		}
		sj.Packages = []mcpregistry.Package{{RegistryType: p.RegistryType, Identifier: p.Identifier, Version: p.Version, Transport: mcpregistry.PackageTransport{Type: tr}}}
	}
	res, err := reg.Publish(ctx, sj)
	if err != nil {
		return "", nonRetryable(err)
	}
	if err := a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: in.MCPRef, Status: modelplane.MCPPublished}); err != nil {
		return "", err
	}
	if res.AlreadyPublished {
		return "already published", nil
	}
	return "published", nil
}

func describeChanges(cs []mcp.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind+" "+c.Tool)
	}
	return strings.Join(out, ", ")
}

// MoveChannel points the channel at the version, makes it active in the
// registry and deprecates the version it replaces, naming the replacement.
// It returns the replaced version. Every step is idempotent.
func (a *Activities) MoveChannel(ctx context.Context, in MCPRef) (string, error) {
	reg, err := a.registry()
	if err != nil {
		return "", err
	}
	ch, err := a.Store.GetChannel(ctx, in.Name, in.Channel)
	if err != nil {
		return "", err
	}
	previous := ch.Version
	if previous == in.Version { // a retry after the move
		previous = ch.Previous
	}
	if _, err := reg.SetStatus(ctx, in.Name, in.Version, mcpregistry.StatusActive, ""); err != nil {
		return "", nonRetryable(err)
	}
	if err := a.Store.PutChannel(ctx, modelplane.MCPChannel{Server: in.Name, Channel: in.Channel, Version: in.Version, Previous: previous}); err != nil {
		return "", err
	}
	if previous != "" {
		msg := fmt.Sprintf("superseded by %s on channel %s", in.Version, in.Channel)
		if _, err := reg.SetStatus(ctx, in.Name, previous, mcpregistry.StatusDeprecated, msg); err != nil {
			return "", nonRetryable(err)
		}
		if err := a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: MCPRef{Name: in.Name, Version: previous}, Status: modelplane.MCPDeprecated, Reason: msg}); err != nil {
			return "", err
		}
	}
	return previous, a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: in, Status: modelplane.MCPActive})
}

// RollbackChannelInput puts a channel back on the previous version.
type RollbackChannelInput struct {
	MCPRef
	Previous, Reason string
}

// RollbackChannel re-activates the previous version and deprecates the bad one.
func (a *Activities) RollbackChannel(ctx context.Context, in RollbackChannelInput) error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	prev, err := a.mcpServer(ctx, MCPRef{Name: in.Name, Version: in.Previous})
	if err != nil {
		return err
	}
	if prev.Status == modelplane.MCPQuarantined {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the previous version %s is quarantined (%s): nothing safe to roll back to", in.Previous, prev.StatusReason), "invalid", nil)
	}
	if _, err := reg.SetStatus(ctx, in.Name, in.Previous, mcpregistry.StatusActive, ""); err != nil {
		return nonRetryable(err)
	}
	if err := a.Store.PutChannel(ctx, modelplane.MCPChannel{Server: in.Name, Channel: in.Channel, Version: in.Previous}); err != nil {
		return err
	}
	if err := a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: MCPRef{Name: in.Name, Version: in.Previous}, Status: modelplane.MCPActive}); err != nil {
		return err
	}
	msg := truncate("rolled back to "+in.Previous+": "+in.Reason, 500)
	if _, err := reg.SetStatus(ctx, in.Name, in.Version, mcpregistry.StatusDeprecated, msg); err != nil {
		return nonRetryable(err)
	}
	return a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: in.MCPRef, Status: modelplane.MCPDeprecated, Reason: msg})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// RevalidationScheduleID is the Temporal schedule re-validating a channel's server.
func RevalidationScheduleID(name, channel string) string {
	return "mcp-revalidate/" + name + "/" + channel
}

// MCPRevalidateWorkflow is the workflow type the schedule runs (registered by the worker).
const MCPRevalidateWorkflow = "MCPRevalidate"

// EnsureRevalidation keeps a schedule that re-validates the channel's
// server against its approved contract (created once; later calls keep it).
func (a *Activities) EnsureRevalidation(ctx context.Context, in MCPRef) error {
	every := a.MCPRevalidateEvery
	if every <= 0 {
		every = time.Hour
	}
	_, err := a.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   RevalidationScheduleID(in.Name, in.Channel),
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action: &client.ScheduleWorkflowAction{ID: RevalidationScheduleID(in.Name, in.Channel), Workflow: MCPRevalidateWorkflow, TaskQueue: activity.GetInfo(ctx).TaskQueue,
			Args: []any{MCPRef{Name: in.Name, Channel: in.Channel}}, StaticSummary: fmt.Sprintf("Re-validate MCP server %s on channel %s", in.Name, in.Channel)},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	return nil
}

// RevalidateResult is what a re-validation found.
type RevalidateResult struct {
	Version     string   `json:"version"`
	Changes     []string `json:"changes,omitempty"`
	Quarantined bool     `json:"quarantined"`
}

// RevalidateMCP compares the live tools of the channel's version with the
// approved contract. A drifted server is quarantined: deprecated in the
// registry with the reason, recorded in the audit, and announced as a drift
// event, until a new version is approved.
func (a *Activities) RevalidateMCP(ctx context.Context, in MCPRef) (RevalidateResult, error) {
	ch, err := a.Store.GetChannel(ctx, in.Name, in.Channel)
	if err != nil || ch.Version == "" {
		return RevalidateResult{}, err
	}
	res := RevalidateResult{Version: ch.Version}
	s, err := a.mcpServer(ctx, MCPRef{Name: in.Name, Version: ch.Version})
	if err != nil {
		return res, err
	}
	if s.Status == modelplane.MCPQuarantined {
		res.Quarantined = true
		return res, nil
	}
	_, live, err := a.validateMCP(ctx, s)
	if err != nil {
		return res, err
	}
	changes := mcp.Drift(s.Contract, live)
	if len(changes) == 0 {
		return res, nil
	}
	for _, c := range changes {
		res.Changes = append(res.Changes, c.Kind+" "+c.Tool)
	}
	sort.Strings(res.Changes)
	reason := truncate("tool contract drift under the same version: "+strings.Join(res.Changes, ", "), 500)
	reg, err := a.registry()
	if err != nil {
		return res, err
	}
	if _, err := reg.SetStatus(ctx, s.Name, s.Version, mcpregistry.StatusDeprecated, reason); err != nil {
		return res, nonRetryable(err)
	}
	if err := a.SetMCPStatus(ctx, MCPStatusInput{MCPRef: MCPRef{Name: s.Name, Version: s.Version}, Status: modelplane.MCPQuarantined, Reason: reason}); err != nil {
		return res, err
	}
	// One record per drifted contract: a retry or the next pass finds it written.
	sum := sha256.Sum256([]byte(live.ContractHash))
	rec := modelplane.AuditRecord{Key: "mcp/" + s.Name + "@" + s.Version + "/quarantine/" + hex.EncodeToString(sum[:6]), Time: a.now(), Actor: "system",
		Action: modelplane.AuditMCPQuarantined, Subject: s.Name + "@" + s.Version + " → " + in.Channel, Model: s.Name, Target: in.Channel, Decision: "quarantined",
		Details: map[string]any{"changes": res.Changes, "approved_contract": s.ContractHash, "live_contract": live.ContractHash}}
	if err := a.Store.AppendAudit(ctx, rec); err != nil {
		return res, err
	}
	if ev, ok := modelplane.EventFor(rec); ok && len(a.Sinks) > 0 {
		if err := a.Publish(ctx, PublishInput{Events: []modelplane.Event{ev}}); err != nil {
			return res, err
		}
	}
	res.Quarantined = true
	return res, nil
}
