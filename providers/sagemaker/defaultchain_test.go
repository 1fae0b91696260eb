package sagemaker_test

import (
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

// The production path: the default credential chain and the standard
// AWS_ENDPOINT_URL_* variables, no explicit options.
func TestDefaultChainHonoursEndpointVariables(t *testing.T) {
	srv := sagemakertest.NewServer()
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_ENDPOINT_URL_SAGEMAKER", srv.URL)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", srv.URL)
	p := sagemaker.New(sagemaker.Options{NoBackoff: true})
	tg := sagemakertest.Target("prod")
	if _, err := p.RegisterVersion(ctx, tg, modelplane.Version{Model: model, Version: "v1", ArtifactURI: "s3://m/v1"}); err != nil {
		t.Fatal(err)
	}
	op, err := p.SetTraffic(ctx, tg, model, modelplane.TrafficSplit{"v1": 100}, "m1")
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{p: p, srv: srv, tg: tg}
	f.wait(t, op)
	if h, err := p.Health(ctx, tg, model, "v1", 0); err != nil || h.NoData {
		t.Fatalf("health through CloudWatch endpoint variable = %+v, %v", h, err)
	}
	// The client is cached per region: a second target in the region reuses it.
	if _, err := p.State(ctx, sagemakertest.Target("staging"), model); err != nil {
		t.Fatal(err)
	}
}
