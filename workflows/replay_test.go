package workflows_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	mpworker "github.com/modelplane/modelplane/worker"
	"github.com/modelplane/modelplane/workflows"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// historyDir holds histories recorded from released code (see its
// README.md; histories_record_test.go writes them). Files are only ever
// added: an old history keeps guarding the code paths its runs took.
const historyDir = "testdata/histories"

// replayRegistry lets the worker's own Register fill a replayer, so the
// replayed workflows have exactly the names and functions a worker serves.
// Activities never run during replay: their registration is dropped.
type replayRegistry struct {
	worker.WorkflowReplayer
	worker.NexusServiceRegistry // nil: Register adds no Nexus services
}

func (replayRegistry) RegisterActivity(any)                                         {}
func (replayRegistry) RegisterActivityWithOptions(any, activity.RegisterOptions)    {}
func (replayRegistry) RegisterDynamicActivity(any, activity.DynamicRegisterOptions) {}

// newReplayer is a replayer with the worker's registrations and its
// workflow interceptors (the principal stamp), as the worker runs them.
func newReplayer(t *testing.T) worker.WorkflowReplayer {
	t.Helper()
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{Interceptors: []interceptor.WorkerInterceptor{workflows.Interceptor()}})
	if err != nil {
		t.Fatal(err)
	}
	mpworker.Register(replayRegistry{WorkflowReplayer: r}, &activities.Activities{})
	return r
}

func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// recordedHistories loads every recorded history, failing when there are none.
func recordedHistories(t *testing.T) map[string]*historypb.History {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no histories in %s: the replay test would check nothing", historyDir)
	}
	out := map[string]*historypb.History{}
	for _, f := range files {
		h, err := loadHistory(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(h.Events) == 0 {
			t.Fatalf("%s: no events", f)
		}
		out[filepath.Base(f)] = h
	}
	return out
}

func loadHistory(path string) (*historypb.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return client.HistoryFromJSON(f, client.HistoryJSONOptions{})
}

// TestReplayRecordedHistories replays every history recorded from an
// earlier release against the current workflow code: a change that would
// break a workflow already running in production fails here, naming the
// history.
func TestReplayRecordedHistories(t *testing.T) {
	histories := recordedHistories(t)
	r := newReplayer(t)
	for name, h := range histories {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			if err := r.ReplayWorkflowHistory(quietLogger(), h); err != nil {
				t.Errorf("%s does not replay against the current workflow code: %v", filepath.Join(historyDir, name), err)
			}
		})
	}
}

// alteredPromotion stands in for an incompatible change to the promotion
// workflow: it starts with a timer where the real one first schedules an activity.
func alteredPromotion(ctx workflow.Context, in workflows.PromotionInput) (modelplane.Promotion, error) {
	if err := workflow.Sleep(ctx, time.Hour); err != nil {
		return in.Promotion, err
	}
	return in.Promotion, nil
}

// TestReplayDetectsAnIncompatibleChange proves the net holds: every
// recorded promotion replayed against altered code must fail with the
// SDK's nondeterminism error (TMPRL1100).
func TestReplayDetectsAnIncompatibleChange(t *testing.T) {
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterWorkflowWithOptions(alteredPromotion, workflow.RegisterOptions{Name: workflows.PromotionWorkflow})
	promotions := 0
	for name, h := range recordedHistories(t) {
		if h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName() != workflows.PromotionWorkflow {
			continue
		}
		promotions++
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			err := r.ReplayWorkflowHistory(quietLogger(), h)
			if err == nil {
				t.Fatalf("%s replayed against an altered promotion workflow without error", name)
			}
			if !strings.Contains(err.Error(), "TMPRL1100") {
				t.Fatalf("%s against an altered promotion workflow: %v, want a nondeterminism error (TMPRL1100)", name, err)
			}
		})
	}
	if promotions == 0 {
		t.Fatalf("no promotion history in %s", historyDir)
	}
}
