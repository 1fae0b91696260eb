package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/sinks"
	"go.temporal.io/sdk/client"
)

// RetrainType is the CloudEvents type of a retrain request.
const RetrainType = "dev.modelplane.retrain.requested"

// SignatureHeader carries the HMAC signature (see sinks.Sign).
const SignatureHeader = sinks.SignatureHeader

// RetrainInput asks for retraining after drift. EventID is stable across
// retries so receivers can deduplicate.
type RetrainInput struct {
	EventID string
	Model   string
	Target  string
	Version string
	Reason  string
	Drift   *modelplane.DriftSignal
}

// RetrainResult says what happened to a retrain request.
type RetrainResult struct {
	Sent         bool   `json:"sent"`
	Deduplicated bool   `json:"deduplicated"`
	Skipped      string `json:"skipped,omitempty"`
	// PipelineRun is the platform's retraining run (target config retrain: pipeline).
	PipelineRun string `json:"pipeline_run,omitempty"`
}

// RetrainEvent is the CloudEvents (structured JSON) body sent to the webhook.
type RetrainEvent struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject"`
	Time            time.Time      `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            map[string]any `json:"data"`
}

// RequestRetrain posts a signed retrain request to the target's webhook,
// at most once per model and target within the cooldown.
func (a *Activities) RequestRetrain(ctx context.Context, in RetrainInput) (RetrainResult, error) {
	t, err := a.Store.GetTarget(ctx, in.Target)
	if err != nil {
		return RetrainResult{}, nonRetryable(err)
	}
	cooldown := t.RetrainCooldown.D()
	if cooldown == 0 {
		cooldown = modelplane.DefaultRetrainCooldown
	}
	now := a.now()
	last, ok, err := a.Store.LastRetrain(ctx, in.Model, in.Target, in.EventID)
	if err != nil {
		return RetrainResult{}, err
	}
	if ok && now.Sub(last) < cooldown {
		return RetrainResult{Deduplicated: true, Skipped: fmt.Sprintf("a retrain was requested %s ago (cooldown %s)", now.Sub(last).Round(time.Second), cooldown)}, nil
	}
	var res RetrainResult
	if t.Config[modelplane.ConfigRetrain] == modelplane.RetrainPipeline {
		// The request id is the event id: a retry (say, after the webhook
		// below failed) finds the run it already started.
		run, err := a.startPipeline(ctx, t, modelplane.RetrainRequest{Model: in.Model, Version: in.Version, Reason: in.Reason, RequestID: in.EventID})
		if err != nil {
			return res, err
		}
		res.PipelineRun, res.Sent = run, true
	}
	if t.RetrainWebhook == "" {
		// Still recorded, so the cooldown and the audit trail hold without a webhook.
		err := a.Store.RecordRetrain(ctx, in.EventID, in.Model, in.Target, in.Version, in.Reason, now)
		if !res.Sent {
			res.Skipped = "target has no retrain_webhook"
		}
		return res, err
	}
	data := map[string]any{"model": in.Model, "target": in.Target, "version": in.Version, "reason": in.Reason}
	if in.Drift != nil {
		data["drift"] = in.Drift
	}
	body, err := json.Marshal(RetrainEvent{SpecVersion: "1.0", ID: in.EventID, Source: "modelplane/" + in.Target, Type: RetrainType,
		Subject: in.Model + "/" + in.Version, Time: now, DataContentType: "application/json", Data: data})
	if err != nil {
		return RetrainResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.RetrainWebhook, bytes.NewReader(body))
	if err != nil {
		return RetrainResult{}, nonRetryable(modelplane.FieldError("retrain_webhook", "%v", err))
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Ce-Id", in.EventID)
	getenv := a.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if t.RetrainSecretEnv != "" {
		secret := getenv(t.RetrainSecretEnv)
		if secret == "" {
			return RetrainResult{}, fmt.Errorf("retrain secret env %s is empty", t.RetrainSecretEnv)
		}
		req.Header.Set(SignatureHeader, sinks.Sign([]byte(secret), now.Unix(), body))
	}
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return RetrainResult{}, fmt.Errorf("retrain webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return RetrainResult{}, fmt.Errorf("retrain webhook answered %s", resp.Status)
	}
	if err := a.Store.RecordRetrain(ctx, in.EventID, in.Model, in.Target, in.Version, in.Reason, now); err != nil {
		return RetrainResult{}, err
	}
	res.Sent = true
	return res, nil
}

func (a *Activities) startPipeline(ctx context.Context, t modelplane.Target, r modelplane.RetrainRequest) (string, error) {
	p, err := a.Providers.Provider(t.Provider)
	if err != nil {
		return "", nonRetryable(err)
	}
	rt, ok := p.(modelplane.Retrainer)
	if !ok {
		return "", nonRetryable(modelplane.FieldError("config.retrain", "provider %s has no retraining pipelines", t.Provider))
	}
	run, err := rt.StartRetrain(ctx, t, r)
	if err != nil {
		return "", nonRetryable(fmt.Errorf("retraining pipeline: %w", err))
	}
	return run, nil
}

// SignalWithStartInput delivers a signal to a workflow, starting it if it is not running.
type SignalWithStartInput struct {
	WorkflowID   string
	WorkflowType string
	TaskQueue    string
	Signal       string
	SignalArg    json.RawMessage
	StartArg     json.RawMessage
	Summary      string
}

// SignalWithStart is how a finished promotion hands over to the deployment guardian.
func (a *Activities) SignalWithStart(ctx context.Context, in SignalWithStartInput) error {
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, in.WorkflowID, in.Signal, in.SignalArg,
		client.StartWorkflowOptions{ID: in.WorkflowID, TaskQueue: in.TaskQueue, StaticSummary: in.Summary},
		in.WorkflowType, in.StartArg)
	return err
}
