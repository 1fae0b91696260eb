package vertex

import (
	"context"
	"maps"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/modelplane/modelplane"
)

// Aliases mirroring our stages. Vertex keeps an alias on one version of a
// model at a time: adding one another version holds moves it.
const (
	aliasChallenger = "challenger"
	aliasChampion   = "champion"
)

const labelPromotion = "modelplane-promotion"

func (p *Provider) mergeAliases(ctx context.Context, cl *clients, r registered, aliases ...string) error {
	if len(aliases) == 0 {
		return nil
	}
	_, err := cl.model.MergeVersionAliases(ctx, &aiplatformpb.MergeVersionAliasesRequest{Name: r.name(), VersionAliases: aliases})
	return wrap(err, "merge aliases %v on model version %s", aliases, r.name())
}

// MarkVersion mirrors a stage into the Model Registry: challenger and
// champion as version aliases (an alias moves when another version takes
// it, so the previous champion loses "champion" by itself), every stage as
// the modelplane-stage label. Idempotent: aliases already in place are not
// sent again.
func (p *Provider) MarkVersion(ctx context.Context, t modelplane.Target, sc modelplane.StageChange) error {
	c, cl, err := p.setup(ctx, t)
	if err != nil {
		return err
	}
	vs, _, err := p.versions(ctx, c, cl, sc.Model)
	if err != nil {
		return err
	}
	r, ok := vs[sc.Version]
	if !ok {
		return invalid("version %s of %s is not registered in %s", sc.Version, sc.Model, modelName(c, sc.Model))
	}
	switch sc.Stage {
	case modelplane.VersionPendingApproval, modelplane.VersionApproved, modelplane.VersionRejected:
	case modelplane.VersionChallenger:
		if !r.hasAlias(aliasChallenger) {
			err = p.mergeAliases(ctx, cl, r, aliasChallenger)
		}
	case modelplane.VersionChampion:
		var merge []string
		if !r.hasAlias(aliasChampion) {
			merge = append(merge, aliasChampion)
		}
		if r.hasAlias(aliasChallenger) {
			merge = append(merge, "-"+aliasChallenger)
		}
		err = p.mergeAliases(ctx, cl, r, merge...)
	case modelplane.VersionRolledBack:
		err = p.rollBackAliases(ctx, c, cl, sc, vs, r)
	default:
		return invalid("unknown stage %q for version %s", sc.Stage, sc.Version)
	}
	if err != nil {
		return err
	}
	labels := maps.Clone(r.model.GetLabels())
	labels[labelStage] = labelValue(sc.Stage)
	if sc.PromotionID != "" {
		labels[labelPromotion] = labelValue(sc.PromotionID)
	}
	if maps.Equal(labels, r.model.GetLabels()) {
		return nil
	}
	return p.updateLabels(ctx, cl, r, labels)
}

// rollBackAliases gives "champion" back to the previous version (taking it
// off the rolled-back one) and removes "challenger" from the rolled-back one.
func (p *Provider) rollBackAliases(ctx context.Context, c config, cl *clients, sc modelplane.StageChange, vs map[string]registered, r registered) error {
	holdsChampion := r.hasAlias(aliasChampion)
	if sc.Previous != "" {
		prev, ok := vs[sc.Previous]
		if !ok {
			return invalid("previous version %s of %s is not registered in %s", sc.Previous, sc.Model, modelName(c, sc.Model))
		}
		if !prev.hasAlias(aliasChampion) {
			if err := p.mergeAliases(ctx, cl, prev, aliasChampion); err != nil {
				return err
			}
			holdsChampion = false // the alias moved
		}
	}
	var remove []string
	if r.hasAlias(aliasChallenger) {
		remove = append(remove, "-"+aliasChallenger)
	}
	if holdsChampion {
		remove = append(remove, "-"+aliasChampion)
	}
	return p.mergeAliases(ctx, cl, r, remove...)
}
