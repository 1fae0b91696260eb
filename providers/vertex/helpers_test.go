package vertex_test

import (
	"context"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/vertex"
	"github.com/modelplane/modelplane/providers/vertex/vertextest"
)

const model = "fraud-detector"

var ctx = context.Background()

type env struct {
	s *vertextest.Server
	p *vertex.Provider
	t modelplane.Target
}

func newEnv(t *testing.T) env {
	s, p, target := vertextest.Setup(t)
	return env{s, p, target}
}

// settle polls op until done, without sleeping (the stand-in counts polls),
// and returns the final status and the number of polls.
func (e env) settle(t *testing.T, op modelplane.Op) (modelplane.OpStatus, int) {
	t.Helper()
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}, 0
	}
	for i := 1; i <= 50; i++ {
		st, err := e.p.Poll(ctx, e.t, op)
		if err != nil {
			t.Fatalf("Poll(%s): %v", op.ID, err)
		}
		if st.Done {
			return st, i
		}
	}
	t.Fatalf("operation %s never finished", op.ID)
	return modelplane.OpStatus{}, 0
}

func (e env) register(t *testing.T, versions ...string) {
	t.Helper()
	for _, v := range versions {
		op, err := e.p.RegisterVersion(ctx, e.t, modelplane.Version{Model: model, Version: v, ArtifactURI: "gs://models/" + model + "/" + v})
		if err != nil {
			t.Fatalf("RegisterVersion(%s): %v", v, err)
		}
		if st, _ := e.settle(t, op); st.Failed {
			t.Fatalf("upload of %s failed: %s", v, st.Reason)
		}
	}
}

func (e env) setTraffic(t *testing.T, split modelplane.TrafficSplit, id string) {
	t.Helper()
	op, err := e.p.SetTraffic(ctx, e.t, model, split, id)
	if err != nil {
		t.Fatalf("SetTraffic(%s, %s): %v", split, id, err)
	}
	if st, _ := e.settle(t, op); st.Failed {
		t.Fatalf("SetTraffic(%s, %s) failed: %s", split, id, st.Reason)
	}
}

func (e env) state(t *testing.T) modelplane.EndpointState {
	t.Helper()
	st, err := e.p.State(ctx, e.t, model)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

// versionName is the Vertex resource name (…/models/ID@N) of one of our versions.
func (e env) versionName(t *testing.T, version string) string {
	t.Helper()
	for _, name := range e.s.ModelNames() {
		for _, m := range e.s.ModelVersions(name) {
			if m.GetDisplayName() == model && m.GetVersionDescription() == version {
				return m.GetName() + "@" + m.GetVersionId()
			}
		}
	}
	t.Fatalf("version %s not in the stand-in's registry", version)
	return ""
}
