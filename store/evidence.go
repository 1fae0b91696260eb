package store

import (
	"context"

	"github.com/modelplane/modelplane"
)

// SetVersionMetrics replaces a version's offline metrics (a new evaluation
// run). Promotions of the version re-validate: approvals given on the old
// evidence stop counting.
func (s *Store) SetVersionMetrics(ctx context.Context, model, version string, metrics map[string]float64) (modelplane.Version, error) {
	if _, err := s.GetVersion(ctx, model, version); err != nil {
		return modelplane.Version{}, err
	}
	row := versionRow{Metrics: metrics}
	if err := s.db.WithContext(ctx).Model(&versionRow{}).Where("model = ? AND version = ?", model, version).Select("metrics").Updates(&row).Error; err != nil {
		return modelplane.Version{}, err
	}
	return s.GetVersion(ctx, model, version)
}
