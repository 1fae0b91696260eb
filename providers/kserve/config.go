package kserve

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"github.com/modelplane/modelplane"
)

// Target.Config keys.
const (
	KeyNamespace      = "namespace"
	KeyName           = "name"
	KeyModelFormat    = "model_format"
	KeyRuntime        = "runtime"
	KeyKubeconfig     = "kubeconfig"
	KeyContext        = "context"
	KeyServiceAccount = "service_account"
	KeyErrorRateQuery = "error_rate_query"
	KeyLatencyQuery   = "latency_p99_query"
	KeyRequestsQuery  = "requests_query"
)

// maxName leaves room for what KServe and Knative append to the name
// ("-predictor", "-00001", the host) within the 63-character DNS label limit.
const maxName = 45

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035Label = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	formatName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// config is a validated Target.Config.
type config struct {
	namespace, name, modelFormat, runtime string
	kubeconfig, context, serviceAccount   string
	queries                               queries
}

func invalidField(key, format string, args ...any) error {
	return fmt.Errorf("kserve: %w: %w", modelplane.FieldError("config."+key, format, args...), modelplane.ErrInvalid)
}

// parseConfig validates the target's configuration for model.
func parseConfig(t modelplane.Target, model string) (config, error) {
	g := func(k string) string { return strings.TrimSpace(t.Config[k]) }
	c := config{
		namespace: g(KeyNamespace), name: g(KeyName), modelFormat: g(KeyModelFormat), runtime: g(KeyRuntime),
		kubeconfig: g(KeyKubeconfig), context: g(KeyContext), serviceAccount: g(KeyServiceAccount),
	}
	switch {
	case c.namespace == "":
		return c, invalidField(KeyNamespace, "is required (the namespace the InferenceServices live in)")
	case len(c.namespace) > 63 || !dns1123Label.MatchString(c.namespace):
		return c, invalidField(KeyNamespace, "%q is not a valid namespace name", c.namespace)
	case c.modelFormat == "":
		return c, invalidField(KeyModelFormat, "is required (the KServe model format, e.g. sklearn)")
	case !formatName.MatchString(c.modelFormat):
		return c, invalidField(KeyModelFormat, "%q is not a model format name", c.modelFormat)
	case c.runtime != "" && (len(c.runtime) > 253 || !dns1123Label.MatchString(c.runtime)):
		return c, invalidField(KeyRuntime, "%q is not a ServingRuntime name", c.runtime)
	case c.serviceAccount != "" && (len(c.serviceAccount) > 253 || !dns1123Label.MatchString(c.serviceAccount)):
		return c, invalidField(KeyServiceAccount, "%q is not a service account name", c.serviceAccount)
	}
	// Poll knows no model: its Op names the InferenceService.
	if c.name == "" {
		if model != "" {
			c.name = deriveName(model)
		}
	} else if len(c.name) > maxName || !dns1035Label.MatchString(c.name) {
		return c, invalidField(KeyName, "%q must be a DNS-1035 label of at most %d characters", c.name, maxName)
	}
	var err error
	if c.queries, err = parseQueries(t.Config); err != nil {
		return c, err
	}
	return c, nil
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// deriveName makes a model name a DNS-1035 label. When that changes the name
// a hash of the original keeps two models ("Fraud_v" and "fraud-v") apart.
func deriveName(model string) string {
	s := strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(model), "-"), "-")
	if s == model && len(s) <= maxName && dns1035Label.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(model))
	h := hex.EncodeToString(sum[:])[:8]
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "m-" + s
	}
	if len(s) > maxName-9 {
		s = s[:maxName-9]
	}
	return strings.Trim(s, "-") + "-" + h
}

// queries are the Prometheus templates Health runs.
type queries struct {
	requests, errorRate, latency *template.Template
}

func parseQueries(cfg map[string]string) (queries, error) {
	var q queries
	for _, x := range []struct {
		key, def string
		dst      **template.Template
	}{
		{KeyRequestsQuery, defaultRequestsQuery, &q.requests},
		{KeyErrorRateQuery, defaultErrorRateQuery, &q.errorRate},
		{KeyLatencyQuery, defaultLatencyQuery, &q.latency},
	} {
		src := cfg[x.key]
		if strings.TrimSpace(src) == "" {
			src = x.def
		}
		tpl, err := template.New(x.key).Option("missingkey=error").Parse(src)
		if err != nil {
			return q, invalidField(x.key, "bad template: %v", err)
		}
		*x.dst = tpl
	}
	return q, nil
}

// ValidateTarget checks the target's configuration (modelplane.TargetValidator).
func (p *Provider) ValidateTarget(t modelplane.Target) error {
	if err := t.CheckConfigKeys(KeyNamespace, KeyName, KeyModelFormat, KeyRuntime, KeyKubeconfig, KeyContext, KeyServiceAccount, KeyErrorRateQuery, KeyLatencyQuery, KeyRequestsQuery); err != nil {
		return err
	}
	_, err := parseConfig(t, "model")
	return err
}
