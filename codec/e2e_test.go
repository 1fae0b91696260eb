package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"

	"github.com/modelplane/modelplane/codec"
)

type e2eInput struct{ Secret string }

type e2eResult struct {
	Echo, Signal, Failure, Input string
}

const revealSignal = "reveal"

func echoActivity(_ context.Context, s string) (string, error) { return "echo:" + s, nil }

// failActivity fails with the secret in its message, the way real errors
// quote the input that upset them.
func failActivity(_ context.Context, s string) error {
	return temporal.NewNonRetryableApplicationError("cannot process "+s, "Bad", nil)
}

func secretWorkflow(ctx workflow.Context, in e2eInput) (e2eResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var r e2eResult
	r.Input = in.Secret
	if err := workflow.ExecuteActivity(ctx, "echo", in.Secret+"-activity").Get(ctx, &r.Echo); err != nil {
		return r, err
	}
	err := workflow.ExecuteActivity(ctx, "fail", in.Secret+"-failure").Get(ctx, nil)
	if err == nil {
		return r, errors.New("fail activity succeeded")
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		r.Failure = appErr.Message()
	}
	workflow.GetSignalChannel(ctx, revealSignal).Receive(ctx, &r.Signal)
	return r, nil
}

func register(r sdkworker.Registry) {
	r.RegisterWorkflowWithOptions(secretWorkflow, workflow.RegisterOptions{Name: "secret"})
	r.RegisterActivityWithOptions(echoActivity, activity.RegisterOptions{Name: "echo"})
	r.RegisterActivityWithOptions(failActivity, activity.RegisterOptions{Name: "fail"})
}

// runSecretWorkflow runs the workflow through c (and so through c's
// converters) and returns its result and its raw history.
func runSecretWorkflow(t *testing.T, c client.Client, taskQueue, secret string) (e2eResult, []*historypb.HistoryEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "secret-" + taskQueue,
		TaskQueue: taskQueue,
		Memo:      map[string]any{"note": secret + "-memo"},
	}, "secret", e2eInput{Secret: secret + "-input"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), revealSignal, secret+"-signal"); err != nil {
		t.Fatal(err)
	}
	var res e2eResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res, history(t, ctx, c, run.GetID(), run.GetRunID())
}

func history(t *testing.T, ctx context.Context, c client.Client, id, runID string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

// containsSecret reports whether any event's wire bytes contain secret.
func containsSecret(t *testing.T, events []*historypb.HistoryEvent, secret string) []enumspb.EventType {
	t.Helper()
	var hits []enumspb.EventType
	for _, e := range events {
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			hits = append(hits, e.GetEventType())
		}
	}
	return hits
}

// TestEndToEndHistoryIsCiphertext runs one workflow through a real Temporal
// server with the codec and one without, then reads both histories with a
// client that has no codec: the first must not contain the secret anywhere,
// the second (the control) must, so the check itself is shown to work.
func TestEndToEndHistoryIsCiphertext(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey())
	dc := codec.NewDataConverter(kr)
	fc := codec.FailureConverter(dc)
	ts := temporaltest.NewServer(temporaltest.WithT(t),
		temporaltest.WithBaseClientOptions(client.Options{DataConverter: dc, FailureConverter: fc}))

	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	secret := "s3cr3t-" + hex.EncodeToString(buf)
	want := e2eResult{
		Input:   secret + "-input",
		Echo:    "echo:" + secret + "-input-activity",
		Failure: "cannot process " + secret + "-input-failure",
		Signal:  secret + "-signal",
	}

	// Encrypted run: worker and client share the codec converters.
	ts.NewWorker("encrypted", register)
	got, events := runSecretWorkflow(t, ts.GetDefaultClient(), "encrypted", secret)
	if got != want {
		t.Fatalf("result through the codec client = %+v, want %+v", got, want)
	}

	// Control run: same workflow, same server, no codec anywhere.
	plain := ts.NewClientWithOptions(client.Options{})
	w := sdkworker.New(plain, "plaintext", sdkworker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctrl, ctrlEvents := runSecretWorkflow(t, plain, "plaintext", secret)
	if ctrl != want {
		t.Fatalf("control result = %+v", ctrl)
	}
	hits := containsSecret(t, ctrlEvents, secret)
	if len(hits) == 0 {
		t.Fatal("control: plaintext history does not show the secret; the leak check proves nothing")
	}
	t.Logf("control run shows the secret in %d events: %v", len(hits), hits)

	// The encrypted history, as the server stores and serves it.
	raw := history(t, context.Background(), plain, "secret-encrypted", "")
	if len(raw) != len(events) {
		t.Fatalf("history lengths differ: %d vs %d", len(raw), len(events))
	}
	if hits := containsSecret(t, raw, secret); len(hits) != 0 {
		t.Fatalf("secret in clear in encrypted history, events %v", hits)
	}
	if hits := containsSecret(t, raw, "s3cr3t"); len(hits) != 0 {
		t.Fatalf("secret prefix in clear in encrypted history, events %v", hits)
	}

	// Spot-check that the payloads are ours, and that the failure message was moved out.
	var sawFailure bool
	for _, e := range raw {
		switch a := e.GetAttributes().(type) {
		case *historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes:
			in := a.WorkflowExecutionStartedEventAttributes.GetInput().GetPayloads()[0]
			if string(in.Metadata["encoding"]) != "binary/encrypted" || string(in.Metadata["encryption-key-id"]) != "k1" {
				t.Fatalf("start input metadata %q", in.Metadata)
			}
			memo := a.WorkflowExecutionStartedEventAttributes.GetMemo().GetFields()["note"]
			if string(memo.GetMetadata()["encoding"]) != "binary/encrypted" {
				t.Fatalf("memo metadata %q", memo.GetMetadata())
			}
		case *historypb.HistoryEvent_ActivityTaskFailedEventAttributes:
			sawFailure = true
			f := a.ActivityTaskFailedEventAttributes.GetFailure()
			if f.GetEncodedAttributes() == nil || string(f.GetEncodedAttributes().Metadata["encoding"]) != "binary/encrypted" {
				t.Fatalf("failure not encoded: %v", f)
			}
		}
	}
	if !sawFailure {
		t.Fatal("no ActivityTaskFailed event in history")
	}

	// What the Web UI does: send a payload from the stored history to the codec endpoint.
	srv := codecServer{httptest.NewServer(codec.Handler(kr, func(*http.Request) error { return nil }, nil)), kr}
	t.Cleanup(srv.Close)
	started := raw[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	dec := readPayloads(t, srv.post(t, "/decode", "", "", started))
	var in e2eInput
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &in); err != nil || in.Secret != want.Input {
		t.Fatalf("UI-style decode of history payload: %+v, %v", in, err)
	}
}
