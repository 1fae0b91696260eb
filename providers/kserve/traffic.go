package kserve

import (
	"context"

	"github.com/modelplane/modelplane"
)

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
