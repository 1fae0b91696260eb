package vertex

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/modelplane/modelplane"
)

// Labels modelplane puts on Vertex resources. Label keys and values are at
// most 63 characters of [a-z0-9_-], so our names are encoded to fit.
const (
	labelModel   = "modelplane-model"
	labelVersion = "modelplane-version"
	labelStage   = "modelplane-stage"
	// labelTargetPrefix + digest(endpoint) marks a model version as registered
	// for that endpoint: State lists it and Retire removes the mark.
	labelTargetPrefix = "modelplane-t-"
	// labelMutations are the slots of the applied-mutation ring on the endpoint.
	labelMutations = "modelplane-mut"
)

func digest(s string, hexChars int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hexChars]
}

var labelUnsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// labelValue encodes s as a label value: s itself when it fits, otherwise a
// readable prefix plus a digest so different names never collide.
func labelValue(s string) string {
	if len(s) <= 63 && !labelUnsafe.MatchString(s) {
		return s
	}
	safe := labelUnsafe.ReplaceAllString(strings.ToLower(s), "-")
	if len(safe) > 50 {
		safe = safe[:50]
	}
	return safe + "-" + digest(s, 12)
}

// slug makes s usable inside a resource id: lowercase [a-z0-9-], at most n characters.
func slug(s string, n int) string {
	s = strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > n {
		s = strings.TrimRight(s[:n], "-")
	}
	return s
}

// endpointID is the configured endpoint or one derived from target and model,
// so every attempt of every activity finds the same endpoint.
func endpointID(c config, t modelplane.Target, model string) string {
	if c.endpointID != "" {
		return c.endpointID
	}
	return fmt.Sprintf("mp-%s-%s", slug(model, 40), digest(t.Name+"\x00"+model, 10))
}

// modelID is the configured model id or one derived from our model name.
func modelID(c config, model string) string {
	if c.modelID != "" {
		return c.modelID
	}
	return fmt.Sprintf("mp-%s-%s", slug(model, 40), digest(model, 8))
}

func endpointName(c config, t modelplane.Target, model string) string {
	return c.parent() + "/endpoints/" + endpointID(c, t, model)
}

func modelName(c config, model string) string { return c.parent() + "/models/" + modelID(c, model) }

// targetLabel marks a model version as registered on one endpoint.
func targetLabel(endpoint string) string { return labelTargetPrefix + digest(endpoint, 16) }

// deployedModelID is the id we give a version's DeployedModel (1–10 digits):
// deterministic, so a DeployModel retried after a lost reply is refused as a
// duplicate instead of deploying the version twice.
func deployedModelID(endpoint, model, version string) string {
	sum := sha256.Sum256([]byte(endpoint + "\x00" + model + "\x00" + version))
	return fmt.Sprintf("%d", 1_000_000_000+binary.BigEndian.Uint64(sum[:8])%9_000_000_000)
}

// pipelineJobID is derived from the retrain request id: a retry collides
// with the job an earlier attempt created instead of starting another run.
func pipelineJobID(model, requestID string) string {
	return fmt.Sprintf("mp-retrain-%s-%s", slug(model, 40), digest(requestID, 16))
}
