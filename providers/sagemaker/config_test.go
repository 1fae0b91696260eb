package sagemaker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker/sagemakertest"
)

func TestConfigValidationNamesTheKey(t *testing.T) {
	p, srv := sagemakertest.Provider(t)
	for _, c := range []struct {
		key, value, field string
	}{
		{"region", "", "config.region"},
		{"role_arn", "", "config.role_arn"},
		{"role_arn", "modelplane-role", "config.role_arn"},
		{"image", "", "config.image"},
		{"instance_type", "m5.large", "config.instance_type"},
		{"instance_count", "0", "config.instance_count"},
		{"endpoint", "bad_name!", "config.endpoint"},
		{"model_package_group", "bad group", "config.model_package_group"},
		{"rollout", "fast", "config.rollout"},
		{"native_policy", "bluegreen", "config.native_policy"},
		{"native_step_percent", "100", "config.native_step_percent"},
		{"native_wait", "2h", "config.native_wait"},
		{"alarms", "a,b,c,d,e,f,g,h,i,j,k", "config.alarms"},
	} {
		tg := sagemakertest.Target("prod", c.key, c.value)
		_, err := p.RegisterVersion(ctx, tg, modelplane.Version{Model: model, Version: "v1", ArtifactURI: "s3://m/v1"})
		var me *modelplane.Error
		if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &me) || me.Field != c.field {
			t.Errorf("%s=%q: err = %v, want ErrInvalid naming %s", c.key, c.value, err, c.field)
		}
	}
	if n := srv.Requests("CreateModelPackageGroup"); n != 0 {
		t.Fatalf("invalid configs reached SageMaker %d times", n)
	}
	// Artifacts SageMaker cannot read are refused before any call.
	_, err := p.RegisterVersion(ctx, sagemakertest.Target("prod"), modelplane.Version{Model: model, Version: "v1", ArtifactURI: "/tmp/model.bin"})
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "s3://") {
		t.Fatalf("local artifact: err = %v", err)
	}
}
