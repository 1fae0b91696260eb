package workflows

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// A workflow's log line carries the promotion, model and target under the
// keys the API's lines use (a real worker's SDK adds the workflow and run
// ids); empty values are left out.
func TestWorkflowLoggerTagsLines(t *testing.T) {
	var buf bytes.Buffer
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		logger(ctx, "p-1", "churn", "").Error("record progress failed")
		return nil
	}, workflow.RegisterOptions{Name: "Logs"})
	env.ExecuteWorkflow("Logs")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if rec["msg"] != "record progress failed" {
			continue
		}
		if rec["promotion_id"] != "p-1" || rec["model"] != "churn" {
			t.Fatalf("line lacks the promotion's identity: %s", line)
		}
		if _, ok := rec["target"]; ok {
			t.Fatalf("empty target logged: %s", line)
		}
		return
	}
	t.Fatalf("no line logged:\n%s", buf.String())
}
