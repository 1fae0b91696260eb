package workflows_test

import (
	"strings"
	"testing"

	"github.com/modelplane/modelplane/workflows"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// changeIDs are the workflow.GetVersion changes a history recorded.
func changeIDs(t *testing.T, h *historypb.History) map[string]bool {
	out := map[string]bool{}
	for _, ev := range h.Events {
		m := ev.GetMarkerRecordedEventAttributes()
		if ev.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED || m.GetMarkerName() != "Version" {
			continue
		}
		var id string
		if p := m.GetDetails()["change-id"].GetPayloads(); len(p) > 0 {
			if err := converter.GetDefaultDataConverter().FromPayload(p[0], &id); err != nil {
				t.Fatal(err)
			}
		}
		out[id] = true
	}
	return out
}

// TestLocalStepsHistoriesCoverBothBranches: the recorded histories hold
// runs of both branches of local-steps and batched-progress (model
// promotions) and of pipeline-local-steps (pipeline runs) — those named
// with the change's suffix took it, every other one ran before it — so
// TestReplayRecordedHistories drives each branch against the current code.
func TestLocalStepsHistoriesCoverBothBranches(t *testing.T) {
	histories := recordedHistories(t)
	for _, c := range []struct {
		workflowType, change, suffix string
		// skip: files of the type the change never applied to (MCP
		// servers) or that took a later change without asking for it.
		skip func(name string) bool
	}{
		{workflows.PromotionWorkflow, "local-steps", "_local_steps.json", func(name string) bool {
			return strings.HasPrefix(name, "mcp_") || strings.HasSuffix(name, "_batched_progress.json")
		}},
		{workflows.PromotionWorkflow, "batched-progress", "_batched_progress.json", func(name string) bool { return strings.HasPrefix(name, "mcp_") }},
		{workflows.PipelineWorkflow, "pipeline-local-steps", "_pipeline_local_steps.json", func(string) bool { return false }},
	} {
		with, without := 0, 0
		for name, h := range histories {
			start := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
			if start.GetWorkflowType().GetName() != c.workflowType {
				continue
			}
			took := changeIDs(t, h)[c.change]
			if took != strings.HasSuffix(name, c.suffix) {
				t.Errorf("%s: took %s = %v; only the files named *%s should", name, c.change, took, c.suffix)
			}
			if took {
				with++
			} else if !c.skip(name) {
				without++
			}
		}
		if with == 0 || without == 0 {
			t.Errorf("%s runs on the %s branch: %d, before it: %d; want both", c.workflowType, c.change, with, without)
		}
		t.Logf("%s runs on the %s branch: %d, before it: %d", c.workflowType, c.change, with, without)
	}
}
