package promotions

import (
	"context"
	"time"

	"github.com/modelplane/modelplane"
)

// PrepareMCP implements modelplane.PromotionService.
func (s *Service) PrepareMCP(ctx context.Context, r modelplane.MCPPromotionRequest, requestedBy, idempotencyKey string) (modelplane.Promotion, bool, error) {
	if err := r.Check(); err != nil {
		return modelplane.Promotion{}, false, err
	}
	m, err := s.Store.GetMCPServer(ctx, r.Name, r.Version)
	if err != nil {
		return modelplane.Promotion{}, false, modelplane.NotFoundAs(err, "version")
	}
	if m.Status == modelplane.MCPQuarantined || m.Status == modelplane.MCPRejected {
		return modelplane.Promotion{}, false, modelplane.FieldError("version", "%s@%s is %s (%s): register a new version", m.Name, m.Version, m.Status, m.StatusReason)
	}
	if r.MonitorWindow == 0 {
		r.MonitorWindow = modelplane.Duration(10 * time.Minute)
	}
	if r.ApprovalTimeout == 0 {
		r.ApprovalTimeout = modelplane.Duration(modelplane.DefaultApprovalTimeout)
	}
	p := fresh(modelplane.Promotion{Kind: modelplane.KindMCPServer, Model: m.Name, Version: m.Version, Target: r.Channel,
		Strategy:        modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: r.MonitorWindow},
		ApprovalTimeout: r.ApprovalTimeout, RequestedBy: requestedBy})
	return s.Store.CreatePromotion(ctx, p, idempotencyKey)
}
