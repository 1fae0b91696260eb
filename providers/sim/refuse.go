package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/modelplane/modelplane"
)

// EnvForTests lets `modelplane server` and `worker` serve the simulator,
// for the tests that run them as separate processes. Nothing else sets it.
const EnvForTests = "MODELPLANE_SIMULATOR"

// Refused stands in for the simulator in processes that serve real
// platforms: it refuses to create a target on it and fails every call for
// one stored earlier, saying why. The simulator's health passes every
// analysis, so a production target left on it would promote anything.
type Refused struct{}

var _ modelplane.Provider = Refused{}

func (Refused) err(t modelplane.Target) error {
	return fmt.Errorf("%w: target %s uses provider %s, the simulator of modelplane dev and tests; this process serves real platforms only (sagemaker, vertex, kserve)", modelplane.ErrInvalid, t.Name, Name)
}

// ValidateTarget refuses the target when it is created.
func (r Refused) ValidateTarget(t modelplane.Target) error {
	return modelplane.FieldError("provider", "%s is the simulator of modelplane dev and tests; this process serves real platforms only (sagemaker, vertex, kserve)", Name)
}

func (r Refused) RegisterVersion(_ context.Context, t modelplane.Target, _ modelplane.Version) (modelplane.Op, error) {
	return modelplane.Op{}, r.err(t)
}

func (r Refused) SetTraffic(_ context.Context, t modelplane.Target, _ string, _ modelplane.TrafficSplit, _ string) (modelplane.Op, error) {
	return modelplane.Op{}, r.err(t)
}

func (r Refused) StartShadow(_ context.Context, t modelplane.Target, _ string, _ modelplane.Shadow, _ string) (modelplane.Op, error) {
	return modelplane.Op{}, r.err(t)
}

func (r Refused) StopShadow(_ context.Context, t modelplane.Target, _ string, _ bool, _ string) (modelplane.Op, error) {
	return modelplane.Op{}, r.err(t)
}

func (r Refused) Retire(_ context.Context, t modelplane.Target, _, _ string) (modelplane.Op, error) {
	return modelplane.Op{}, r.err(t)
}

func (r Refused) Poll(_ context.Context, t modelplane.Target, _ modelplane.Op) (modelplane.OpStatus, error) {
	return modelplane.OpStatus{}, r.err(t)
}

func (r Refused) State(_ context.Context, t modelplane.Target, _ string) (modelplane.EndpointState, error) {
	return modelplane.EndpointState{}, r.err(t)
}

func (r Refused) Health(_ context.Context, t modelplane.Target, _, _ string, _ time.Duration) (modelplane.Health, error) {
	return modelplane.Health{}, r.err(t)
}
