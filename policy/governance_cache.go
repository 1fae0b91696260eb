package policy

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/modelplane/modelplane"
)

// The decision cache.
//
// A decision is a function of the policy (rules and data, both fixed for
// one compiled bundle), the input and possibly the clock: input.time, and
// builtins that read the clock or are otherwise nondeterministic. Most
// decisions never look at the clock: a read by a team member touches no
// change window and, unless the caller's credentials carry an expiry, no
// time at all. Such a decision is kept, keyed by the input without its
// time, in the compiled policy it came from: a reload starts from an empty
// cache, so no decision of an older policy ever answers for a newer one.
//
// The key encodes every field of the Input but its time (appendKey): the
// action, the caller's name, teams, roles, method, expiry (and client and
// delegation chain, which the policy does not see today), the asset,
// target, promotion and request. A caller whose roles or teams change asks
// a different question. The key is built from the Input, not from the OPA
// value, so a hit builds no value at all; TestCacheKeyCoversInput changes
// every field of the Input in turn and fails if the key does not change.
//
// Whether a decision looked at the clock is observed, not guessed: the
// evaluation that fills the cache runs with a tracer that sees every rule
// the evaluation enters, and entering a rule that reads input.time, the
// input as a whole, an input key computed at run time, or calls a
// nondeterministic builtin (time.now_ns, rand.intn, http.send, ...) makes
// the answer uncacheable. Evaluation is deterministic given what it read,
// so rules it never entered cannot have swayed it; rule indexing is off
// for that evaluation, since the index could otherwise pass over a rule
// because of the time without entering it.
//
// Tracing costs about three plain evaluations, so it is spent only on a
// question asked before: the first time a key is seen it is evaluated
// plainly and remembered as seen; the second time it is traced, and the
// answer kept or the key marked uncacheable (evaluated plainly from then
// on). A stream of distinct questions (tool calls with fresh arguments)
// pays a map entry each, not a trace.
//
// Entries hold a decision's outcome, not the decision: each answer gets a
// fresh ID, so audit records stay distinct. Evaluation errors are never
// kept. WithDecisionCache sizes the cache or turns it off.

// cacheLimit is the default size of each of the cache's two generations: at
// most twice as many keys are kept per compiled policy.
const cacheLimit = 4096

// maxKeyLen skips the cache for inputs whose encoding is larger (a tool
// call with bulky arguments): they rarely repeat and would crowd it out.
const maxKeyLen = 1024

type cacheState uint8

const (
	cachedSeen        cacheState = iota + 1 // asked once; trace it next time
	cachedUncacheable                       // the answer read the clock
	cachedDecision                          // the answer, valid at any time
)

// cached is one key's entry.
type cached struct {
	state             cacheState
	allow             bool
	explicit          bool
	requiredApprovals int
	reasons           []string
}

var (
	seenEntry        = &cached{state: cachedSeen}
	uncacheableEntry = &cached{state: cachedUncacheable}
)

// fill copies a kept outcome into d; the reasons are the caller's own copy.
func (v *cached) fill(d *modelplane.PolicyDecision) {
	d.Allow, d.Explicit, d.RequiredApprovals = v.allow, v.explicit, v.requiredApprovals
	d.Reasons = slices.Clone(v.reasons)
}

// decisionCache is a two-generation cache: lookups check the current map,
// then the previous one; when the current map is full it becomes the
// previous one and the oldest generation is dropped. Keys in use survive a
// turn (a hit in the previous generation is copied forward).
type decisionCache struct {
	mu        sync.RWMutex
	cur, prev map[string]*cached
	limit     int

	hits atomic.Uint64 // answers served from the cache

	readsClock sync.Map // *ast.Rule → bool, filled as rules are first entered
}

func newDecisionCache(limit int) *decisionCache {
	if limit <= 0 {
		return nil
	}
	return &decisionCache{cur: make(map[string]*cached), limit: limit}
}

// keyBuffers recycle the buffers keys are encoded into.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// lookup encodes the key of a question into buf and returns it with its
// entry, if any. The key is nil when the input cannot be cached (too large,
// or a request value of a type the key does not know).
func (c *decisionCache) lookup(buf *[]byte, tool bool, in Input) ([]byte, *cached) {
	key := (*buf)[:0]
	if tool {
		key = append(key, 't') // DecideTool asks another query first
	} else {
		key = append(key, 'd')
	}
	key, ok := appendKey(key, in)
	if cap(key) <= 4*maxKeyLen {
		*buf = key[:0] // keep the grown buffer for next time
	}
	if !ok || len(key) > maxKeyLen {
		return nil, nil
	}
	c.mu.RLock()
	v, inCur := c.cur[string(key)]
	inPrev := false
	if !inCur {
		v, inPrev = c.prev[string(key)]
	}
	c.mu.RUnlock()
	if inPrev {
		c.put(key, v) // still in use: carry it into the current generation
	}
	if v != nil && v.state == cachedDecision {
		c.hits.Add(1)
	}
	return key, v
}

// record notes an evaluated answer: the first sighting of a key marks it
// seen; a traced one keeps the answer, unless it read the clock.
func (c *decisionCache) record(key []byte, prev *cached, tracer *clockTracer, d modelplane.PolicyDecision) {
	switch {
	case prev == nil:
		c.put(key, seenEntry)
	case tracer == nil: // uncacheable: nothing changes
	case tracer.clock:
		c.put(key, uncacheableEntry)
	default:
		c.put(key, &cached{state: cachedDecision, allow: d.Allow, explicit: d.Explicit,
			requiredApprovals: d.RequiredApprovals, reasons: slices.Clone(d.Reasons)})
	}
}

func (c *decisionCache) put(key []byte, v *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[string(key)]; !ok && len(c.cur) >= c.limit {
		c.prev, c.cur = c.cur, make(map[string]*cached, c.limit)
	}
	c.cur[string(key)] = v
}

// clockTracer watches an evaluation for rules that read the clock.
type clockTracer struct {
	c     *decisionCache
	clock bool
}

func (t *clockTracer) Enabled() bool { return true }

func (t *clockTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *clockTracer) TraceEvent(ev topdown.Event) {
	if t.clock || ev.Op != topdown.EnterOp {
		return
	}
	r, ok := ev.Node.(*ast.Rule)
	if !ok {
		return
	}
	if v, ok := t.c.readsClock.Load(r); ok {
		t.clock = v.(bool)
		return
	}
	v := ruleReadsClock(r)
	t.c.readsClock.Store(r, v)
	t.clock = v
}

// ruleReadsClock reports whether a compiled rule (its head, body and else
// branches) may read the time: input.time, the input as a whole (which
// holds the time), an input key computed at run time, or a
// nondeterministic builtin. It errs on the side of yes.
//
// object.get(input, path, default) with a constant first key other than
// "time" reads only that key; the compiler binds the input to a local
// first (__local1__ = input; object.get(__local1__, ...)), so such locals
// are followed, and any other use of them counts as reading everything.
func ruleReadsClock(r *ast.Rule) bool {
	aliases := map[ast.Var]bool{}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if v, ok := inputAlias(e); ok {
			aliases[v] = true
		}
		return false
	})
	bare := func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Ref:
			return len(v) == 1 && v[0].Value.Compare(ast.InputRootDocument.Value) == 0
		case ast.Var:
			return v.Equal(ast.InputRootDocument.Value) || aliases[v]
		}
		return false
	}
	found := false
	var vis *ast.GenericVisitor
	walkAll := func(ts []*ast.Term) {
		for _, t := range ts {
			vis.Walk(t)
		}
	}
	call := func(op ast.Ref, args []*ast.Term) {
		name := op.String()
		if b, ok := ast.BuiltinMap[name]; ok && (b.Nondeterministic || clockBuiltins[name]) {
			found = true
			return
		}
		if name == ast.ObjectGet.Name && len(args) >= 2 && bare(args[0]) {
			if !constantKey(args[1]) {
				found = true
				return
			}
			args = args[1:]
		}
		walkAll(args)
	}
	vis = ast.NewGenericVisitor(func(x any) bool {
		if found {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if _, ok := inputAlias(x); ok {
				return true // the binding itself reads nothing
			}
			if x.IsCall() {
				call(x.Operator(), x.Operands())
				for _, w := range x.With {
					vis.Walk(w)
				}
				return true
			}
		case ast.Call:
			if len(x) > 0 {
				if op, ok := x[0].Value.(ast.Ref); ok {
					call(op, x[1:])
					return true
				}
			}
		case ast.Ref:
			if len(x) > 0 && x[0].Value.Compare(ast.InputRootDocument.Value) == 0 {
				if len(x) == 1 || !inputKeyOK(x[1]) {
					found = true
					return true
				}
				walkAll(x[2:])
				return true
			}
			// A builtin named but not called: `with f as time.now_ns`.
			if b, ok := ast.BuiltinMap[x.String()]; ok && (b.Nondeterministic || clockBuiltins[b.Name]) {
				found = true
				return true
			}
		case ast.Var:
			if x.Equal(ast.InputRootDocument.Value) || aliases[x] {
				found = true // the input used as a whole
			}
		}
		return false
	})
	vis.Walk(r)
	if !found && r.Head != nil && r.Head.Reference != nil {
		vis.Walk(r.Head.Reference)
	}
	return found
}

// inputAlias recognises `v = input`, the compiler's binding of the whole
// input to a local.
func inputAlias(e *ast.Expr) (ast.Var, bool) {
	if len(e.With) > 0 || e.Negated || !e.IsEquality() {
		return "", false
	}
	ops := e.Operands()
	for i, t := range ops {
		if r, ok := t.Value.(ast.Ref); ok && len(r) == 1 && r[0].Value.Compare(ast.InputRootDocument.Value) == 0 {
			if v, ok := ops[1-i].Value.(ast.Var); ok && !v.IsWildcard() {
				return v, true
			}
		}
	}
	return "", false
}

// constantKey: object.get's path is a constant key, or a constant array
// starting with one, other than "time".
func constantKey(p *ast.Term) bool {
	switch v := p.Value.(type) {
	case ast.String:
		return inputKeyOK(p)
	case *ast.Array:
		return v.Len() > 0 && inputKeyOK(v.Elem(0))
	}
	return false
}

// clockBuiltins read the wall clock without being marked nondeterministic:
// certificate chains are verified at the current time.
var clockBuiltins = map[string]bool{
	ast.NowNanos.Name: true,
	ast.CryptoX509ParseAndVerifyCertificates.Name:            true,
	ast.CryptoX509ParseAndVerifyCertificatesWithOptions.Name: true,
}

// inputKeyOK: a constant key of the input other than "time".
func inputKeyOK(k *ast.Term) bool {
	s, ok := k.Value.(ast.String)
	return ok && s != "time"
}

// appendKey appends an encoding of every field of in but Time: two inputs
// with the same encoding give the policy the same input, whatever the time.
// Strings are length-prefixed, nil and empty lists differ (the policy sees
// null and []), map entries are sorted. It reports false for a request
// value of a type it does not encode.
func appendKey(b []byte, in Input) ([]byte, bool) {
	b = keyString(b, in.Action)
	p := in.Caller
	b = keyString(b, p.Name)
	b = keyStrings(b, p.Teams)
	b = keyStrings(b, p.Roles)
	b = keyString(b, p.Method)
	if p.Expires != nil {
		b = append(b, 1)
		b = append(p.Expires.AppendFormat(b, time.RFC3339Nano), 0)
	} else {
		b = append(b, 0)
	}
	b = keyString(b, p.Client)
	b = keyStrings(b, p.Act)
	if in.CallerExpired {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	a := in.Asset
	for _, s := range [...]string{a.Kind, a.Name, a.Owner, a.Team, a.RiskTier, a.DataDomain, a.Version} {
		b = keyString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(a.Metrics)))
	for _, k := range sortedKeys(a.Metrics) {
		b = keyString(b, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Metrics[k]))
	}
	b = binary.AppendUvarint(b, uint64(len(a.Lineage)))
	for _, k := range sortedKeys(a.Lineage) {
		b = keyString(keyString(b, k), a.Lineage[k])
	}
	if t := in.Target; t != nil {
		b = append(b, 1)
		b = keyString(keyString(keyString(b, t.Name), t.Environment), t.Provider)
	} else {
		b = append(b, 0)
	}
	if pr := in.Promotion; pr != nil {
		b = append(b, 1)
		b = keyString(keyString(keyString(keyString(b, pr.ID), pr.RequestedBy), pr.Stage), pr.EvidenceHash)
		if pr.Approvals == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
		}
		b = binary.AppendUvarint(b, uint64(len(pr.Approvals)))
		for _, v := range pr.Approvals {
			b = keyString(keyString(keyString(b, v.Approver), v.Decision), v.EvidenceHash)
		}
		if pr.Override {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	} else {
		b = append(b, 0)
	}
	if in.Request == nil {
		return append(b, 0), true
	}
	return keyAny(append(b, 1), in.Request)
}

func keyString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// keyStrings tells nil from empty: the policy sees null and [].
func keyStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(append(b, 1), uint64(len(ss)))
	for _, s := range ss {
		b = keyString(b, s)
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// keyAny encodes a request value, tagged by its Go type (values OPA would
// convert alike may differ: a miss, never a wrong hit).
func keyAny(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, 'n'), true
	case bool:
		if x {
			return append(b, 'T'), true
		}
		return append(b, 'F'), true
	case string:
		return keyString(append(b, 's'), x), true
	case json.Number:
		return keyString(append(b, 'j'), string(x)), true
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, 'f'), math.Float64bits(x)), true
	case int:
		return binary.AppendVarint(append(b, 'i'), int64(x)), true
	case int64:
		return binary.AppendVarint(append(b, 'I'), x), true
	case []string:
		return keyStrings(append(b, 'S'), x), true
	case []any:
		if x == nil {
			return append(b, 'a', 0), true
		}
		b = binary.AppendUvarint(append(b, 'a', 1), uint64(len(x)))
		for _, e := range x {
			var ok bool
			if b, ok = keyAny(b, e); !ok {
				return b, false
			}
		}
		return b, true
	case map[string]string:
		if x == nil {
			return append(b, 'M', 0), true
		}
		b = binary.AppendUvarint(append(b, 'M', 1), uint64(len(x)))
		for _, k := range sortedKeys(x) {
			b = keyString(keyString(b, k), x[k])
		}
		return b, true
	case map[string]any:
		if x == nil {
			return append(b, 'm', 0), true
		}
		b = binary.AppendUvarint(append(b, 'm', 1), uint64(len(x)))
		for _, k := range sortedKeys(x) {
			var ok bool
			if b, ok = keyAny(keyString(b, k), x[k]); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false
}
