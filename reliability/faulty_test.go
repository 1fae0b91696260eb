//go:build reliability

package reliability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sim"
)

// faultPlan says which provider calls fail. Calls are numbered per
// operation (SetTraffic, Health, ...); call i fails when i%10 is in failOn,
// the kinds of fault taken in turn. A fixed pattern rather than a random
// draw: the share of faults is exact and every kind is sure to occur once an
// operation has been called often enough, whatever the interleaving.
type faultPlan struct {
	failOn []int
}

// thirtyPercent fails 3 calls in 10, two of them in a row — the first two
// calls of each operation, so even a single call meets faults first.
var thirtyPercent = []int{1, 2, 7}

// faultKind is how a platform call goes wrong.
type faultKind string

const (
	faultUnavailable faultKind = "unavailable" // refused before doing anything (HTTP 503)
	faultThrottled   faultKind = "throttled"   // refused by rate limiting (HTTP 429)
	faultTimeout     faultKind = "timeout"     // no answer in time: every other one was applied
	faultLostReply   faultKind = "lost_reply"  // applied, then the answer was lost
)

var faultKinds = []faultKind{faultUnavailable, faultThrottled, faultTimeout, faultLostReply}

// fault is what happens to one call.
type fault struct {
	kind    faultKind
	applied bool // the call reaches the platform before the error
}

// faultyProvider is the simulator behind an unreliable network: it fails
// calls by plan and records what reached the platform, per operation and per
// mutation id.
type faultyProvider struct {
	inner *sim.Provider
	plan  faultPlan

	mu       sync.Mutex
	calls    map[string]int               // operation → calls
	faults   map[string]map[faultKind]int // operation → kind → faults
	timeouts map[string]int               // operation → timeouts so far (alternately applied)
	// outcomes lists, per mutation id, what each call carrying it got.
	outcomes map[string][]string
}

func newFaultyProvider(inner *sim.Provider, plan faultPlan) *faultyProvider {
	return &faultyProvider{inner: inner, plan: plan, calls: map[string]int{}, faults: map[string]map[faultKind]int{},
		timeouts: map[string]int{}, outcomes: map[string][]string{}}
}

// enter numbers the call and decides its fault.
func (f *faultyProvider) enter(op string) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if !slices.Contains(f.plan.failOn, f.calls[op]%10) {
		return fault{}
	}
	if f.faults[op] == nil {
		f.faults[op] = map[faultKind]int{}
	}
	n := 0
	for _, c := range f.faults[op] {
		n += c
	}
	ft := fault{kind: faultKinds[n%len(faultKinds)]}
	f.faults[op][ft.kind]++
	switch ft.kind {
	case faultLostReply:
		ft.applied = true
	case faultTimeout:
		ft.applied = f.timeouts[op]%2 == 0
		f.timeouts[op]++
	}
	return ft
}

// before is the error of a call refused before it reaches the platform.
func (ft fault) before() error {
	switch {
	case ft.kind == faultUnavailable:
		return errors.New("sim: 503 Service Unavailable (injected)")
	case ft.kind == faultThrottled:
		return errors.New("sim: 429 ThrottlingException: rate exceeded (injected)")
	case ft.kind == faultTimeout && !ft.applied:
		return errors.New("sim: request timed out (injected; not applied)")
	}
	return nil
}

// after is the error the caller sees once the platform answered err.
func (ft fault) after(err error) error {
	if err != nil {
		return err
	}
	switch ft.kind {
	case faultLostReply:
		return errors.New("sim: connection reset after the request was sent (injected; applied)")
	case faultTimeout:
		return errors.New("sim: request timed out (injected; applied)")
	}
	return nil
}

// mutation wraps a call that carries a mutation id and records its outcome.
func (f *faultyProvider) mutation(op, id string, call func() (modelplane.Op, error)) (modelplane.Op, error) {
	ft := f.enter(op)
	var (
		res modelplane.Op
		err = ft.before()
	)
	if err == nil {
		res, err = call()
		err = ft.after(err)
	}
	outcome := "ok"
	switch {
	case ft.kind != "":
		outcome = string(ft.kind)
	case err != nil:
		outcome = "error: " + err.Error()
	}
	f.mu.Lock()
	f.outcomes[id] = append(f.outcomes[id], outcome)
	f.mu.Unlock()
	return res, err
}

func (f *faultyProvider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	ft := f.enter("RegisterVersion")
	if err := ft.before(); err != nil {
		return modelplane.Op{}, err
	}
	op, err := f.inner.RegisterVersion(ctx, t, v)
	return op, ft.after(err)
}

func (f *faultyProvider) SetTraffic(ctx context.Context, t modelplane.Target, model string, split modelplane.TrafficSplit, id string) (modelplane.Op, error) {
	return f.mutation("SetTraffic", id, func() (modelplane.Op, error) { return f.inner.SetTraffic(ctx, t, model, split, id) })
}

func (f *faultyProvider) StartShadow(ctx context.Context, t modelplane.Target, model string, s modelplane.Shadow, id string) (modelplane.Op, error) {
	return f.mutation("StartShadow", id, func() (modelplane.Op, error) { return f.inner.StartShadow(ctx, t, model, s, id) })
}

func (f *faultyProvider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, id string) (modelplane.Op, error) {
	return f.mutation("StopShadow", id, func() (modelplane.Op, error) { return f.inner.StopShadow(ctx, t, model, promote, id) })
}

func (f *faultyProvider) Retire(ctx context.Context, t modelplane.Target, model, version string) (modelplane.Op, error) {
	ft := f.enter("Retire")
	if err := ft.before(); err != nil {
		return modelplane.Op{}, err
	}
	op, err := f.inner.Retire(ctx, t, model, version)
	return op, ft.after(err)
}

func (f *faultyProvider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	ft := f.enter("Poll")
	if err := ft.before(); err != nil {
		return modelplane.OpStatus{}, err
	}
	st, err := f.inner.Poll(ctx, t, op)
	return st, ft.after(err)
}

func (f *faultyProvider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	ft := f.enter("State")
	if err := ft.before(); err != nil {
		return modelplane.EndpointState{}, err
	}
	st, err := f.inner.State(ctx, t, model)
	return st, ft.after(err)
}

func (f *faultyProvider) Health(ctx context.Context, t modelplane.Target, model, version string, window time.Duration) (modelplane.Health, error) {
	ft := f.enter("Health")
	if err := ft.before(); err != nil {
		return modelplane.Health{}, err
	}
	h, err := f.inner.Health(ctx, t, model, version, window)
	return h, ft.after(err)
}

// outcomesOf is what each call carrying the mutation id got, in order.
func (f *faultyProvider) outcomesOf(id string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.outcomes[id])
}

// lostMutations are the mutation ids applied by a call whose answer was lost.
func (f *faultyProvider) lostMutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, oc := range f.outcomes {
		for _, o := range oc {
			if o == string(faultLostReply) {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func (f *faultyProvider) faultsOf(op string, kind faultKind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults[op][kind]
}

// summary is a table of calls and faults per operation, for the test log.
func (f *faultyProvider) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := make([]string, 0, len(f.calls))
	for op := range f.calls {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		n := 0
		var kinds []string
		for _, k := range faultKinds {
			n += f.faults[op][k]
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, f.faults[op][k]))
		}
		fmt.Fprintf(&b, "  %-16s calls=%-5d faults=%-4d (%s)\n", op, f.calls[op], n, strings.Join(kinds, " "))
	}
	return b.String()
}
