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
// model promotions of both branches of local-steps — those named
// *_local_steps took it, every other one ran before it — so
// TestReplayRecordedHistories drives each branch against the current code.
func TestLocalStepsHistoriesCoverBothBranches(t *testing.T) {
	with, without := 0, 0
	for name, h := range recordedHistories(t) {
		start := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
		if start.GetWorkflowType().GetName() != workflows.PromotionWorkflow {
			continue
		}
		took := changeIDs(t, h)["local-steps"]
		if took != strings.HasSuffix(name, "_local_steps.json") {
			t.Errorf("%s: took local-steps = %v; only the files named *_local_steps should", name, took)
		}
		if took {
			with++
		} else if !strings.HasPrefix(name, "mcp_") {
			without++
		}
	}
	if with == 0 || without == 0 {
		t.Fatalf("model promotions on the local-steps branch: %d, before it: %d; want both", with, without)
	}
	t.Logf("model promotions on the local-steps branch: %d, before it: %d", with, without)
}
