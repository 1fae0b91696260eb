package sagemaker

import (
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// Target.Config keys this provider reads.
const (
	KeyRegion            = "region"
	KeyEndpoint          = "endpoint"
	KeyRoleARN           = "role_arn"
	KeyImage             = "image"
	KeyInstanceType      = "instance_type"
	KeyInstanceCount     = "instance_count"
	KeyModelPackageGroup = "model_package_group"
	KeyNativePolicy      = "native_policy"
	KeyNativeStepPercent = "native_step_percent"
	KeyNativeWait        = "native_wait"
	KeyAlarms            = "alarms"
	KeyPipeline          = "pipeline"
)

// targetConfig is a validated Target.Config.
type targetConfig struct {
	Region        string
	Endpoint      string
	RoleARN       string
	Image         string
	InstanceType  string
	InstanceCount int32
	PackageGroup  string
	Native        bool
	NativePolicy  string // "canary" | "linear"
	StepPercent   int32
	Wait          time.Duration
	Alarms        []string
	Pipeline      string
}

func field(key, format string, args ...any) error {
	return asInvalid(modelplane.FieldError("config."+key, format, args...))
}

// parseConfig validates the target's configuration for a model. Defaults are
// deterministic so every call derives the same resource names.
func parseConfig(t modelplane.Target, model string) (targetConfig, error) {
	c := t.Config
	cfg := targetConfig{
		Region:       strings.TrimSpace(c[KeyRegion]),
		Endpoint:     strings.TrimSpace(c[KeyEndpoint]),
		RoleARN:      strings.TrimSpace(c[KeyRoleARN]),
		Image:        strings.TrimSpace(c[KeyImage]),
		InstanceType: strings.TrimSpace(c[KeyInstanceType]),
		PackageGroup: strings.TrimSpace(c[KeyModelPackageGroup]),
		Pipeline:     strings.TrimSpace(c[KeyPipeline]),
		NativePolicy: strings.TrimSpace(c[KeyNativePolicy]),
	}
	if cfg.Region == "" {
		return cfg, field(KeyRegion, "required (e.g. us-east-1)")
	}
	if cfg.RoleARN == "" {
		return cfg, field(KeyRoleARN, "required: the execution role SageMaker models run as")
	}
	if !strings.HasPrefix(cfg.RoleARN, "arn:") {
		return cfg, field(KeyRoleARN, "must be an IAM role ARN, not %q", cfg.RoleARN)
	}
	if cfg.Image == "" {
		return cfg, field(KeyImage, "required: the inference container image URI")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = defaultEndpointName(t.Name, model)
	} else if !validName(cfg.Endpoint) {
		return cfg, field(KeyEndpoint, "%q is not a valid SageMaker name (letters, digits and hyphens, at most 63)", cfg.Endpoint)
	}
	if cfg.InstanceType == "" {
		cfg.InstanceType = "ml.m5.large"
	} else if !strings.HasPrefix(cfg.InstanceType, "ml.") {
		return cfg, field(KeyInstanceType, "%q is not a SageMaker instance type (ml.*)", cfg.InstanceType)
	}
	cfg.InstanceCount = 1
	if s := c[KeyInstanceCount]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return cfg, field(KeyInstanceCount, "must be a whole number from 1, not %q", s)
		}
		cfg.InstanceCount = int32(n)
	}
	if cfg.PackageGroup == "" {
		cfg.PackageGroup = sanitize(model, 63)
	} else if !validName(cfg.PackageGroup) {
		return cfg, field(KeyModelPackageGroup, "%q is not a valid SageMaker name", cfg.PackageGroup)
	}
	switch c[modelplane.ConfigRollout] {
	case "", modelplane.RolloutSteps:
	case modelplane.RolloutNative:
		cfg.Native = true
	default:
		return cfg, field(modelplane.ConfigRollout, "must be %q or %q, not %q", modelplane.RolloutSteps, modelplane.RolloutNative, c[modelplane.ConfigRollout])
	}
	switch cfg.NativePolicy {
	case "":
		cfg.NativePolicy = "canary"
	case "canary", "linear":
	default:
		return cfg, field(KeyNativePolicy, "must be canary or linear, not %q", cfg.NativePolicy)
	}
	cfg.StepPercent = 10
	if s := c[KeyNativeStepPercent]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 99 {
			return cfg, field(KeyNativeStepPercent, "must be a percentage from 1 to 99, not %q", s)
		}
		cfg.StepPercent = int32(n)
	}
	cfg.Wait = 5 * time.Minute
	if s := c[KeyNativeWait]; s != "" {
		d, err := time.ParseDuration(s)
		// SageMaker accepts WaitIntervalInSeconds from 0 to 3600.
		if err != nil || d < 0 || d > time.Hour {
			return cfg, field(KeyNativeWait, "must be a duration up to 1h such as 5m, not %q", s)
		}
		cfg.Wait = d
	}
	if s := strings.TrimSpace(c[KeyAlarms]); s != "" {
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Alarms = append(cfg.Alarms, a)
			}
		}
		if len(cfg.Alarms) > 10 {
			return cfg, field(KeyAlarms, "SageMaker takes at most 10 rollback alarms, got %d", len(cfg.Alarms))
		}
	}
	return cfg, nil
}

// ValidateTarget checks the target's configuration (modelplane.TargetValidator).
func (p *Provider) ValidateTarget(t modelplane.Target) error {
	if err := t.CheckConfigKeys(KeyRegion, KeyEndpoint, KeyRoleARN, KeyImage, KeyInstanceType, KeyInstanceCount, KeyModelPackageGroup, KeyNativePolicy, KeyNativeStepPercent, KeyNativeWait, KeyAlarms, KeyPipeline); err != nil {
		return err
	}
	_, err := parseConfig(t, "model")
	return err
}
