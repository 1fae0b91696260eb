package mlflow

import (
	"context"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/modelplane/modelplane"
)

// Aliases and tags the mirror writes.
const (
	AliasChampion   = "champion"
	AliasChallenger = "challenger"

	TagStage       = "modelplane.stage"
	TagPromotionID = "modelplane.promotion_id"
	TagNote        = "modelplane.note"

	// StageSuperseded is the stage tag of a champion that lost the title.
	StageSuperseded = "superseded"
)

// maxNote bounds the note tag (MLflow's smallest documented tag value limit).
const maxNote = 5000

// Mirror writes modelplane's lifecycle stages into the MLflow Model
// Registry: aliases are the promotion pointers, tags the evidence.
type Mirror struct {
	Client *Client
}

// Apply mirrors c onto version c.Version of the registered model named model
// in MLflow. Every stage sets the tag modelplane.stage=<stage> plus tags
// (e.g. modelplane.validation, modelplane.approvers) and, when not given
// in tags, modelplane.promotion_id and modelplane.note from c. Besides:
//
//   - challenger: alias challenger → the version;
//   - champion: alias champion → the version, challenger removed if it
//     points at the version, c.Previous tagged superseded;
//   - rolled_back: alias champion → c.Previous (or removed from the version
//     when there is no previous), challenger removed if it points at the
//     version, c.Previous tagged champion.
//
// Apply reads before it writes and skips what is already in place, so it is
// idempotent and a retry after a partial failure finishes the job.
func (m Mirror) Apply(ctx context.Context, c modelplane.StageChange, model string, tags map[string]string) error {
	if m.Client == nil {
		return fmt.Errorf("mlflow: Mirror has no Client: %w", modelplane.ErrInvalid)
	}
	switch {
	case model == "":
		return invalidField(FieldName, "is required to mirror a stage (the registered model's name in MLflow)")
	case c.Version == "":
		return invalidField("version", "is required to mirror a stage")
	}
	switch c.Stage {
	case modelplane.VersionPendingApproval, modelplane.VersionApproved, modelplane.VersionRejected,
		modelplane.VersionChallenger, modelplane.VersionChampion, modelplane.VersionRolledBack:
	default:
		return invalidField("stage", "unknown stage %q", c.Stage)
	}
	if err := m.apply(ctx, c, model, tags); err != nil {
		return fmt.Errorf("mlflow: mirroring %s of %q version %s: %w", c.Stage, model, c.Version, err)
	}
	return nil
}

func (m Mirror) apply(ctx context.Context, c modelplane.StageChange, model string, tags map[string]string) error {
	previous := c.Previous
	if previous == c.Version {
		previous = ""
	}
	switch c.Stage {
	case modelplane.VersionChallenger:
		aliases, err := m.Aliases(ctx, model)
		if err != nil {
			return err
		}
		if err := m.setAlias(ctx, model, aliases, AliasChallenger, c.Version); err != nil {
			return err
		}
	case modelplane.VersionChampion:
		aliases, err := m.Aliases(ctx, model)
		if err != nil {
			return err
		}
		if err := m.setAlias(ctx, model, aliases, AliasChampion, c.Version); err != nil {
			return err
		}
		if err := m.dropAliasAt(ctx, model, aliases, AliasChallenger, c.Version); err != nil {
			return err
		}
		if previous != "" {
			if err := m.setTags(ctx, model, previous, map[string]string{TagStage: StageSuperseded}); err != nil {
				return err
			}
		}
	case modelplane.VersionRolledBack:
		aliases, err := m.Aliases(ctx, model)
		if err != nil {
			return err
		}
		if previous != "" {
			if err := m.setAlias(ctx, model, aliases, AliasChampion, previous); err != nil {
				return err
			}
		} else if err := m.dropAliasAt(ctx, model, aliases, AliasChampion, c.Version); err != nil {
			return err
		}
		if err := m.dropAliasAt(ctx, model, aliases, AliasChallenger, c.Version); err != nil {
			return err
		}
		if previous != "" {
			if err := m.setTags(ctx, model, previous, map[string]string{TagStage: modelplane.VersionChampion}); err != nil {
				return err
			}
		}
	}
	want := map[string]string{}
	if c.PromotionID != "" {
		want[TagPromotionID] = c.PromotionID
	}
	if c.Note != "" {
		want[TagNote] = truncate(c.Note, maxNote)
	}
	for k, v := range tags {
		want[k] = v
	}
	want[TagStage] = c.Stage
	return m.setTags(ctx, model, c.Version, want)
}

// Aliases returns the registered model's aliases: alias → version.
func (m Mirror) Aliases(ctx context.Context, model string) (map[string]string, error) {
	rm, err := m.Client.GetRegisteredModel(ctx, model)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rm.Aliases))
	for _, a := range rm.Aliases {
		out[a.Alias] = a.Version
	}
	return out, nil
}

func (m Mirror) setAlias(ctx context.Context, model string, aliases map[string]string, alias, version string) error {
	if aliases[alias] == version {
		return nil
	}
	if err := m.Client.SetRegisteredModelAlias(ctx, model, alias, version); err != nil {
		return err
	}
	aliases[alias] = version
	return nil
}

// dropAliasAt removes alias only while it points at version: an alias that
// has already moved on belongs to someone else.
func (m Mirror) dropAliasAt(ctx context.Context, model string, aliases map[string]string, alias, version string) error {
	if v, ok := aliases[alias]; !ok || v != version {
		return nil
	}
	if err := m.Client.DeleteRegisteredModelAlias(ctx, model, alias); err != nil && !IsNotFound(err) {
		return err
	}
	delete(aliases, alias)
	return nil
}

func (m Mirror) setTags(ctx context.Context, model, version string, want map[string]string) error {
	mv, err := m.Client.GetModelVersion(ctx, model, version)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a deterministic order of writes
	for _, k := range keys {
		if have, ok := mv.Tag(k); ok && have == want[k] {
			continue
		}
		if err := m.Client.SetModelVersionTag(ctx, model, version, k, want[k]); err != nil {
			return err
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
