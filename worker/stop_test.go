package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/worker"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
)

// slow is an activity that stays in flight until released, and records how
// each attempt ended: finished, or cut off by the worker.
type slow struct {
	started  chan struct{}
	release  chan struct{}
	attempts atomic.Int32
	finished atomic.Int32
	cut      atomic.Int32
}

func (s *slow) Slow(ctx context.Context) (string, error) {
	n := s.attempts.Add(1)
	if n == 1 {
		close(s.started)
	}
	select {
	case <-s.release:
		s.finished.Add(1)
		return fmt.Sprintf("attempt %d", n), nil
	case <-ctx.Done():
		s.cut.Add(1)
		return "", ctx.Err()
	}
}

func slowWorkflow(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Second, // a cut-off attempt that never reports is retried after this
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond},
	})
	var out string
	err := workflow.ExecuteActivity(ctx, "Slow").Get(ctx, &out)
	return out, err
}

// stopDuringActivity starts a workflow whose activity is in flight, stops
// the worker with stopTimeout, releases the activity after hold, and then
// lets a second worker finish the workflow. It returns the result and the
// activity's tally.
func stopDuringActivity(t *testing.T, stopTimeout, hold time.Duration) (string, *slow, time.Duration) {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	s := &slow{started: make(chan struct{}), release: make(chan struct{})}
	queue := "stop-" + t.Name()
	newWorker := func() interface {
		Start() error
		Stop()
	} {
		w := worker.New(c, &activities.Activities{}, worker.Options{TaskQueue: queue, StopTimeout: stopTimeout})
		w.RegisterWorkflowWithOptions(slowWorkflow, workflow.RegisterOptions{Name: "Slow"})
		w.RegisterActivityWithOptions(s.Slow, activity.RegisterOptions{Name: "Slow"})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := newWorker()
	ctx := context.Background()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "Slow")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.started:
	case <-time.After(time.Minute):
		t.Fatal("the activity never started")
	}
	stopped := make(chan time.Duration)
	go func() {
		t0 := time.Now()
		w.Stop() // what `modelplane worker` does on SIGTERM
		stopped <- time.Since(t0)
	}()
	time.Sleep(hold)
	close(s.release)
	took := <-stopped

	w2 := newWorker()
	defer w2.Stop()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out string
	if err := run.Get(rctx, &out); err != nil {
		t.Fatal(err)
	}
	return out, s, took
}

// A stopping worker lets the activity in flight finish within the stop
// timeout: it completes once, and the workflow does not run it again.
func TestStopFinishesInFlightActivities(t *testing.T) {
	out, s, took := stopDuringActivity(t, 30*time.Second, 500*time.Millisecond)
	if out != "attempt 1" || s.attempts.Load() != 1 || s.finished.Load() != 1 || s.cut.Load() != 0 {
		t.Fatalf("result %q; attempts %d, finished %d, cut off %d: want the first attempt to finish and no other",
			out, s.attempts.Load(), s.finished.Load(), s.cut.Load())
	}
	if took < 500*time.Millisecond {
		t.Fatalf("Stop returned after %s, before the activity in flight finished", took)
	}
}

// The control: with a stop timeout shorter than the activity, the attempt
// in flight is cut off and a later worker runs it again.
func TestStopTimeoutCutsOffLongActivities(t *testing.T) {
	out, s, _ := stopDuringActivity(t, 100*time.Millisecond, 2*time.Second)
	if s.cut.Load() != 1 || s.attempts.Load() < 2 || out == "attempt 1" {
		t.Fatalf("result %q; attempts %d, finished %d, cut off %d: want the first attempt cut off and retried",
			out, s.attempts.Load(), s.finished.Load(), s.cut.Load())
	}
}
