package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
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
	if a.Promotions == nil {
		return res, errNoPromotions
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
			start, skipped, err := a.Promotions.AutoPromote(ctx, r.MLflowModel, version, r.Alias)
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
