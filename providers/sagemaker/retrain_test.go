package sagemaker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func TestStartRetrainIsIdempotentByRequestID(t *testing.T) {
	f := newFixture(t, []string{"pipeline", "churn-retrain"})
	req := modelplane.RetrainRequest{Model: model, Version: "v3", Reason: "drift on feature tenure", RequestID: "drift-1"}
	a, err := f.p.StartRetrain(ctx, f.tg, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.p.StartRetrain(ctx, f.tg, req)
	if err != nil || a != b || a == "" {
		t.Fatalf("retried StartRetrain = %q, %v; want %q again", b, err, a)
	}
	req.RequestID = strings.Repeat("long-request-id-", 20) // longer than SageMaker's token limit
	c, err := f.p.StartRetrain(ctx, f.tg, req)
	if err != nil || c == a {
		t.Fatalf("a new request = %q, %v; want a new execution", c, err)
	}
	ex := f.srv.Executions()
	if len(ex) != 2 || ex[0].Pipeline != "churn-retrain" || ex[0].Parameters["model"] != model || ex[0].Parameters["version"] != "v3" || ex[0].Parameters["reason"] != req.Reason {
		t.Fatalf("executions = %+v", ex)
	}
}

func TestStartRetrainNeedsPipeline(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.p.StartRetrain(ctx, f.tg, modelplane.RetrainRequest{Model: model, RequestID: "x"})
	var me *modelplane.Error
	if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &me) || me.Field != "config.pipeline" {
		t.Fatalf("err = %v, want ErrInvalid naming config.pipeline", err)
	}
}
