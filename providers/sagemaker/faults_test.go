package sagemaker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

func TestRegisterAfterLostRepliesCreatesNothingTwice(t *testing.T) {
	f := newFixture(t, nil)
	v := modelplane.Version{Model: model, Version: "v1", ArtifactURI: "s3://models/churn/v1.tar.gz"}
	for _, op := range []string{"CreateModelPackageGroup", "CreateModelPackage", "CreateModel"} {
		f.srv.LoseReply(op, 1)
		_, err := f.p.RegisterVersion(ctx, f.tg, v)
		if err == nil || errors.Is(err, modelplane.ErrInvalid) {
			t.Fatalf("lost %s reply: err = %v, want a retryable error", op, err)
		}
	}
	if _, err := f.p.RegisterVersion(ctx, f.tg, v); err != nil {
		t.Fatalf("retry: %v", err)
	}
	for _, op := range []string{"CreateModelPackageGroup", "CreateModelPackage", "CreateModel"} {
		if n := f.srv.Calls(op); n != 1 {
			t.Errorf("%s took effect %d times, want 1", op, n)
		}
	}
	if n := f.srv.Packages(model); n != 1 {
		t.Errorf("%d model packages, want 1", n)
	}
	if got := f.state(t).Versions; len(got) != 1 || got[0] != "v1" {
		t.Errorf("versions = %v", got)
	}
}

func TestSetTrafficAfterLostRepliesMutatesOnce(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	retried := func(op string, split modelplane.TrafficSplit, id string) {
		t.Helper()
		f.srv.LoseReply(op, 1)
		if _, err := f.p.SetTraffic(ctx, f.tg, model, split, id); err == nil || errors.Is(err, modelplane.ErrInvalid) {
			t.Fatalf("lost %s reply: err = %v, want retryable", op, err)
		}
		before := f.srv.Calls(op)
		f.set(t, split, id) // Temporal's retry of the same activity
		if f.srv.Calls(op) != before {
			t.Fatalf("the retry called %s again", op)
		}
		if got := f.state(t).Traffic; got.String() != split.String() {
			t.Fatalf("traffic = %s, want %s", got, split)
		}
	}
	retried("CreateEndpoint", modelplane.TrafficSplit{"v1": 100}, "m1")
	retried("UpdateEndpoint", modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m2")
	retried("UpdateEndpointWeightsAndCapacities", modelplane.TrafficSplit{"v1": 50, "v2": 50}, "m3")
	if n := f.srv.Calls("CreateEndpointConfig"); n != 2 {
		t.Fatalf("%d endpoint configs created, want 2 (one per variant set)", n)
	}

	// The update went through and so did the tag recording it, but the
	// reply of the tag call was lost: the retry waits for the update.
	f.srv.LoseReplyOn("AddTags", 2) // 1: variant tags, 2: the applied id
	if _, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 100, "v3": 0}, "m4"); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("unregistered v3: %v", err)
	}
	f.register(t, "v3")
	split := modelplane.TrafficSplit{"v1": 100, "v3": 0}
	if _, err := f.p.SetTraffic(ctx, f.tg, model, split, "m5"); err == nil {
		t.Fatal("lost AddTags reply: no error")
	}
	updates := f.srv.Calls("UpdateEndpoint")
	f.set(t, split, "m5")
	if f.srv.Calls("UpdateEndpoint") != updates {
		t.Fatal("the retry updated the endpoint again")
	}
	if got := f.state(t).Versions; strings.Join(got, ",") != "v1,v2,v3" {
		t.Fatalf("versions = %v", got)
	}
}

func TestThrottlingThenSuccess(t *testing.T) {
	f := newFixture(t, nil, "v1")
	f.srv.FailNext("DescribeEndpoint", 1, sagemakertest.Throttle)
	_, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 100}, "m1")
	if err == nil || errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("throttled call: err = %v, want a retryable throttling error", err)
	}
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "m1")

	// With SDK retries on, a blip never reaches the caller.
	o := sagemakertest.Options(f.srv)
	o.MaxAttempts = 3
	p := sagemaker.New(o)
	f.srv.FailNext("DescribeEndpoint", 2, sagemakertest.Throttle)
	before := f.srv.Requests("DescribeEndpoint")
	if _, err := p.State(ctx, f.tg, model); err != nil {
		t.Fatalf("State with retries: %v", err)
	}
	if n := f.srv.Requests("DescribeEndpoint") - before; n != 3 {
		t.Fatalf("DescribeEndpoint requests = %d, want 3 (two throttled)", n)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	for _, fault := range []sagemakertest.Fault{sagemakertest.Internal, sagemakertest.Unavailable} {
		f.srv.FailNext("UpdateEndpoint", 1, fault)
		_, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 80, "v2": 20}, "m2")
		if err == nil || errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("%s: err = %v, want retryable", fault, err)
		}
	}
	// The endpoint is Updating now: another change is refused for the moment, not for good.
	op, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 80, "v2": 20}, "m2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 70, "v2": 30}, "m3"); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Errorf("change during Updating: err = %v, want retryable", err)
	}
	f.wait(t, op)
	// The service's validation errors are for good and quote the service.
	_, err = f.p.Poll(ctx, f.tg, modelplane.Op{ID: "shadow-start|no-such-experiment"})
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "Could not find") || !strings.Contains(err.Error(), "no-such-experiment") {
		t.Errorf("missing experiment: err = %v, want ErrInvalid quoting SageMaker", err)
	}
	if _, err := f.p.Poll(ctx, f.tg, modelplane.Op{ID: "garbage"}); !errors.Is(err, modelplane.ErrInvalid) {
		t.Errorf("foreign op: err = %v", err)
	}
	// A version never registered is refused for good before anything changes.
	if _, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 50, "v9": 50}, "m4"); !errors.Is(err, modelplane.ErrInvalid) {
		t.Errorf("unknown version: err = %v", err)
	}
}

func TestStepsCanaryRollbackAndRetire(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	f.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m2")
	f.set(t, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "m3")
	if n := f.srv.Calls("UpdateEndpointWeightsAndCapacities"); n != 1 {
		t.Fatalf("weight-only step used %d weight updates, want 1", n)
	}
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "rollback")
	if _, err := f.p.Retire(ctx, f.tg, model, "v1"); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("Retire(serving) = %v", err)
	}
	op, err := f.p.Retire(ctx, f.tg, model, "v2")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, op)
	st := f.state(t)
	if st.Traffic.String() != "v1=100" || len(st.Versions) != 1 || st.Versions[0] != "v1" {
		t.Fatalf("state after retire = %+v", st)
	}
	if w, _ := f.srv.Variants(f.endpoint()); len(w) != 1 {
		t.Fatalf("variants after retire = %v", w)
	}
	// A retired version comes back from the registry when asked for.
	f.set(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "again")
}

func TestChangeDuringConfigUpdateWaitsItsTurn(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	op, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m2")
	if err != nil {
		t.Fatal(err)
	}
	// A rollback arriving while the update runs matches the variants still
	// shown (v1 at 100%) but must not count as applied.
	if _, err := f.p.SetTraffic(ctx, f.tg, model, modelplane.TrafficSplit{"v1": 100}, "rollback"); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("rollback during update: err = %v, want retryable", err)
	}
	f.wait(t, op)
	f.set(t, modelplane.TrafficSplit{"v1": 100}, "rollback")
	if got := f.state(t).Traffic.String(); got != "v1=100" {
		t.Fatalf("traffic after rollback = %s", got)
	}
}
