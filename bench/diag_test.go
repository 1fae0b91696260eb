package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// timeline summarises where a workflow's time went before it parked: the
// gap before each workflow task started, how long each ran, and any task
// that failed or timed out. MODELPLANE_BENCH_DIAG=1 logs it for the
// slowest workflows of a chunk.
func timeline(ctx context.Context, c client.Client, wid string) (total time.Duration, line string) {
	var b strings.Builder
	var start, last time.Time
	it := c.GetWorkflowHistory(ctx, wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, err.Error()
		}
		at := ev.GetEventTime().AsTime()
		if start.IsZero() {
			start = at
		}
		switch t := ev.GetEventType(); t {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
			enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
			enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			name := strings.TrimPrefix(t.String(), "EVENT_TYPE_")
			fmt.Fprintf(&b, " +%dms %s", at.Sub(start).Milliseconds(), name)
			if t == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED {
				fmt.Fprintf(&b, "(%s)", ev.GetWorkflowTaskFailedEventAttributes().GetCause())
			}
			last = at
		}
	}
	return last.Sub(start), b.String()
}

// diagnose logs the timelines of the n slowest of ids.
func diagnose(b *testing.B, c client.Client, ids []string, n int) {
	ctx := context.Background()
	type tl struct {
		id    string
		total time.Duration
		line  string
	}
	var all []tl
	for _, id := range ids {
		total, line := timeline(ctx, c, id)
		all = append(all, tl{id, total, line})
	}
	slices.SortFunc(all, func(a, b tl) int { return int(b.total - a.total) })
	for _, t := range all[:min(n, len(all))] {
		b.Logf("slow %s %s:%s", t.id, t.total, t.line)
	}
}
