package vertex

import (
	"context"
	"errors"

	"github.com/modelplane/modelplane"
)

// NoShadow says Vertex AI endpoints cannot mirror requests.
func (p *Provider) NoShadow() {}

// StartShadow is refused: Vertex AI endpoints cannot mirror requests.
func (p *Provider) StartShadow(ctx context.Context, t modelplane.Target, model string, s modelplane.Shadow, mutationID string) (modelplane.Op, error) {
	return modelplane.Op{}, errors.Join(errNoShadow, modelplane.ErrInvalid)
}

// StopShadow is refused: Vertex AI endpoints cannot mirror requests.
func (p *Provider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, mutationID string) (modelplane.Op, error) {
	return modelplane.Op{}, errors.Join(errNoShadow, modelplane.ErrInvalid)
}
