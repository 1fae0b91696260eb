package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/store"
)

// mirrorMLflow mirrors a stage into MLflow when the version came from there.
func (a *Activities) mirrorMLflow(ctx context.Context, c modelplane.StageChange) (bool, error) {
	v, err := a.Store.GetVersion(ctx, c.Model, c.Version)
	if err != nil || v.Lineage.Registry != mlflow.RegistryName {
		return false, err
	}
	if a.MLflow == nil {
		return false, modelplane.Errorf(modelplane.EInvalid, "version %s@%s came from MLflow, but MLFLOW_TRACKING_URI is not set for the worker", c.Model, c.Version)
	}
	mc := c
	mc.Version = v.Lineage.RegistryVersion
	mc.Previous = ""
	if c.Previous != "" {
		// The previous version is only an MLflow version if it came from the same registered model.
		if pv, err := a.Store.GetVersion(ctx, c.Model, c.Previous); err == nil && pv.Lineage.Registry == mlflow.RegistryName && pv.Lineage.RegistryModel == v.Lineage.RegistryModel {
			mc.Previous = pv.Lineage.RegistryVersion
		}
	}
	return true, mlflow.Mirror{Client: a.MLflow}.Apply(ctx, mc, v.Lineage.RegistryModel, c.Evidence)
}

// ImportMLflow imports an MLflow model version as a version of model (once:
// a second import of the same MLflow version returns the stored one).
func ImportMLflow(ctx context.Context, st *store.Store, c *mlflow.Client, model string, ref MLflowRef) (modelplane.Version, error) {
	if c == nil {
		return modelplane.Version{}, modelplane.FieldError("mlflow", "this server has no MLflow registry configured (set MLFLOW_TRACKING_URI)")
	}
	v, err := mlflow.Import(ctx, c, mlflow.Ref{Name: ref.Name, Version: ref.Version, Alias: ref.Alias})
	if err != nil {
		return v, err
	}
	v.Model = model
	if got, err := st.GetVersion(ctx, model, v.Version); err == nil {
		if got.Lineage.Registry != mlflow.RegistryName || got.Lineage.RegistryModel != v.Lineage.RegistryModel {
			return got, modelplane.FieldError("mlflow", "model %s already has a version %s that did not come from MLflow model %q", model, v.Version, ref.Name)
		}
		return got, nil
	}
	created, err := st.CreateVersion(ctx, v)
	if err != nil {
		return v, fmt.Errorf("store imported version: %w", err)
	}
	return created, nil
}

// AutoPromoter is who auto-promotions are requested by: the webhook and the
// reconciliation share it, so their idempotency keys collide on purpose.
const AutoPromoter = "mlflow"

// AutoPromote imports MLflow version `version` of mlflowModel (announced with
// alias, or "" for a new version) and prepares a promotion for every target
// rule that asks for it, keyed so that each (version, target) is prepared
// once however often it is announced. It returns the promotions whose
// workflow may still need starting, and why matching rules started nothing.
func AutoPromote(ctx context.Context, st *store.Store, c *mlflow.Client, provs modelplane.Providers, mlflowModel, version, alias string) (start []modelplane.Promotion, skipped []string, err error) {
	targets, err := st.ListTargets(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range targets {
		for _, r := range t.AutoPromote {
			if !r.Matches(mlflowModel, alias) {
				continue
			}
			v, err := ImportMLflow(ctx, st, c, r.Model, MLflowRef{Name: mlflowModel, Version: version})
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s → %s: import: %v", mlflowModel, t.Name, err))
				continue
			}
			key := fmt.Sprintf("mlflow/%s/%s/%s", mlflowModel, version, t.Name)
			p, created, err := PreparePromotion(ctx, st, provs, PromotionRequest{Model: r.Model, Version: v.Version, Target: t.Name, Strategy: r.Strategy}, AutoPromoter, key)
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

// ReconcileResult is what a reconciliation pass found.
type ReconcileResult struct {
	Start   []modelplane.Promotion `json:"start"`
	Skipped []string               `json:"skipped,omitempty"`
}

// ReconcileMLflow catches what lost webhooks missed: for every auto_promote
// rule it looks up the newest READY version of the MLflow model (or the one
// holding the rule's alias) and prepares its promotion as the webhook would.
func (a *Activities) ReconcileMLflow(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if a.MLflow == nil {
		return res, nil
	}
	targets, err := a.Store.ListTargets(ctx)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	for _, t := range targets {
		for _, r := range t.AutoPromote {
			id := r.MLflowModel + "\x00" + r.Alias
			if seen[id] {
				continue
			}
			seen[id] = true
			version, err := a.newestMLflowVersion(ctx, r)
			if err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", r.MLflowModel, err))
				continue
			}
			if version == "" {
				continue
			}
			start, skipped, err := AutoPromote(ctx, a.Store, a.MLflow, a.Providers, r.MLflowModel, version, r.Alias)
			if err != nil {
				return res, err
			}
			res.Start = append(res.Start, start...)
			res.Skipped = append(res.Skipped, skipped...)
		}
	}
	return res, nil
}

func (a *Activities) newestMLflowVersion(ctx context.Context, r modelplane.AutoPromote) (string, error) {
	if r.Alias != "" {
		mv, err := a.MLflow.GetModelVersionByAlias(ctx, r.MLflowModel, r.Alias)
		if mlflow.IsNotFound(err) {
			return "", nil
		}
		return mv.Version, err
	}
	mvs, err := a.MLflow.SearchModelVersions(ctx, fmt.Sprintf("name='%s'", strings.ReplaceAll(r.MLflowModel, "'", "\\'")))
	if err != nil {
		return "", err
	}
	best, bestN := "", -1
	for _, mv := range mvs {
		if mv.Status != "" && mv.Status != "READY" {
			continue
		}
		if n, err := strconv.Atoi(mv.Version); err == nil && n > bestN {
			best, bestN = mv.Version, n
		}
	}
	return best, nil
}
