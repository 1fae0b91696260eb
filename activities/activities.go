// Package activities holds the side effects of modelplane's workflows: thin,
// retry-safe adapters over the store, the providers, webhooks and Temporal.
// Every mutation is idempotent under retry: provider changes carry a mutation
// id chosen by the workflow, audit records a deterministic key.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/mcpregistry"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/sinks"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Registry is where MCP servers are published: the official registry
// (*mcpregistry.Client) or, in `modelplane dev`, mcpregistry.Memory.
type Registry interface {
	Publish(ctx context.Context, s mcpregistry.ServerJSON) (mcpregistry.ServerResponse, error)
	SetStatus(ctx context.Context, name, version string, status mcpregistry.Status, message string) (mcpregistry.ServerResponse, error)
}

// Activities holds the clients activities use.
type Activities struct {
	Store     *store.Store
	Providers modelplane.Providers
	HTTP      *http.Client
	// Temporal is used to signal the deployment guardian (signal-with-start).
	Temporal client.Client
	// Getenv reads secrets (retrain HMAC keys) at the moment they are used, so
	// they never travel through workflow history. Defaults to os.Getenv.
	Getenv func(string) string
	Now    func() time.Time
	// Sinks receive lifecycle events as CloudEvents (none: events are not sent).
	Sinks []sinks.Sink
	// MLflow is the MLflow Model Registry versions are imported from and
	// mirrored to (nil: not configured).
	MLflow *mlflow.Client
	// MCPRegistry is the MCP registry servers are published to (nil: not
	// configured); MCPRevalidateEvery is how often published servers are
	// re-validated (default 1h).
	MCPRegistry        Registry
	MCPRevalidateEvery time.Duration
	// Policy decides lifecycle transitions (nil: governance off, all allowed).
	Policy *policy.Engine
	// Directory names the roles and teams of a principal known only by name
	// (an unverified Web UI vote in dev mode); nil: such callers have none.
	Directory func(name string) (modelplane.Principal, bool)
	// Metrics, when set, records lifecycle figures.
	Metrics *telemetry.Metrics
	// Promotions prepares the promotions pipelines and the MLflow
	// reconciliation start (nil: they fail, saying so).
	Promotions modelplane.PromotionService
}

var errNoPromotions = errors.New("this worker has no promotion service configured")

// PublishInput is a batch of lifecycle events.
type PublishInput struct {
	Events []modelplane.Event
}

// Publish delivers events to every sink; a failure is retried by Temporal
// and consumers see stable ids (at-least-once).
func (a *Activities) Publish(ctx context.Context, in PublishInput) error {
	if len(a.Sinks) == 0 || len(in.Events) == 0 {
		return nil
	}
	return sinks.Publish(ctx, a.Sinks, in.Events)
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// nonRetryable turns errors retrying cannot fix into ones Temporal will not retry.
func nonRetryable(err error) error {
	if err == nil {
		return nil
	}
	var e *modelplane.Error
	if errors.Is(err, modelplane.ErrInvalid) || (errors.As(err, &e) && (e.Code == modelplane.ENotFound || e.Code == modelplane.EInvalid)) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "invalid", nil)
	}
	return err
}

func (a *Activities) provider(ctx context.Context, target string) (modelplane.Target, modelplane.Provider, error) {
	t, err := a.Store.GetTarget(ctx, target)
	if err != nil {
		return t, nil, nonRetryable(err)
	}
	p, err := a.Providers.Provider(t.Provider)
	if err != nil {
		return t, nil, temporal.NewNonRetryableApplicationError(err.Error(), "invalid", nil)
	}
	return t, p, nil
}

// VersionRef names a model version on a target.
type VersionRef struct {
	Model, Version, Target string
}

// Register deploys the version to the target's platform (idempotent) and
// returns the operation to wait for, if the platform is still at it.
func (a *Activities) Register(ctx context.Context, in VersionRef) (modelplane.Op, error) {
	v, err := a.Store.GetVersion(ctx, in.Model, in.Version)
	if err != nil {
		return modelplane.Op{}, nonRetryable(err)
	}
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Op{}, err
	}
	start := time.Now()
	op, err := p.RegisterVersion(ctx, t, v)
	a.timed(t, "register", start, err)
	return op, nonRetryable(err)
}

// OpInput names an operation a provider started on a target.
type OpInput struct {
	Target string
	Op     modelplane.Op
}

// ErrOpPending is the error type AwaitOp retries on while an operation runs.
const ErrOpPending = "operation_pending"

// AwaitOp polls an operation once. While it runs, the activity fails with a
// retryable error, so Temporal's backoff does the waiting and no worker slot
// sleeps; a failed operation ends the wait with its status, not an error.
func (a *Activities) AwaitOp(ctx context.Context, in OpInput) (modelplane.OpStatus, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	start := time.Now()
	st, err := p.Poll(ctx, t, in.Op)
	a.timed(t, "poll", start, err)
	if err != nil {
		return st, nonRetryable(err)
	}
	if !st.Done {
		return st, temporal.NewApplicationError(fmt.Sprintf("%s: still running (%s)", in.Op.What, in.Op.ID), ErrOpPending)
	}
	return st, nil
}

// NativeInput asks the platform to run the whole rollout itself.
type NativeInput struct {
	Model, Target     string
	Stable, Candidate string
	MutationID        string
}

// StartNative starts a platform-run rollout (SageMaker blue/green canary).
func (a *Activities) StartNative(ctx context.Context, in NativeInput) (modelplane.Op, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Op{}, err
	}
	n, ok := p.(modelplane.NativeRollout)
	if !ok {
		return modelplane.Op{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("provider %s cannot run a rollout natively", t.Provider), "invalid", nil)
	}
	op, err := n.StartNative(ctx, t, in.Model, in.Stable, in.Candidate, in.MutationID)
	return op, nonRetryable(err)
}

// MarkInput mirrors a lifecycle stage into the platform's own registry.
type MarkInput struct {
	Target string
	Change modelplane.StageChange
}

// MarkVersion tells the registries that keep a version where it is in its
// lifecycle: the platform's own (SageMaker model packages, Vertex AI aliases)
// and the MLflow Model Registry the version was imported from. It reports
// whether any registry was told. Both writes are idempotent, so a retry
// after a partial failure finishes the job.
func (a *Activities) MarkVersion(ctx context.Context, in MarkInput) (bool, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return false, err
	}
	marked := false
	if s, ok := p.(modelplane.Stager); ok {
		if err := s.MarkVersion(ctx, t, in.Change); err != nil {
			return false, nonRetryable(err)
		}
		marked = true
	}
	ok, err := a.mirrorMLflow(ctx, in.Change)
	return marked || ok, nonRetryable(err)
}

// ValidateInput asks for the validation stage.
type ValidateInput struct {
	VersionRef
	Metrics modelplane.MetricBounds
}

// ValidateResult is the evidence and what follows from it.
type ValidateResult struct {
	Report            modelplane.ValidationReport
	RiskTier          modelplane.RiskTier
	RequiredApprovals int
	Stable            string
	// Native: the target asks the platform to run canaries itself.
	Native bool
	// Mirrors: a stage change of this version on this target reaches a
	// registry (the target's platform keeps stages, or the version came
	// from MLflow), so MarkVersion has something to do.
	Mirrors bool
	// Deployment is what served when validation read it.
	Deployment modelplane.Deployment
}

// Validate gathers the evidence and runs the pure checks.
func (a *Activities) Validate(ctx context.Context, in ValidateInput) (ValidateResult, error) {
	m, err := a.Store.GetModel(ctx, in.Model)
	if err != nil {
		return ValidateResult{}, nonRetryable(err)
	}
	v, err := a.Store.GetVersion(ctx, in.Model, in.Version)
	if err != nil {
		return ValidateResult{}, nonRetryable(err)
	}
	t, err := a.Store.GetTarget(ctx, in.Target)
	if err != nil {
		return ValidateResult{}, nonRetryable(err)
	}
	d, _, err := a.Store.GetDeployment(ctx, in.Model, in.Target)
	if err != nil {
		return ValidateResult{}, err
	}
	report := modelplane.ValidateCandidate(m, v, t, d.Stable, in.Metrics)
	report.EvidenceHash = EvidenceHash(v, report)
	return ValidateResult{
		Report:            report,
		RiskTier:          m.RiskTier,
		RequiredApprovals: modelplane.RequiredApprovals(m.RiskTier, t),
		Stable:            d.Stable,
		Native:            t.Config[modelplane.ConfigRollout] == modelplane.RolloutNative,
		Mirrors:           a.mirrors(t, v),
		Deployment:        d,
	}, nil
}

// mirrors reports whether MarkVersion would reach a registry for version v
// on target t; when the provider is unknown, MarkVersion is left to say so.
func (a *Activities) mirrors(t modelplane.Target, v modelplane.Version) bool {
	if v.Lineage.Registry == mlflow.RegistryName {
		return true
	}
	if a.Providers == nil {
		return true
	}
	p, err := a.Providers.Provider(t.Provider)
	if err != nil {
		return true
	}
	_, ok := p.(modelplane.Stager)
	return ok
}

// Deployment reads what serves a model on a target now.
func (a *Activities) Deployment(ctx context.Context, in VersionRef) (modelplane.Deployment, error) {
	d, _, err := a.Store.GetDeployment(ctx, in.Model, in.Target)
	return d, err
}

// TrafficInput is one traffic change.
type TrafficInput struct {
	Model, Target string
	Split         modelplane.TrafficSplit
	MutationID    string
}

// SetTraffic moves live traffic; the mutation id makes retries harmless.
func (a *Activities) SetTraffic(ctx context.Context, in TrafficInput) (modelplane.Op, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Op{}, err
	}
	start := time.Now()
	op, err := p.SetTraffic(ctx, t, in.Model, in.Split, in.MutationID)
	a.timed(t, "set_traffic", start, err)
	return op, nonRetryable(err)
}

// ShadowInput starts (Shadow set) or stops (nil) mirroring; Promote makes
// the shadow version serve when it stops.
type ShadowInput struct {
	Model, Target string
	Shadow        *modelplane.Shadow
	Promote       bool
	MutationID    string
}

// Shadow starts or stops request mirroring.
func (a *Activities) Shadow(ctx context.Context, in ShadowInput) (modelplane.Op, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Op{}, err
	}
	var op modelplane.Op
	if in.Shadow == nil {
		op, err = p.StopShadow(ctx, t, in.Model, in.Promote, in.MutationID)
	} else {
		op, err = p.StartShadow(ctx, t, in.Model, *in.Shadow, in.MutationID)
	}
	return op, nonRetryable(err)
}

// HealthInput asks for one version's health over a window.
type HealthInput struct {
	VersionRef
	Window modelplane.Duration
}

// Health measures a version.
func (a *Activities) Health(ctx context.Context, in HealthInput) (modelplane.Health, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Health{}, err
	}
	start := time.Now()
	h, err := p.Health(ctx, t, in.Model, in.Version, in.Window.D())
	a.timed(t, "health", start, err)
	return h, nonRetryable(err)
}

// Ready reports whether a version is deployed (warm) on the endpoint.
func (a *Activities) Ready(ctx context.Context, in VersionRef) (bool, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return false, err
	}
	st, err := p.State(ctx, t, in.Model)
	if err != nil {
		return false, err
	}
	for _, v := range st.Versions {
		if v == in.Version {
			return true, nil
		}
	}
	return false, nil
}

// Retire removes an idle version from the platform.
func (a *Activities) Retire(ctx context.Context, in VersionRef) (modelplane.Op, error) {
	t, p, err := a.provider(ctx, in.Target)
	if err != nil {
		return modelplane.Op{}, err
	}
	start := time.Now()
	op, err := p.Retire(ctx, t, in.Model, in.Version)
	a.timed(t, "retire", start, err)
	return op, nonRetryable(err)
}

// ProgressInput is the workflow's view to project into the store.
type ProgressInput struct {
	Promotion  *modelplane.Promotion
	Seq        int64
	Deployment *modelplane.Deployment
	Audit      []modelplane.AuditRecord
}

// ProgressResult is what the worker that wrote a projection can do next.
type ProgressResult struct {
	// Sinks: lifecycle events have somewhere to go. A promotion on the
	// local-steps branch schedules no delivery (Publish) without one.
	Sinks bool `json:"sinks,omitempty"`
}

// RecordProgress writes the audit records (keys make them idempotent), the
// deployment and the promotion projection that the API reads, in one
// transaction (store.RecordProgress). Promotions
// run it as a local activity (local-steps), the guardian and pipelines as
// an activity.
func (a *Activities) RecordProgress(ctx context.Context, in ProgressInput) (ProgressResult, error) {
	if err := a.Store.RecordProgress(ctx, store.Progress{Audit: in.Audit, Deployment: in.Deployment, Promotion: in.Promotion, Seq: in.Seq}); err != nil {
		return ProgressResult{}, err
	}
	a.observe(in)
	return ProgressResult{Sinks: len(a.Sinks) > 0}, nil
}

// observe turns the lifecycle records just written into metrics. A retried
// batch may count twice: metrics are rates, the audit trail is the record.
func (a *Activities) observe(in ProgressInput) {
	if a.Metrics == nil {
		return
	}
	kind := "model"
	if in.Promotion != nil && in.Promotion.Kind != "" {
		kind = in.Promotion.Kind
	}
	for _, r := range in.Audit {
		switch r.Action {
		case modelplane.AuditStage:
			status, _ := r.Details["status"].(string)
			a.Metrics.PromotionTransition(kind, r.Decision, status, r.Target)
		case modelplane.AuditRollback:
			if r.Decision == "rolled_back" {
				cause, _ := r.Details["cause"].(string)
				a.Metrics.Rollback(modelplane.RollbackCause(cause), r.Target)
			}
		case modelplane.AuditApproved:
			if s, ok := r.Details["waited_seconds"].(float64); ok {
				a.Metrics.ApprovalWait(r.Target, time.Duration(s*float64(time.Second)))
			}
		case modelplane.AuditPlatformDrift:
			a.Metrics.PlatformDrift(modelplane.SyncStatus(r.Decision), r.Target)
		case modelplane.AuditAnalysis:
			check, _ := r.Details["check"].(string)
			if check == "" {
				check = "provider_health"
			}
			a.Metrics.AnalysisResult(check, r.Decision)
		}
	}
}

// timed records one call to a serving platform.
func (a *Activities) timed(t modelplane.Target, op string, start time.Time, err error) {
	if a.Metrics != nil {
		a.Metrics.ProviderCall(t.Provider, op, time.Since(start), err)
	}
}

// GuardianState is what the guardian needs each turn.
type GuardianState struct {
	Busy     bool // a promotion runs for the pair: it owns traffic now
	Analysis modelplane.Analysis
	Interval modelplane.Duration
	Drift    modelplane.DriftMode
}

// GuardianContext reads the target's analysis settings and whether a promotion is running.
func (a *Activities) GuardianContext(ctx context.Context, in VersionRef) (GuardianState, error) {
	t, err := a.Store.GetTarget(ctx, in.Target)
	if err != nil {
		return GuardianState{}, nonRetryable(err)
	}
	_, busy, err := a.Store.ActivePromotion(ctx, in.Model, in.Target)
	if err != nil {
		return GuardianState{}, err
	}
	an, _ := modelplane.NormalizeAnalysis(modelplane.Analysis{}, t.Analysis)
	iv := t.GuardInterval
	if iv == 0 {
		iv = modelplane.Duration(modelplane.DefaultGuardInterval)
	}
	return GuardianState{Busy: busy, Analysis: an, Interval: iv, Drift: t.Drift.EffectiveMode()}, nil
}
