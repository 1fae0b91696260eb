package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// step is one command of a workflow's shape, read from a real promotion's history.
type step struct {
	Kind   string        // activity | local (activity) | sleep | await (a timer an update or signal cut short)
	D      time.Duration // sleep and await
	Batch  int           // commands of one workflow task share a batch and run together
	Notify bool          // activity: the driver sends the next update once it is done
}

// shaped replays a shape with nothing in it: no-op activities, timers of
// the same durations and the same waits for updates, issued in the same
// workflow tasks. A batch's activities run side by side; with a timer in
// the batch they are only awaited at the end, as a promotion does with the
// event deliveries it starts beside a bake.
func shaped(ctx workflow.Context, steps []step) error {
	got := 0
	if err := workflow.SetUpdateHandler(ctx, "go", func(workflow.Context) error { got++; return nil }); err != nil {
		return err
	}
	sig := workflow.GetSignalChannel(ctx, "go")
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sig.Receive(ctx, nil)
			got++
		}
	})
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var later []workflow.Future
	waits := 0
	for i := 0; i < len(steps); {
		j := i
		for j < len(steps) && steps[j].Batch == steps[i].Batch {
			j++
		}
		var futs []workflow.Future
		timed := false
		for _, s := range steps[i:j] {
			tag := ""
			if s.Notify {
				tag = "ready/" + workflow.GetInfo(ctx).WorkflowExecution.ID
			}
			switch s.Kind {
			case "activity":
				futs = append(futs, workflow.ExecuteActivity(actx, "BenchNoop", tag))
			case "local":
				// One after another inside the workflow task, as a
				// promotion's local steps run.
				if err := workflow.ExecuteLocalActivity(lctx, noop, tag).Get(ctx, nil); err != nil {
					return err
				}
			default:
				timed = true
			}
		}
		if timed {
			later = append(later, futs...)
			futs = nil
		}
		for _, s := range steps[i:j] {
			var err error
			switch s.Kind {
			case "sleep":
				_, err = workflow.AwaitWithTimeout(ctx, s.D, func() bool { return false })
			case "await":
				waits++
				n := waits
				_, err = workflow.AwaitWithTimeout(ctx, s.D, func() bool { return got >= n })
			}
			if err != nil {
				return err
			}
		}
		for _, f := range futs {
			if err := f.Get(ctx, nil); err != nil {
				return err
			}
		}
		i = j
	}
	for _, f := range later {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// shapeCount is what a shape holds.
type shapeCount struct{ activities, locals, timers, messages int }

// localActivityMarker names the marker a local activity leaves in history.
const localActivityMarker = "LocalActivity"

// shapeOf reads a finished workflow's history into the steps a bare
// workflow needs to do the same amount of Temporal work.
func shapeOf(ctx context.Context, c client.Client, wid string) (steps []step, n shapeCount, err error) {
	started := map[int64]int{} // timer's started event id → index in steps
	batch := 0
	it := c.GetWorkflowHistory(ctx, wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, n, err
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			batch++ // the commands that follow were issued by this workflow task
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			steps = append(steps, step{Kind: "activity", Batch: batch})
			n.activities++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			// A local activity leaves a marker; the bare workflow runs a
			// no-op local activity in the same workflow task.
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker {
				steps = append(steps, step{Kind: "local", Batch: batch})
				n.locals++
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			started[ev.GetEventId()] = len(steps)
			steps = append(steps, step{Kind: "pending", Batch: batch, D: ev.GetTimerStartedEventAttributes().GetStartToFireTimeout().AsDuration()})
			n.timers++
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			steps[started[ev.GetTimerFiredEventAttributes().GetStartedEventId()]].Kind = "sleep"
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			steps[started[ev.GetTimerCanceledEventAttributes().GetStartedEventId()]].Kind = "await"
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			n.messages++
		}
	}
	// Keep as many awaits as there were messages to end them; a timer left
	// running at the end, or cancelled for another reason, costs no wait.
	var out []step
	waits := 0
	for _, s := range steps {
		switch {
		case s.Kind == "await" && waits < n.messages:
			waits++
			// The driver answers once the workflow task before the wait is
			// done: the promotion has then recorded that it awaits approval.
			for k := len(out) - 1; k >= 0; k-- {
				if (out[k].Kind == "activity" || out[k].Kind == "local") && out[k].Batch < s.Batch {
					out[k].Notify = true
					break
				}
			}
			out = append(out, s)
		case s.Kind == "activity" || s.Kind == "local" || s.Kind == "sleep":
			out = append(out, s)
		}
	}
	return out, n, nil
}

// BenchmarkPromotionOverhead: a full canary promotion (sim provider, steps
// 50→100, 100ms bakes and monitor window, one approval by update through the
// API) against a bare workflow doing the same number of activities, timers
// and updates on the same server and worker. Reports wall and CPU per op.
func BenchmarkPromotionOverhead(b *testing.B) {
	loadNote(b)
	n := envInt(b, "MODELPLANE_BENCH_PROMOTIONS", 20)
	s := newStack(b, true, registerBaselines)
	s.target("prod", "production") // production: the policy asks one approval of a low-risk model
	s.model("churn", "v0")
	s.serve("churn", "prod", "v0")
	ctx := context.Background()

	ready := make(chan string, 16)
	s.watch.on(func(name string, arg any) {
		var id string
		switch in := arg.(type) {
		case activities.ProgressInput:
			if name == "RecordProgress" && in.Promotion != nil && in.Promotion.Stage == modelplane.StageAwaitingApproval {
				id = in.Promotion.WorkflowID
			}
		case string:
			if len(in) > 6 && in[:6] == "ready/" {
				id = in[6:]
			}
		}
		if id != "" {
			select {
			case ready <- id:
			default:
			}
		}
	})

	version := 0
	ours := func() (wall, used time.Duration, wid string) {
		version++
		v := fmt.Sprintf("v%d", version)
		s.version("churn", v)
		c0, t0 := cpu(), time.Now()
		acc, err := s.promote("churn", v, "prod", []int{50, 100}, "100ms", "100ms")
		if err != nil {
			b.Fatal(err)
		}
		await(b, "awaiting approval", ready, time.Minute, func(id string) bool { return id == acc.WorkflowID })
		if err := s.call("POST", "/v1/promotions/"+acc.ID+"/approvals", bob, map[string]any{"decision": "approve"}, nil, 200); err != nil {
			b.Fatal(err)
		}
		var p modelplane.Promotion
		if err := s.c.GetWorkflow(ctx, acc.WorkflowID, "").Get(ctx, &p); err != nil {
			b.Fatal(err)
		}
		wall, used = time.Since(t0), cpu()-c0
		if p.Status != modelplane.StatusSucceeded {
			b.Fatalf("promotion %s ended %s: %s", p.ID, p.Status, p.Reason)
		}
		return wall, used, acc.WorkflowID
	}
	var shape []step
	bare := func(i int) (wall, used time.Duration) {
		wid := fmt.Sprintf("bare-%d", i)
		c0, t0 := cpu(), time.Now()
		run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TaskQueue}, "BenchShaped", shape)
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range shape {
			if st.Kind != "await" {
				continue
			}
			await(b, "baseline waiting", ready, time.Minute, func(id string) bool { return id == wid })
			h, err := s.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: "go", WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := run.Get(ctx, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0), cpu() - c0
	}

	// Two unmeasured promotions: caches warm, and the second one has a
	// version to retire, like every later one; its history is the shape.
	ours()
	_, _, wid := ours()
	shape, n0, err := shapeOf(ctx, s.c, wid)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("promotion shape: %d activities, %d local activities, %d timers, %d updates/signals → %d baseline steps", n0.activities, n0.locals, n0.timers, n0.messages, len(shape))
	bare(-1)

	s.watch.profile() // count the measured promotions only
	var ow, oc, bw, bc []time.Duration
	for b.Loop() {
		for i := 0; i < n; i++ {
			// Alternate, so load that comes and goes hits both sides alike.
			w, c, _ := ours()
			ow, oc = append(ow, w), append(oc, c)
			w, c = bare(len(bw))
			bw, bc = append(bw, w), append(bc, c)
		}
	}
	b.Logf("time inside activities over %d promotions and %d bare runs (bare: BenchNoop): %s", len(ow), len(bw), s.watch.profile())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(ow)), "promotions")
	b.ReportMetric(float64(n0.activities), "activities/promotion")
	b.ReportMetric(float64(n0.locals), "local-activities/promotion")
	b.ReportMetric(float64(n0.timers), "timers/promotion")
	b.ReportMetric(float64(n0.messages), "updates/promotion")
	b.ReportMetric(ms(mean(ow)), "wall-ms/promotion")
	b.ReportMetric(ms(mean(bw)), "wall-ms/bare")
	b.ReportMetric(ms(pct(ow, .5)), "wall-p50-ms/promotion")
	b.ReportMetric(ms(pct(bw, .5)), "wall-p50-ms/bare")
	b.ReportMetric(float64(mean(ow))/float64(mean(bw)), "wall-ratio")
	b.ReportMetric(ms(mean(oc)), "cpu-ms/promotion")
	b.ReportMetric(ms(mean(bc)), "cpu-ms/bare")
	b.ReportMetric(float64(mean(oc))/float64(mean(bc)), "cpu-ratio")
}
