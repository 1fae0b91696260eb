package modelplane

import (
	"context"
	"errors"
	"time"
)

// Health is what a provider measured for one version over a window.
// NoData means nothing was observed: analysis treats it as inconclusive, never as a pass.
type Health struct {
	Version      string  `json:"version"`
	Requests     int64   `json:"requests"`
	ErrorRate    float64 `json:"error_rate"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	Drift        float64 `json:"drift"`
	NoData       bool    `json:"no_data,omitempty"`
}

// Shadow is a candidate receiving mirrored requests whose answers are discarded.
type Shadow struct {
	Version string `json:"version"`
	Percent int    `json:"percent"`
}

// EndpointState is what a provider reports for a model on a target.
type EndpointState struct {
	Traffic TrafficSplit `json:"traffic"`
	Shadow  *Shadow      `json:"shadow,omitempty"`
	// Versions can serve on the endpoint without another registration:
	// deployed (warm), or registered there and deployed by SetTraffic.
	Versions []string `json:"versions"`
	// Busy says the platform is still applying a change (e.g. "Updating").
	Busy string `json:"busy,omitempty"`
}

// Op is a change a provider has started but may not have finished: a
// long-running operation, an endpoint update, a new resource generation.
// The zero Op means the change is already complete. Workflows keep Ops in
// their state and poll them from short activities, so no worker slot ever
// sleeps on a cloud operation and a restarted worker resumes the wait.
type Op struct {
	// ID is the provider's handle: an LRO name, "endpoint@config", "name@generation".
	ID string `json:"id,omitempty"`
	// What says in words what is being waited for.
	What string `json:"what,omitempty"`
}

// Pending reports whether there is anything to wait for.
func (o Op) Pending() bool { return o.ID != "" }

// OpStatus is what polling an Op found.
type OpStatus struct {
	Done bool `json:"done"`
	// Failed: the operation ended without effect; Reason says why, in the platform's words.
	Failed bool   `json:"failed,omitempty"`
	Reason string `json:"reason,omitempty"`
	// RolledBack: the platform undid the change by itself (SageMaker's
	// alarm-driven auto-rollback). Done and Failed are set too.
	RolledBack bool `json:"rolled_back,omitempty"`
	// NeedsHuman: the platform is stuck in a state only an operator can fix
	// (SageMaker UpdateRollbackFailed).
	NeedsHuman bool `json:"needs_human,omitempty"`
}

// Provider is a serving platform. Every traffic mutation carries a
// mutationID chosen deterministically by the workflow: a provider applies
// each id at most once, so a retried activity never moves traffic twice.
// Mutations return the Op to wait for; resource names are deterministic so a
// retried call finds what an earlier attempt created.
type Provider interface {
	RegisterVersion(ctx context.Context, t Target, v Version) (Op, error)
	SetTraffic(ctx context.Context, t Target, model string, split TrafficSplit, mutationID string) (Op, error)
	StartShadow(ctx context.Context, t Target, model string, s Shadow, mutationID string) (Op, error)
	// StopShadow ends mirroring; promote makes the shadow version the one
	// serving (where the platform can do so in place), otherwise it is removed.
	StopShadow(ctx context.Context, t Target, model string, promote bool, mutationID string) (Op, error)
	Retire(ctx context.Context, t Target, model, version string) (Op, error)
	// Poll reports on an Op returned by this provider for this target.
	Poll(ctx context.Context, t Target, op Op) (OpStatus, error)
	State(ctx context.Context, t Target, model string) (EndpointState, error)
	Health(ctx context.Context, t Target, model, version string, window time.Duration) (Health, error)
}

// Capabilities are what a platform can do beyond the Provider interface,
// for the checks that refuse a target or strategy it cannot honour. They are
// never declared, only derived by CapabilitiesOf from the optional
// interfaces a provider implements, so the two cannot disagree.
type Capabilities struct {
	// Shadow: mirrored traffic (not a NoShadow provider).
	Shadow bool `json:"shadow"`
	// Native: the platform runs a whole canary itself (NativeRollout).
	Native bool `json:"native"`
	// Pipelines: the platform starts retraining pipelines (Retrainer).
	Pipelines bool `json:"pipelines"`
}

// CapabilitiesOf returns what p can do, from the optional interfaces it implements.
func CapabilitiesOf(p Provider) Capabilities {
	_, noShadow := p.(NoShadow)
	_, native := p.(NativeRollout)
	_, pipelines := p.(Retrainer)
	return Capabilities{Shadow: !noShadow, Native: native, Pipelines: pipelines}
}

// NoShadow is a provider whose platform cannot mirror requests (Vertex AI,
// KServe). Its StartShadow refuses with ErrInvalid; NoShadow lets the API
// refuse a shadow strategy for its targets before any rollout starts.
// Shadow is the one capability stated by its absence: StartShadow is part
// of Provider, which every provider implements, so there is no interface to detect.
type NoShadow interface {
	NoShadow()
}

// TargetValidator is a provider that checks a target's configuration when
// the target is created, so a typo fails then, naming the key, rather than
// in the middle of a rollout.
type TargetValidator interface {
	ValidateTarget(t Target) error
}

// NativeRollout is a provider that runs the whole rollout itself (SageMaker
// blue/green with alarm-driven auto-rollback). Polling the returned Op
// reports success, a silent rollback (RolledBack, with the platform's
// reason) or a stuck rollback (NeedsHuman).
type NativeRollout interface {
	StartNative(ctx context.Context, t Target, model, stable, candidate, mutationID string) (Op, error)
}

// Version stages mirrored to a platform's own registry.
const (
	VersionPendingApproval = "pending_approval"
	VersionApproved        = "approved"
	VersionRejected        = "rejected"
	// VersionChallenger: the version is rolling out.
	VersionChallenger = "challenger"
	// VersionChampion: the version serves; the previous champion loses the title.
	VersionChampion = "champion"
	// VersionRolledBack: the version was rolled back; previous is champion again.
	VersionRolledBack = "rolled_back"
)

// StageChange tells a platform's registry where a version is in its lifecycle.
type StageChange struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	Stage   string `json:"stage"`
	// Previous is the version serving before (champion again after a rollback).
	Previous string `json:"previous,omitempty"`
	// PromotionID and Note are recorded where the platform has room for them.
	PromotionID string `json:"promotion_id,omitempty"`
	Note        string `json:"note,omitempty"`
	// Evidence is recorded as tags where the registry keeps them (MLflow):
	// validation result, approvers.
	Evidence map[string]string `json:"evidence,omitempty"`
}

// Stager is a provider with a model registry of its own (SageMaker model
// package approval status, Vertex AI version aliases) that mirrors our stages.
// MarkVersion is idempotent.
type Stager interface {
	MarkVersion(ctx context.Context, t Target, c StageChange) error
}

// RetrainRequest asks a platform to start a retraining pipeline.
type RetrainRequest struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	Reason  string `json:"reason"`
	// RequestID is deterministic: a retried call starts at most one run.
	RequestID string `json:"request_id"`
}

// Retrainer starts the target's retraining pipeline (SageMaker Pipelines,
// Vertex AI PipelineJobs) and returns the run's id.
type Retrainer interface {
	StartRetrain(ctx context.Context, t Target, r RetrainRequest) (string, error)
}

// Providers resolves a target's provider by name.
type Providers interface {
	Provider(name string) (Provider, error)
}

// ErrInvalid marks a request a provider refuses for good: retrying cannot help.
var ErrInvalid = errors.New("invalid request")

// ProviderSet is a Providers backed by a map.
type ProviderSet map[string]Provider

// Provider returns the named provider.
func (s ProviderSet) Provider(name string) (Provider, error) {
	if p, ok := s[name]; ok {
		return p, nil
	}
	return nil, Errorf(EInvalid, "unknown provider %q", name)
}
