package sagemaker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Every SageMaker name is derived from the model, version and target, so an
// activity retried after a lost reply finds what the earlier attempt created.

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// digest is a short, stable hash of its parts.
func digest(n int, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:n]
}

// sanitize maps s onto SageMaker's name alphabet (letters, digits, single
// hyphens) and cuts it to max characters.
func sanitize(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	if out == "" {
		out = "x"
	}
	return out
}

// modelPrefix names everything one target holds for one model; the hash keeps
// two targets (or two models with similar names) apart.
func modelPrefix(target, model string) string {
	return "mp-" + sanitize(model, 24) + "-" + digest(6, target, model)
}

func defaultEndpointName(target, model string) string { return modelPrefix(target, model) }

// EndpointName is the endpoint a target uses for a model (config key endpoint or the default).
func EndpointName(target string, config map[string]string, model string) string {
	if e := strings.TrimSpace(config[KeyEndpoint]); e != "" {
		return e
	}
	return defaultEndpointName(target, model)
}

// modelName is the SageMaker Model for a version on a target.
func modelName(target, model, version string) string {
	return modelPrefix(target, model) + "-" + sanitize(version, 20) + "-" + digest(6, version)
}

// VariantName is the production (or shadow) variant serving a version.
func VariantName(version string) string {
	return sanitize(version, 48) + "-" + digest(8, version)
}

// endpointConfigName names the immutable config for a set of variants and
// their initial weights. Weights are part of the name because SageMaker
// applies a config's initial weights on UpdateEndpoint: one config per set
// would come back with stale weights. A single-variant config always has
// weight 1, so the stable's config keeps one name for its whole life.
func endpointConfigName(endpoint string, cfg targetConfig, modelNames map[string]string, weights map[string]int) string {
	keys := make([]string, 0, len(weights))
	for v := range weights {
		keys = append(keys, v)
	}
	sort.Strings(keys)
	parts := []string{cfg.InstanceType, strconv.Itoa(int(cfg.InstanceCount))}
	for _, v := range keys {
		w := weights[v]
		if len(keys) == 1 {
			w = 1
		}
		parts = append(parts, v, modelNames[v], strconv.Itoa(w))
	}
	return sanitize(endpoint, 50) + "-" + digest(12, parts...)
}

// experimentName is the shadow inference experiment started by a mutation.
func experimentName(endpoint, version, mutationID string) string {
	return sanitize(endpoint, 50) + "-shadow-" + digest(10, version, mutationID)
}

// packageDescription identifies a version's model package exactly; ListModelPackages returns it.
func packageDescription(model, version string) string {
	return "modelplane " + model + " version " + version
}

// mutationDigest is what the endpoint's tag ring remembers of a mutation id.
func mutationDigest(id string) string { return digest(12, id) }

// tagValue makes s safe for an AWS tag value (letters, digits, spaces and _.:/=+-@).
func tagValue(s string) string {
	if tagSafe.MatchString(s) && !strings.HasPrefix(s, "b64:") {
		return s
	}
	return "b64:" + base64.StdEncoding.EncodeToString([]byte(s))
}

func fromTagValue(s string) string {
	if rest, ok := strings.CutPrefix(s, "b64:"); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return s
}

var tagSafe = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,250}$`)
