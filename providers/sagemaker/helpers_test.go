package sagemaker_test

import (
	"context"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

var ctx = context.Background()

const model = "churn"

type fixture struct {
	p   *sagemaker.Provider
	srv *sagemakertest.Server
	tg  modelplane.Target
}

func (f fixture) endpoint() string { return sagemaker.EndpointName(f.tg.Name, f.tg.Config, model) }

// newFixture registers versions on a fresh stand-in.
func newFixture(t *testing.T, extra []string, versions ...string) fixture {
	t.Helper()
	p, srv := sagemakertest.Provider(t)
	f := fixture{p: p, srv: srv, tg: sagemakertest.Target("prod", extra...)}
	for _, v := range versions {
		f.register(t, v)
	}
	return f
}

func (f fixture) register(t *testing.T, v string) {
	t.Helper()
	op, err := f.p.RegisterVersion(ctx, f.tg, modelplane.Version{Model: model, Version: v, ArtifactURI: "s3://models/" + model + "/" + v + "/model.tar.gz"})
	if err != nil {
		t.Fatalf("RegisterVersion(%s): %v", v, err)
	}
	f.wait(t, op)
}

// wait polls until the op is done; the stand-in finishes after a few
// describes, so no sleeping.
func (f fixture) wait(t *testing.T, op modelplane.Op) modelplane.OpStatus {
	t.Helper()
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}
	}
	for range 50 {
		st, err := f.p.Poll(ctx, f.tg, op)
		if err != nil {
			t.Fatalf("Poll(%s): %v", op.ID, err)
		}
		if st.Done {
			return st
		}
	}
	t.Fatalf("op %s never finished", op.ID)
	return modelplane.OpStatus{}
}

// set moves traffic and fails the test unless it succeeds.
func (f fixture) set(t *testing.T, split modelplane.TrafficSplit, id string) {
	t.Helper()
	op, err := f.p.SetTraffic(ctx, f.tg, model, split, id)
	if err != nil {
		t.Fatalf("SetTraffic(%s, %s): %v", split, id, err)
	}
	if st := f.wait(t, op); st.Failed {
		t.Fatalf("SetTraffic(%s) failed: %s", split, st.Reason)
	}
}

func (f fixture) state(t *testing.T) modelplane.EndpointState {
	t.Helper()
	st, err := f.p.State(ctx, f.tg, model)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}
