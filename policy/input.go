package policy

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/modelplane/modelplane"
)

// inputValue builds the policy input as an OPA value directly. Handing OPA a
// Go value instead makes it round-trip the value through JSON on every
// decision, several times the cost of building it (see BenchmarkInput).
// The shape must stay exactly that of json.Marshal(in), so
// policies can be written and tested against the JSON form; TestInputValue
// checks the two agree. A field added here must be added to the decision
// cache's key too (appendKey in governance_cache.go; TestCacheKeyCoversInput
// fails until it is).
func inputValue(in Input) (ast.Value, error) {
	kv := make([][2]*ast.Term, 0, 8)
	kv = append(kv,
		item(keyAction, str(in.Action)),
		item(keyCaller, callerTerm(in.Caller)),
		item(keyAsset, assetTerm(in.Asset)),
	)
	if t := in.Target; t != nil {
		kv = append(kv, item(keyTarget, targetTerm(t)))
	}
	if p := in.Promotion; p != nil {
		kv = append(kv, item(keyPromotion, ast.NewTerm(promotionValue(p))))
	}
	if len(in.Request) > 0 {
		// Request is free-form; OPA converts its JSON-like values natively.
		v, err := ast.InterfaceToValue(in.Request)
		if err != nil {
			return nil, err
		}
		kv = append(kv, item(keyRequest, ast.NewTerm(v)))
	}
	kv = append(kv, item(keyTime, ast.StringTerm(in.Time.Format(time.RFC3339Nano))))
	if in.CallerExpired {
		kv = append(kv, item(keyCallerExpired, ast.BooleanTerm(true)))
	}
	return ast.NewObject(kv...), nil
}

func item(k, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{k, v} }

// str spares the allocations of a string term for the many empty fields
// and for strings seen before: names, teams, roles, actions and the like
// repeat from one decision to the next. OPA never changes a term, so every
// input can share them.
func str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	if len(s) > maxInterned {
		return ast.StringTerm(s)
	}
	if t, ok := interned.Load(s); ok {
		return t.(*ast.Term)
	}
	t := ast.StringTerm(s)
	if internedN.Add(1) > internLimit {
		// Bounded: a stream of distinct strings (ids, hashes) starts the
		// table over rather than growing it.
		interned.Clear()
		internedN.Store(1)
	}
	interned.Store(s, t)
	return t
}

const (
	maxInterned = 128  // longer strings are rarely repeated
	internLimit = 8192 // strings kept
)

var (
	interned  sync.Map // string → *ast.Term
	internedN atomic.Int64
)

// Object keys are built once: OPA treats terms as immutable, so every
// input can share them.
var (
	keyAction        = ast.StringTerm("action")
	keyApprovals     = ast.StringTerm("approvals")
	keyApprover      = ast.StringTerm("approver")
	keyAsset         = ast.StringTerm("asset")
	keyCaller        = ast.StringTerm("caller")
	keyCallerExpired = ast.StringTerm("caller_expired")
	keyDataDomain    = ast.StringTerm("data_domain")
	keyDecision      = ast.StringTerm("decision")
	keyEnvironment   = ast.StringTerm("environment")
	keyEvidenceHash  = ast.StringTerm("evidence_hash")
	keyExpires       = ast.StringTerm("expires")
	keyID            = ast.StringTerm("id")
	keyKind          = ast.StringTerm("kind")
	keyLineage       = ast.StringTerm("lineage")
	keyMethod        = ast.StringTerm("method")
	keyMetrics       = ast.StringTerm("metrics")
	keyName          = ast.StringTerm("name")
	keyOverride      = ast.StringTerm("override")
	keyOwner         = ast.StringTerm("owner")
	keyPromotion     = ast.StringTerm("promotion")
	keyProvider      = ast.StringTerm("provider")
	keyRequest       = ast.StringTerm("request")
	keyRequestedBy   = ast.StringTerm("requested_by")
	keyRiskTier      = ast.StringTerm("risk_tier")
	keyRoles         = ast.StringTerm("roles")
	keyStage         = ast.StringTerm("stage")
	keyTarget        = ast.StringTerm("target")
	keyTeam          = ast.StringTerm("team")
	keyTeams         = ast.StringTerm("teams")
	keyTime          = ast.StringTerm("time")
	keyVersion       = ast.StringTerm("version")
)

// termCache keeps the input values built recently, keyed by every field
// they are built from: the same few callers, models and targets come up in
// most questions, and building their objects was most of an input's
// allocations. OPA never changes a term, so inputs share them. Bounded like
// interned: past the limit the table starts over.
type termCache struct {
	mu sync.RWMutex
	m  map[string]*ast.Term
}

const termCacheLimit = 4096

var callers, assets, targets termCache

// cachedTerm returns the value kept for v's key, or builds and keeps it.
// The key is built with appendKey into a pooled buffer.
func cachedTerm[T any](c *termCache, v T, appendKey func([]byte, T) []byte, build func(T) ast.Value) *ast.Term {
	buf := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(buf)
	*buf = appendKey((*buf)[:0], v)
	key := *buf
	c.mu.RLock()
	t, ok := c.m[string(key)] // no copy: the compiler reads the bytes in place
	c.mu.RUnlock()
	if ok {
		return t
	}
	t = ast.NewTerm(build(v))
	c.mu.Lock()
	if c.m == nil || len(c.m) >= termCacheLimit {
		c.m = make(map[string]*ast.Term, 64)
	}
	c.m[string(key)] = t
	c.mu.Unlock()
	return t
}

// callerTerm is principalValue(p), kept in callers.
func callerTerm(p modelplane.Principal) *ast.Term {
	return cachedTerm(&callers, p, appendCallerKey, principalValue)
}

// assetTerm is assetValue(a), kept in assets.
func assetTerm(a Asset) *ast.Term { return cachedTerm(&assets, a, appendAssetKey, assetValue) }

// targetTerm is the target's value, kept in targets.
func targetTerm(t *TargetInfo) *ast.Term {
	return cachedTerm(&targets, t, func(b []byte, t *TargetInfo) []byte {
		return keyField(keyField(keyField(b, t.Name), t.Environment), t.Provider)
	}, func(t *TargetInfo) ast.Value {
		return ast.NewObject(item(keyName, str(t.Name)), item(keyEnvironment, str(t.Environment)), item(keyProvider, str(t.Provider)))
	})
}

// keyField appends s prefixed by its length, so no two keys run together.
func keyField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendAssetKey writes every field assetValue reads; a map's entries in
// key order, and whether it had any (an empty map adds no field, a map of
// only NaN and infinite metrics an empty one).
func appendAssetKey(b []byte, a Asset) []byte {
	for _, f := range [...]string{a.Kind, a.Name, a.Owner, a.Team, a.RiskTier, a.DataDomain, a.Version} {
		b = keyField(b, f)
	}
	var room [16]string
	if len(a.Metrics) == 0 {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		names := room[:0]
		for k, v := range a.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		b = binary.AppendUvarint(b, uint64(len(names)))
		for _, k := range names {
			b = binary.LittleEndian.AppendUint64(keyField(b, k), math.Float64bits(a.Metrics[k]))
		}
	}
	if len(a.Lineage) == 0 {
		return append(b, 0)
	}
	b = append(b, 1)
	names := room[:0]
	for k := range a.Lineage {
		names = append(names, k)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = keyField(keyField(b, k), a.Lineage[k])
	}
	return b
}

// appendCallerKey writes every field principalValue reads, with nil and
// empty lists told apart (null vs []).
func appendCallerKey(b []byte, p modelplane.Principal) []byte {
	list := func(b []byte, ss []string) []byte {
		if ss == nil {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(len(ss))+1)
		for _, s := range ss {
			b = keyField(b, s)
		}
		return b
	}
	b = keyField(b, p.Name)
	b = keyField(b, p.Method)
	b = list(b, p.Teams)
	b = list(b, p.Roles)
	if p.Expires != nil {
		b = p.Expires.AppendFormat(b, time.RFC3339Nano)
	}
	return b
}

func principalValue(p modelplane.Principal) ast.Value {
	kv := make([][2]*ast.Term, 0, 5)
	kv = append(kv, item(keyName, str(p.Name)))
	if len(p.Teams) > 0 {
		kv = append(kv, item(keyTeams, stringArray(p.Teams)))
	}
	kv = append(kv, item(keyRoles, stringArray(p.Roles)), item(keyMethod, str(p.Method)))
	if p.Expires != nil {
		kv = append(kv, item(keyExpires, str(p.Expires.Format(time.RFC3339Nano))))
	}
	return ast.NewObject(kv...)
}

func assetValue(a Asset) ast.Value {
	kv := make([][2]*ast.Term, 0, 9)
	kv = append(kv,
		item(keyKind, str(a.Kind)),
		item(keyName, str(a.Name)),
		item(keyOwner, str(a.Owner)),
		item(keyTeam, str(a.Team)),
		item(keyRiskTier, str(a.RiskTier)),
		item(keyDataDomain, str(a.DataDomain)),
		item(keyVersion, str(a.Version)),
	)
	if len(a.Metrics) > 0 {
		m := make([][2]*ast.Term, 0, len(a.Metrics))
		for k, v := range a.Metrics {
			// JSON cannot carry NaN or ±Inf; such a metric is no evidence.
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			m = append(m, [2]*ast.Term{str(k), ast.FloatNumberTerm(v)})
		}
		kv = append(kv, item(keyMetrics, ast.ObjectTerm(m...)))
	}
	if len(a.Lineage) > 0 {
		m := make([][2]*ast.Term, 0, len(a.Lineage))
		for k, v := range a.Lineage {
			m = append(m, [2]*ast.Term{str(k), str(v)})
		}
		kv = append(kv, item(keyLineage, ast.ObjectTerm(m...)))
	}
	return ast.NewObject(kv...)
}

func promotionValue(p *modelplane.PolicyPromotion) ast.Value {
	kv := make([][2]*ast.Term, 0, 6)
	kv = append(kv,
		item(keyID, str(p.ID)),
		item(keyRequestedBy, str(p.RequestedBy)),
		item(keyStage, str(p.Stage)),
		item(keyEvidenceHash, str(p.EvidenceHash)),
	)
	if len(p.Approvals) > 0 {
		votes := make([]*ast.Term, len(p.Approvals))
		for i, a := range p.Approvals {
			votes[i] = ast.ObjectTerm(
				item(keyApprover, str(a.Approver)),
				item(keyDecision, str(a.Decision)),
				item(keyEvidenceHash, str(a.EvidenceHash)),
			)
		}
		kv = append(kv, item(keyApprovals, ast.ArrayTerm(votes...)))
	}
	kv = append(kv, item(keyOverride, ast.InternedTerm(p.Override)))
	return ast.NewObject(kv...)
}

// stringArray mirrors encoding/json: a nil slice is null, an empty one [].
func stringArray(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}
