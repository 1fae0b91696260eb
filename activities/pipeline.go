package activities

import (
	"context"
	"errors"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
	"go.temporal.io/sdk/temporal"
)

// Freeze reads the installation's freeze switch.
func (a *Activities) Freeze(ctx context.Context) (store.Freeze, error) {
	return a.Store.GetFreeze(ctx)
}

// SoakInput asks whether a version still serves every target of a stage.
type SoakInput struct {
	Model, Version string
	Targets        []string
}

// SoakBroken lists the targets that no longer serve the version as their
// stable one (rolled back, or replaced): its soak there was not continuous.
func (a *Activities) SoakBroken(ctx context.Context, in SoakInput) ([]string, error) {
	var broken []string
	for _, t := range in.Targets {
		d, _, err := a.Store.GetDeployment(ctx, in.Model, t)
		if err != nil {
			return nil, err
		}
		if d.Stable != in.Version {
			broken = append(broken, t)
		}
	}
	return broken, nil
}

// StagePromotionInput is one target of a pipeline stage to promote.
type StagePromotionInput struct {
	Request     modelplane.PromotionRequest
	RequestedBy string
	// Key makes the call idempotent: pipeline run, stage and target.
	Key string
}

// PrepareStagePromotion records the promotion of one target of a pipeline
// stage, the same way the API does; the pipeline starts it as a child.
func (a *Activities) PrepareStagePromotion(ctx context.Context, in StagePromotionInput) (modelplane.Promotion, error) {
	if a.Promotions == nil {
		return modelplane.Promotion{}, temporal.NewNonRetryableApplicationError(errNoPromotions.Error(), "misconfigured", nil)
	}
	p, _, err := a.Promotions.Prepare(ctx, in.Request, in.RequestedBy, in.Key)
	var e *modelplane.Error
	if errors.As(err, &e) && e.Code == modelplane.EConflict {
		// Another promotion holds the pair: the stage fails rather than waits.
		return p, temporal.NewNonRetryableApplicationError(err.Error(), "conflict", nil)
	}
	return p, nonRetryable(err)
}

// SoakMark names a version's soak in a pipeline's stages.
type SoakMark struct {
	Pipeline, Model, Version string
	Stages                   []string
	Until                    time.Time
}

// BeginSoak records that a version soaks in stages until a time.
func (a *Activities) BeginSoak(ctx context.Context, in SoakMark) error {
	return a.Store.BeginSoak(ctx, in.Pipeline, in.Model, in.Stages, store.Soak{Version: in.Version, Until: in.Until})
}

// EndSoak forgets the version's soak.
func (a *Activities) EndSoak(ctx context.Context, in SoakMark) error {
	return a.Store.EndSoak(ctx, in.Pipeline, in.Model, in.Version, in.Stages)
}

// SoakingIn reports another version soaking in the stage (Stages[0]).
func (a *Activities) SoakingIn(ctx context.Context, in SoakMark) (store.Soak, error) {
	k, ok, err := a.Store.GetSoak(ctx, in.Pipeline, in.Model, in.Stages[0])
	if err != nil || !ok || k.Version == in.Version {
		return store.Soak{}, err
	}
	return k, nil
}
