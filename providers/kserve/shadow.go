package kserve

import (
	"context"
	"fmt"

	"github.com/modelplane/modelplane"
)

var errNoShadow = fmt.Errorf("kserve: InferenceServices cannot mirror requests (no shadow traffic); use a canary: %w", modelplane.ErrInvalid)

// NoShadow says InferenceServices cannot mirror requests.
func (p *Provider) NoShadow() {}

// StartShadow is refused: KServe has no request mirroring.
func (p *Provider) StartShadow(ctx context.Context, t modelplane.Target, model string, s modelplane.Shadow, mutationID string) (modelplane.Op, error) {
	return modelplane.Op{}, errNoShadow
}

// StopShadow has nothing to stop, since no shadow can run; promoting one is refused.
func (p *Provider) StopShadow(ctx context.Context, t modelplane.Target, model string, promote bool, mutationID string) (modelplane.Op, error) {
	if promote {
		return modelplane.Op{}, errNoShadow
	}
	return modelplane.Op{}, nil
}
