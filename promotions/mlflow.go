package promotions

import (
	"context"
	"fmt"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
)

// Resolve implements modelplane.PromotionService.
func (s *Service) Resolve(ctx context.Context, r modelplane.PromotionRequest) (modelplane.PromotionRequest, error) {
	if r.MLflow == nil {
		return r, nil
	}
	if r.Version != "" {
		return r, modelplane.FieldError("version", "give version or mlflow, not both")
	}
	v, err := s.importMLflow(ctx, r.Model, *r.MLflow)
	if err != nil {
		return r, err
	}
	r.Version = v.Version
	return r, nil
}

// importMLflow imports an MLflow model version as a version of model (once:
// a second import of the same MLflow version returns the stored one).
func (s *Service) importMLflow(ctx context.Context, model string, ref modelplane.MLflowRef) (modelplane.Version, error) {
	if s.MLflow == nil {
		return modelplane.Version{}, modelplane.FieldError("mlflow", "this server has no MLflow registry configured (set MLFLOW_TRACKING_URI)")
	}
	v, err := mlflow.Import(ctx, s.MLflow, mlflow.Ref{Name: ref.Name, Version: ref.Version, Alias: ref.Alias})
	if err != nil {
		return v, err
	}
	v.Model = model
	if got, err := s.Store.GetVersion(ctx, model, v.Version); err == nil {
		if got.Lineage.Registry != mlflow.RegistryName || got.Lineage.RegistryModel != v.Lineage.RegistryModel {
			return got, modelplane.FieldError("mlflow", "model %s already has a version %s that did not come from MLflow model %q", model, v.Version, ref.Name)
		}
		return got, nil
	}
	created, err := s.Store.CreateVersion(ctx, v)
	if err != nil {
		return v, fmt.Errorf("store imported version: %w", err)
	}
	return created, nil
}

// AutoPromote implements modelplane.PromotionService.
func (s *Service) AutoPromote(ctx context.Context, mlflowModel, version, alias string) (start []modelplane.Promotion, skipped []string, err error) {
	targets, err := s.Store.ListTargets(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range targets {
		for _, r := range t.AutoPromote {
			if !r.Matches(mlflowModel, alias) {
				continue
			}
			v, err := s.importMLflow(ctx, r.Model, modelplane.MLflowRef{Name: mlflowModel, Version: version})
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s → %s: import: %v", mlflowModel, t.Name, err))
				continue
			}
			key := fmt.Sprintf("mlflow/%s/%s/%s", mlflowModel, version, t.Name)
			p, created, err := s.Prepare(ctx, modelplane.PromotionRequest{Model: r.Model, Version: v.Version, Target: t.Name, Strategy: r.Strategy}, modelplane.AutoPromoter, key)
			switch {
			case err != nil:
				skipped = append(skipped, fmt.Sprintf("%s@%s → %s: %v", r.Model, v.Version, t.Name, err))
			case created || (p.Status == modelplane.StatusRunning && p.Stage == modelplane.StagePending):
				// Prepared before but perhaps never started (a crash in between): starting is idempotent.
				start = append(start, p)
			}
		}
	}
	return start, skipped, nil
}
