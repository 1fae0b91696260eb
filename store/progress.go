package store

import (
	"context"
	"fmt"

	"github.com/modelplane/modelplane"
	"gorm.io/gorm"
)

// Progress is what one step of a promotion projects: its audit records,
// the deployment it saw (if any) and the promotion itself at seq.
type Progress struct {
	Audit      []modelplane.AuditRecord
	Deployment *modelplane.Deployment
	Promotion  *modelplane.Promotion
	Seq        int64
}

// RecordProgress writes p as PutDeployment, UpdatePromotion and
// AppendAudit would, in one transaction: one commit where there were
// three, on the path every promotion takes several times. As before, a
// promotion the store does not hold is an error that still leaves the
// deployment and the audit records written, and a retry writes nothing
// twice.
func (s *Store) RecordProgress(ctx context.Context, p Progress) error {
	if err := auditKeysPresent(p.Audit); err != nil {
		return err
	}
	var missing error
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if d := p.Deployment; d != nil {
			if err := putDeployment(tx, *d); err != nil {
				return fmt.Errorf("deployment: %w", err)
			}
		}
		if p.Promotion != nil {
			err := updatePromotion(tx, *p.Promotion, p.Seq)
			if err != nil && modelplane.ErrorCode(err) != modelplane.ENotFound {
				return fmt.Errorf("promotion: %w", err)
			}
			missing = err
		}
		// Last, so PostgreSQL's chain lock is held for the least time.
		if err := s.appendAudit(tx, p.Audit); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if missing != nil {
		return fmt.Errorf("promotion: %w", missing)
	}
	return nil
}
