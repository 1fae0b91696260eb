package vertex_test

import (
	"testing"

	"github.com/modelplane/modelplane/providers/providertest"
	"github.com/modelplane/modelplane/providers/vertex/vertextest"
)

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		_, p, target := vertextest.Setup(t)
		return providertest.Env{Provider: p, Target: target, Model: "fraud-detector"}
	})
}
