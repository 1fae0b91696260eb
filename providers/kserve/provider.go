package kserve

import (
	"context"
	"fmt"
	"sort"

	"github.com/modelplane/modelplane"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

func (p *Provider) setup(t modelplane.Target, model string) (config, dynamic.Interface, error) {
	c, err := parseConfig(t, model)
	if err != nil {
		return c, nil, err
	}
	dc, err := p.client(c)
	return c, dc, err
}

// RegisterVersion records version → storageUri in the model's ConfigMap.
// KServe has no warm standby for a version without traffic, so nothing is
// deployed until SetTraffic names it; the zero Op says there is nothing to wait for.
func (p *Provider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	c, dc, err := p.setup(t, v.Model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if v.Version == "" || v.ArtifactURI == "" {
		return modelplane.Op{}, invalid("version %q of model %s needs a version and an artifact URI (the storageUri)", v.Version, v.Model)
	}
	return modelplane.Op{}, register(ctx, dc, c, v.Model, v.Version, v.ArtifactURI)
}

// SetTraffic moves traffic as planTraffic explains, at most once per mutation id.
func (p *Provider) SetTraffic(ctx context.Context, t modelplane.Target, model string, split modelplane.TrafficSplit, mutationID string) (modelplane.Op, error) {
	c, dc, err := p.setup(t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if mutationID == "" {
		return modelplane.Op{}, invalid("SetTraffic on %s/%s: a mutation id is required", c.namespace, c.name)
	}
	cur, err := getISVC(ctx, dc, c)
	if err != nil {
		return modelplane.Op{}, err
	}
	if cur.applied(mutationID) {
		// Applied before (a retry or a zombie attempt): change nothing, and
		// let the caller wait for whatever the InferenceService does now.
		return opFor(c.namespace, c.name, cur.generation, "mutation "+mutationID+" applied before"), nil
	}
	known, err := loadRegistry(ctx, dc, c)
	if err != nil {
		return modelplane.Op{}, err
	}
	d, err := planTraffic(cur, split, known)
	if err != nil {
		return modelplane.Op{}, err
	}
	return applyISVC(ctx, dc, c, model, cur, d, known[d.spec], mutationID)
}

var errNoShadow = fmt.Errorf("kserve: InferenceServices cannot mirror requests (no shadow traffic); use a canary: %w", modelplane.ErrInvalid)

// StartShadow is refused: KServe has no request mirroring.
func (p *Provider) StartShadow(ctx context.Context, t modelplane.Target, model string, s modelplane.Shadow, mutationID string) (modelplane.Op, error) {
	return modelplane.Op{}, errNoShadow
}

// StopShadow has nothing to stop, since no shadow can run; promoting one is refused.
func (p *Provider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, mutationID string) (modelplane.Op, error) {
	if promote {
		return modelplane.Op{}, errNoShadow
	}
	return modelplane.Op{}, nil
}

// Retire forgets a version that serves nothing. Knative keeps or garbage
// collects old revisions by itself; they scale to zero without traffic.
func (p *Provider) Retire(ctx context.Context, t modelplane.Target, model, version string) (modelplane.Op, error) {
	c, dc, err := p.setup(t, model)
	if err != nil {
		return modelplane.Op{}, err
	}
	cur, err := getISVC(ctx, dc, c)
	if err != nil {
		return modelplane.Op{}, err
	}
	if cur.exists {
		observedSplit, _ := cur.observedTraffic()
		if cur.intendedTraffic()[version] > 0 || observedSplit[version] > 0 {
			return modelplane.Op{}, invalid("version %s still receives traffic on InferenceService %s", version, cur.ref())
		}
	}
	return modelplane.Op{}, unregister(ctx, dc, c, version)
}

// Poll reads the InferenceService once: the Op is done when KServe has
// observed its generation and reports Ready; Ready=False with a failure
// reason is a failed change.
func (p *Provider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	ns, name, gen, err := parseOp(op.ID)
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	c, dc, err := p.setup(t, "")
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	c.namespace, c.name = ns, name
	u, err := dc.Resource(InferenceServices).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return modelplane.OpStatus{Done: true, Failed: true, Reason: fmt.Sprintf("InferenceService %s/%s no longer exists", ns, name)}, nil
	}
	if err != nil {
		return modelplane.OpStatus{}, apiError(fmt.Sprintf("get InferenceService %s/%s", ns, name), err)
	}
	return pollStatus(parseISVC(u), gen), nil
}

// inProgress are Ready=False reasons that mean "not yet", not "failed".
var inProgress = map[string]bool{"": true, "Deploying": true, "Progressing": true, "RevisionMissing": true, "Unknown": true}

// failed: KServe reports the current spec's revision as failed.
func (o observed) failed() bool {
	return o.current() && o.ready.status == "False" && !inProgress[o.ready.reason]
}

func pollStatus(o observed, gen int64) modelplane.OpStatus {
	if o.observedGen < gen {
		return modelplane.OpStatus{}
	}
	switch {
	case o.ready.status == "True":
		return modelplane.OpStatus{Done: true}
	case o.ready.status == "False" && !inProgress[o.ready.reason]:
		return modelplane.OpStatus{Done: true, Failed: true,
			Reason: fmt.Sprintf("InferenceService %s generation %d: %s: %s", o.ref(), o.observedGen, o.ready.reason, o.ready.message)}
	}
	return modelplane.OpStatus{}
}

// State reports the traffic KServe routes (status.components.predictor.traffic)
// once it has seen the latest spec; before that, the spec's intent, with Busy
// saying so. Versions are the registered ones.
func (p *Provider) State(ctx context.Context, t modelplane.Target, model string) (modelplane.EndpointState, error) {
	c, dc, err := p.setup(t, model)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	known, err := loadRegistry(ctx, dc, c)
	if err != nil {
		return modelplane.EndpointState{}, err
	}
	st := modelplane.EndpointState{Traffic: modelplane.TrafficSplit{}, Versions: make([]string, 0, len(known))}
	for v := range known {
		st.Versions = append(st.Versions, v)
	}
	sort.Strings(st.Versions)
	cur, err := getISVC(ctx, dc, c)
	if err != nil || !cur.exists {
		return st, err
	}
	cur.resolve(known)
	st.Traffic, st.Busy = cur.observedTraffic()
	return st, nil
}

// intendedTraffic is the split the spec asks for.
func (o observed) intendedTraffic() modelplane.TrafficSplit {
	s := modelplane.TrafficSplit{}
	spec := o.specVersion()
	switch {
	case spec == "":
	case o.canary == nil || *o.canary >= 100:
		s[spec] = 100
	default:
		if *o.canary > 0 {
			s[spec] = int(*o.canary)
		}
		if 100-*o.canary > 0 && o.stable != "" {
			s[o.stable] += int(100 - *o.canary)
		}
	}
	return s
}

// observedTraffic is the status's traffic in versions, and why the platform
// is busy (empty when it has applied the latest spec and is Ready).
func (o observed) observedTraffic() (modelplane.TrafficSplit, string) {
	if !o.current() || len(o.traffic) == 0 {
		return o.intendedTraffic(), fmt.Sprintf("InferenceService %s: KServe has not yet applied generation %d (observed %d)", o.ref(), o.generation, o.observedGen)
	}
	revs := o.revisionVersions()
	s := modelplane.TrafficSplit{}
	for _, t := range o.traffic {
		if t.percent <= 0 {
			continue
		}
		v := revs[t.revision]
		if v == "" {
			// Not ours (someone edited the service): show it rather than hide traffic.
			v = "revision/" + t.revision
		}
		s[v] += int(t.percent)
	}
	busy := ""
	if o.ready.status != "True" {
		busy = fmt.Sprintf("InferenceService %s not ready: %s %s", o.ref(), o.ready.reason, o.ready.message)
	}
	return s, busy
}
