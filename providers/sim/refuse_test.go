package sim_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sim"
)

func TestRefusedNamesWhyOnCreationAndOnEveryCall(t *testing.T) {
	tg := modelplane.Target{Name: "prod", Provider: sim.Name, Environment: "production"}
	var r sim.Refused
	if err := r.ValidateTarget(tg); modelplane.ErrorCode(err) != modelplane.EInvalid || !strings.Contains(err.Error(), "provider: sim is the simulator of modelplane dev") {
		t.Fatalf("creating a sim target: %v", err)
	}
	_, err := r.SetTraffic(context.Background(), tg, "churn", modelplane.TrafficSplit{"1": 100}, "m1")
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "target prod uses provider sim") {
		t.Fatalf("moving traffic on a stored sim target: %v", err)
	}
	if _, err := r.Health(context.Background(), tg, "churn", "1", 0); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("health of a stored sim target: %v (it must never pass an analysis)", err)
	}
}
