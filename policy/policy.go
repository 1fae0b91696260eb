// Package policy is modelplane's embedded OPA policy engine: every governed
// action asks it one question, data.modelplane.decision, and gets an allow or
// deny with human-readable reasons that are kept in the audit trail.
//
// The built-in bundle (DefaultFS) encodes roles, team isolation, four-eyes
// approvals, required approvals per risk tier and environment, required
// metrics and production change windows. An operator replaces it with a
// directory of *.rego files plus data.json (start from WriteDefault) and the
// engine reloads it while running, keeping the last good policy when a
// change does not compile or fails its own tests.
package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/modelplane/modelplane"
)

// Actions modelplane asks the policy about.
const (
	ActionModelCreate       = "model.create"
	ActionModelRead         = "model.read"
	ActionVersionCreate     = "version.create"
	ActionTargetCreate      = "target.create"
	ActionTargetRead        = "target.read"
	ActionPromotionStart    = "promotion.start"
	ActionPromotionRead     = "promotion.read"
	ActionPromotionApprove  = "promotion.approve"
	ActionPromotionReject   = "promotion.reject"
	ActionPromotionStep     = "promotion.step"     // a canary step, before traffic moves
	ActionPromotionRollback = "promotion.rollback" // a safety action
	ActionPromotionDecide   = "promotion.decide"   // resolve an inconclusive analysis
	ActionPromotionOverride = "promotion.override" // skip or force: an exception
	ActionMCPCreate         = "mcp.create"
	ActionMCPRead           = "mcp.read"
	ActionMCPPromote        = "mcp.promote"
	ActionMCPToolCall       = "mcp.tool.call" // one call through the MCP gateway
	ActionDriftReport       = "drift.report"
	ActionAuditRead         = "audit.read"
	ActionAuditExport       = "audit.export"
	ActionDeploymentRead    = "deployment.read"
	ActionProvenanceRead    = "provenance.read"
	ActionScorecardRead     = "scorecard.read"
	ActionSimHealth         = "sim.health"
	ActionSimTraffic        = "sim.traffic"
	ActionPipelineRead      = "pipeline.read"
	ActionPipelineWrite     = "pipeline.write"
	ActionPipelineRun       = "pipeline.run"
	ActionFreezeRead        = "freeze.read"
	ActionFreezeSet         = "freeze.set"
)

// Actions lists every action; the self-test probes each of them.
var Actions = []string{
	ActionModelCreate, ActionModelRead, ActionVersionCreate, ActionTargetCreate,
	ActionTargetRead, ActionPromotionStart, ActionPromotionRead, ActionPromotionApprove,
	ActionPromotionReject, ActionPromotionStep, ActionPromotionRollback,
	ActionPromotionDecide, ActionPromotionOverride, ActionMCPCreate, ActionMCPRead,
	ActionMCPPromote, ActionMCPToolCall, ActionDriftReport, ActionAuditRead, ActionAuditExport,
	ActionDeploymentRead, ActionProvenanceRead, ActionScorecardRead, ActionSimHealth,
	ActionSimTraffic, ActionPipelineRead, ActionPipelineWrite, ActionPipelineRun, ActionFreezeRead, ActionFreezeSet,
}

// Asset kinds.
const (
	KindModel     = "model"
	KindMCPServer = "mcp_server"
	KindTarget    = "target"
	KindPipeline  = "pipeline"
)

// Query is the document every question asks for.
const Query = "data.modelplane.decision"

// ToolQuery is the gateway's fast path for ActionMCPToolCall: a document
// that reads only the tool rules. A bundle that does not define it is asked
// Query instead.
const ToolQuery = "data.modelplane.tool_decision"

// Input is what every question to the policy engine carries. Its JSON form
// is exactly what policies see as `input`.
type Input struct {
	Action    string                      `json:"action"`
	Caller    modelplane.Principal        `json:"caller"`
	Asset     Asset                       `json:"asset"`
	Target    *TargetInfo                 `json:"target,omitempty"`
	Promotion *modelplane.PolicyPromotion `json:"promotion,omitempty"`
	// Request holds action-specific fields, e.g. "evidence_hash" for a vote.
	Request map[string]any `json:"request,omitempty"`
	// Time is the decision time (UTC); change windows use it. Zero means now.
	Time time.Time `json:"time"`
	// CallerExpired says the caller's credentials expired by Time. The
	// engine sets it from Caller.Expires and Time (a value given is
	// replaced), so a policy can refuse stale credentials without reading
	// the clock and the answer can be kept in the decision cache.
	CallerExpired bool `json:"caller_expired,omitempty"`
}

// Asset is what the action is about.
type Asset struct {
	Kind       string             `json:"kind"` // KindModel, KindMCPServer, KindTarget or ""
	Name       string             `json:"name"`
	Owner      string             `json:"owner"`
	Team       string             `json:"team"`
	RiskTier   string             `json:"risk_tier"`
	DataDomain string             `json:"data_domain"`
	Version    string             `json:"version"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Lineage    map[string]string  `json:"lineage,omitempty"`
}

// TargetInfo is where the action takes effect.
type TargetInfo struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Provider    string `json:"provider"`
}

// Status says which policy is live and whether the last load failed.
type Status struct {
	Dir         string    `json:"dir,omitempty"` // empty: the built-in bundle
	Version     string    `json:"version"`
	LoadedAt    time.Time `json:"loaded_at"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock used for Input.Time when it is zero and for
// Status times; tests pin it.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithDecisionCache sets how many decisions the engine keeps per policy
// version (twice size at most; see governance_cache.go); 0 turns the cache
// off, so every question is evaluated. The default is 4096.
func WithDecisionCache(size int) Option { return func(e *Engine) { e.cacheSize = size } }

// WithData sets top-level data documents over the bundle's, e.g.
// {"allow_unverified_ui_approvals": true} for `modelplane dev`.
func WithData(overrides map[string]any) Option {
	return func(e *Engine) { e.overrides = overrides }
}

// Engine answers policy questions. It is safe for concurrent use.
type Engine struct {
	dir       string
	now       func() time.Time
	overrides map[string]any
	cacheSize int

	cur atomic.Pointer[compiled] // swapped whole, so Decide never locks

	loadMu sync.Mutex // serialises loads

	statusMu    sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	failedHash  string // content that failed to load; Watch does not retry it
	watchErrMsg string // last Watch read error, reported once
}

// compiled is one loaded bundle.
type compiled struct {
	query    rego.PreparedEvalQuery
	tool     rego.PreparedEvalQuery
	version  string
	hash     string
	loadedAt time.Time
	// cache holds this policy's decisions (nil when off): a new policy
	// starts with an empty one.
	cache *decisionCache
	// data serves the policy's data to every evaluation (dataDoc).
	data rego.EvalOption
}

// New loads the policy. With dir "" it uses the built-in bundle; otherwise
// the directory's *.rego files and data.json/data.yaml replace the built-in
// bundle entirely (`modelplane policy init DIR`, i.e. WriteDefault, writes it
// there to start from).
func New(dir string, opts ...Option) (*Engine, error) {
	e := &Engine{dir: dir, now: time.Now, cacheSize: cacheLimit}
	for _, o := range opts {
		o(e)
	}
	b, err := e.read()
	if err != nil {
		return nil, err
	}
	c, err := e.compile(context.Background(), b)
	if err != nil {
		return nil, err
	}
	e.cur.Store(c)
	return e, nil
}

// Decide answers one question. On an evaluation error it returns a deny
// together with the error: callers must not act on an error.
func (e *Engine) Decide(ctx context.Context, in Input) (modelplane.PolicyDecision, error) {
	return e.decide(ctx, in, false)
}

// DecideTool answers an ActionMCPToolCall question through ToolQuery, which
// costs a fraction of a full decision; it is called on every tool call.
func (e *Engine) DecideTool(ctx context.Context, in Input) (modelplane.PolicyDecision, error) {
	in.Action = ActionMCPToolCall
	return e.decide(ctx, in, true)
}

func (e *Engine) decide(ctx context.Context, in Input, tool bool) (modelplane.PolicyDecision, error) {
	c := e.cur.Load()
	if in.Time.IsZero() {
		in.Time = e.now()
	}
	in.Time = in.Time.UTC()
	in.CallerExpired = in.Caller.Expires != nil && !in.Time.Before(*in.Caller.Expires)
	d := modelplane.PolicyDecision{ID: newID(in.Time), PolicyVersion: c.version}
	var key []byte
	var seen *cached
	if c.cache != nil {
		buf := keyBuffers.Get().(*[]byte)
		defer keyBuffers.Put(buf)
		if key, seen = c.cache.lookup(buf, tool, in); seen != nil && seen.state == cachedDecision {
			seen.fill(&d)
			return d, nil
		}
	}
	v, err := inputValue(in)
	if err != nil {
		d.Reasons = []string{"policy input: " + err.Error()}
		return d, fmt.Errorf("policy: %s input: %w", in.Action, err)
	}
	// The second time a question is asked, it is evaluated under a tracer
	// that tells whether the answer depends on the clock; if not, the
	// answer is kept (see governance_cache.go).
	var tracer *clockTracer
	opts := make([]rego.EvalOption, 0, 8)
	// Metrics are not collected: a no-op spares allocations on every decision.
	opts = append(opts, rego.EvalParsedInput(v), rego.EvalTime(in.Time), rego.EvalMetrics(metrics.NoOp()), rego.EvalGenerateJSON(keepValue), c.data)
	if seen != nil && seen.state == cachedSeen {
		tracer = &clockTracer{c: c.cache}
		opts = append(opts, rego.EvalQueryTracer(tracer), rego.EvalRuleIndexing(false))
	}
	var rs rego.ResultSet
	if tool {
		rs, err = c.tool.Eval(ctx, opts...)
	}
	if err == nil && (len(rs) == 0 || len(rs[0].Expressions) == 0) {
		rs, err = c.query.Eval(ctx, opts...)
	}
	if err != nil {
		d.Reasons = []string{"policy evaluation failed: " + err.Error()}
		return d, fmt.Errorf("policy: evaluate %s: %w", in.Action, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		d.Reasons = []string{fmt.Sprintf("no policy decision for action %s", in.Action)}
	} else {
		r, err := parseDecisionValue(rs[0].Expressions[0].Value)
		if err != nil {
			d.Reasons = []string{"policy returned a malformed decision: " + err.Error()}
			return d, fmt.Errorf("policy: %s: %w", in.Action, err)
		}
		d.Allow, d.Reasons, d.Explicit, d.RequiredApprovals = r.Allow, r.Reasons, r.Explicit, r.RequiredApprovals
	}
	if key != nil {
		c.cache.record(key, seen, tracer, d)
	}
	return d, nil
}

// Version identifies the live policy: a short sha256 over its files.
func (e *Engine) Version() string { return e.cur.Load().version }

// Status reports the live policy and the last failed load, if any since.
func (e *Engine) Status() Status {
	c := e.cur.Load()
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	return Status{Dir: e.dir, Version: c.version, LoadedAt: c.loadedAt, LastError: e.lastErr, LastErrorAt: e.lastErrAt}
}

// Reload re-reads the directory. On a read or compile error or a failing
// self-test it returns the error and keeps the last good policy.
func (e *Engine) Reload() error {
	if e.dir == "" {
		return nil // the built-in bundle cannot change
	}
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	b, err := e.read()
	if err != nil {
		e.failed("", err)
		return err
	}
	return e.install(b)
}

// Watch polls the directory every interval and reloads when its contents
// change, until ctx is done; run it in its own goroutine. Each failed load
// (and each new read error) is passed to onErr once, not on every poll.
func (e *Engine) Watch(ctx context.Context, every time.Duration, onErr func(error)) {
	if e.dir == "" {
		return
	}
	if every <= 0 {
		every = 5 * time.Second
	}
	if onErr == nil {
		onErr = func(error) {}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.poll(); err != nil {
			onErr(err)
		}
	}
}

// poll reloads if the directory changed; it returns only errors not yet
// reported. Reading under loadMu keeps a slow poll from installing content
// older than a concurrent Reload's.
func (e *Engine) poll() error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	b, err := e.read()
	e.statusMu.Lock()
	if err != nil {
		repeat := e.watchErrMsg == err.Error()
		e.watchErrMsg = err.Error()
		e.statusMu.Unlock()
		if repeat {
			return nil
		}
		e.failed("", err)
		return err
	}
	e.watchErrMsg = ""
	live := b.hash == e.cur.Load().hash
	if live {
		// The directory is back to the live policy: nothing is wrong now.
		e.lastErr, e.lastErrAt, e.failedHash = "", time.Time{}, ""
	}
	seenBad := b.hash == e.failedHash
	e.statusMu.Unlock()
	if live || seenBad {
		return nil
	}
	return e.install(b)
}

// install compiles b and makes it live; the caller holds loadMu.
func (e *Engine) install(b *bundle) error {
	// Not the caller's context: a load cut short by shutdown would be
	// reported as a broken policy.
	c, err := e.compile(context.Background(), b)
	if err != nil {
		e.failed(b.hash, err)
		return err
	}
	e.cur.Store(c)
	e.statusMu.Lock()
	e.lastErr, e.lastErrAt, e.failedHash = "", time.Time{}, ""
	e.statusMu.Unlock()
	return nil
}

func (e *Engine) failed(hash string, err error) {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	e.lastErr, e.lastErrAt = err.Error(), e.now().UTC()
	if hash != "" {
		e.failedHash = hash
	}
}

// result is the decision document's expected shape.
type result struct {
	Allow             bool
	Reasons           []string
	Explicit          bool
	RequiredApprovals int
}

// keepValue hands the decision back as OPA's value: converting it to Go
// values first cost a few dozen allocations per decision, and
// parseDecisionValue reads the value itself.
func keepValue(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

var (
	termAllow             = ast.StringTerm("allow")
	termExplicit          = ast.StringTerm("explicit")
	termReasons           = ast.StringTerm("reasons")
	termRequiredApprovals = ast.StringTerm("required_approvals")
)

// parseDecisionValue is parseDecision on the value keepValue returned. A
// decision of the expected shape is read as it is; anything else goes
// through parseDecision, so its errors read the same.
func parseDecisionValue(v any) (result, error) {
	slow := func() (result, error) {
		if av, ok := v.(ast.Value); ok {
			j, err := ast.JSON(av)
			if err != nil {
				return result{}, fmt.Errorf("%s: %w", Query, err)
			}
			return parseDecision(j)
		}
		return parseDecision(v)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return slow()
	}
	var r result
	allow := obj.Get(termAllow)
	if allow == nil {
		return slow()
	}
	b, ok := allow.Value.(ast.Boolean)
	if !ok {
		return slow()
	}
	r.Allow = bool(b)
	if t := obj.Get(termExplicit); t != nil {
		b, ok := t.Value.(ast.Boolean)
		if !ok {
			return slow()
		}
		r.Explicit = bool(b)
	}
	if t := obj.Get(termReasons); t != nil {
		list, ok := t.Value.(*ast.Array)
		if !ok {
			return slow()
		}
		r.Reasons = make([]string, list.Len())
		for i := range list.Len() {
			s, ok := list.Elem(i).Value.(ast.String)
			if !ok {
				return slow()
			}
			r.Reasons[i] = string(s)
		}
	}
	if t := obj.Get(termRequiredApprovals); t != nil {
		n, ok := t.Value.(ast.Number)
		if !ok {
			return slow()
		}
		f, err := json.Number(n).Float64()
		if err != nil || f != math.Trunc(f) || f < 0 || f > 1000 {
			return slow()
		}
		r.RequiredApprovals = int(f)
	}
	return r, nil
}

// parseDecision checks the shape strictly: a custom policy that returns the
// wrong types must fail loudly rather than be read as a deny or an allow.
func parseDecision(v any) (result, error) {
	var r result
	m, ok := v.(map[string]any)
	if !ok {
		return r, fmt.Errorf("%s must be an object, got %T", Query, v)
	}
	if r.Allow, ok = m["allow"].(bool); !ok {
		return r, fmt.Errorf(`%s.allow must be a boolean, got %T`, Query, m["allow"])
	}
	if x, present := m["explicit"]; present {
		if r.Explicit, ok = x.(bool); !ok {
			return r, fmt.Errorf(`%s.explicit must be a boolean, got %T`, Query, x)
		}
	}
	if x, present := m["reasons"]; present {
		list, ok := x.([]any)
		if !ok {
			return r, fmt.Errorf(`%s.reasons must be an array of strings, got %T`, Query, x)
		}
		r.Reasons = make([]string, len(list))
		for i, s := range list {
			if r.Reasons[i], ok = s.(string); !ok {
				return r, fmt.Errorf(`%s.reasons[%d] must be a string, got %T`, Query, i, s)
			}
		}
	}
	if x, present := m["required_approvals"]; present {
		var f float64
		switch n := x.(type) {
		case json.Number:
			var err error
			if f, err = n.Float64(); err != nil {
				return r, fmt.Errorf(`%s.required_approvals: %w`, Query, err)
			}
		case float64:
			f = n
		case int:
			f = float64(n)
		default:
			return r, fmt.Errorf(`%s.required_approvals must be a number, got %T`, Query, x)
		}
		if f != math.Trunc(f) || f < 0 || f > 1000 {
			return r, fmt.Errorf(`%s.required_approvals must be a whole number from 0 to 1000, got %v`, Query, x)
		}
		r.RequiredApprovals = int(f)
	}
	return r, nil
}

// newID returns a time-ordered unique id: 48 bits of milliseconds then 80
// random bits (ULID layout, hex-encoded), so ids sort by decision time.
func newID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// errNoDecision reports a bundle that answers nothing, usually a wrong package name.
var errNoDecision = errors.New("the policy defines " + Query + " for no action; is the package named modelplane?")
