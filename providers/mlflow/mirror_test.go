package mlflow_test

import (
	"context"
	"errors"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
)

func aliasIs(t *testing.T, s *mlflowtest.Server, alias, want string) {
	t.Helper()
	got, ok := s.Alias("fraud", alias)
	if want == "" {
		if ok {
			t.Fatalf("alias %s → %s, want unset", alias, got)
		}
		return
	}
	if got != want {
		t.Fatalf("alias %s → %q, want %q", alias, got, want)
	}
}

func stageIs(t *testing.T, s *mlflowtest.Server, version, want string) {
	t.Helper()
	if got := s.Tags("fraud", version)[mlflow.TagStage]; got != want {
		t.Fatalf("version %s stage tag %q, want %q", version, got, want)
	}
}

func TestMirrorLifecycle(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	m := mlflow.Mirror{Client: newClient(t, s, mlflow.Options{})}
	s.CreateVersion("fraud", mlflowtest.Version{})
	s.CreateVersion("fraud", mlflowtest.Version{})
	s.CreateVersion("fraud", mlflowtest.Version{})
	change := func(stage, version, previous string) modelplane.StageChange {
		return modelplane.StageChange{Model: "fraud-detector", Version: version, Stage: stage, Previous: previous, PromotionID: "p-" + version}
	}
	apply := func(c modelplane.StageChange, tags map[string]string) {
		t.Helper()
		if err := m.Apply(ctx, c, "fraud", tags); err != nil {
			t.Fatalf("%s %s: %v", c.Stage, c.Version, err)
		}
	}

	// Version 1 becomes champion first.
	apply(change(modelplane.VersionChampion, "1", ""), nil)
	aliasIs(t, s, "champion", "1")

	// Version 2: approval evidence, rollout, promotion.
	apply(change(modelplane.VersionPendingApproval, "2", ""), map[string]string{"modelplane.validation": "passed"})
	stageIs(t, s, "2", "pending_approval")
	apply(change(modelplane.VersionApproved, "2", ""), map[string]string{"modelplane.approvers": "ann,bob"})
	tags := s.Tags("fraud", "2")
	if tags["modelplane.stage"] != "approved" || tags["modelplane.approvers"] != "ann,bob" ||
		tags["modelplane.validation"] != "passed" || tags["modelplane.promotion_id"] != "p-2" {
		t.Fatalf("tags after approval: %v", tags)
	}
	apply(change(modelplane.VersionChallenger, "2", "1"), nil)
	aliasIs(t, s, "challenger", "2")
	aliasIs(t, s, "champion", "1")
	apply(change(modelplane.VersionChampion, "2", "1"), nil)
	aliasIs(t, s, "champion", "2")
	aliasIs(t, s, "challenger", "")
	stageIs(t, s, "1", mlflow.StageSuperseded)
	stageIs(t, s, "2", "champion")

	// Version 3 rolls out and is rolled back: champion returns to 2.
	apply(change(modelplane.VersionChallenger, "3", "2"), nil)
	aliasIs(t, s, "challenger", "3")
	apply(change(modelplane.VersionRolledBack, "3", "2"), nil)
	aliasIs(t, s, "champion", "2")
	aliasIs(t, s, "challenger", "")
	stageIs(t, s, "3", "rolled_back")
	stageIs(t, s, "2", "champion")

	// A rejected version gets the tag only.
	apply(change(modelplane.VersionRejected, "1", ""), nil)
	stageIs(t, s, "1", "rejected")

	aliases, err := m.Aliases(ctx, "fraud")
	if err != nil || len(aliases) != 1 || aliases["champion"] != "2" {
		t.Fatalf("Aliases = %v, %v", aliases, err)
	}
}

func TestMirrorIdempotent(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	m := mlflow.Mirror{Client: newClient(t, s, mlflow.Options{})}
	s.CreateVersion("fraud", mlflowtest.Version{})
	s.CreateVersion("fraud", mlflowtest.Version{})
	for _, c := range []modelplane.StageChange{
		{Version: "2", Stage: modelplane.VersionApproved, PromotionID: "p1"},
		{Version: "2", Stage: modelplane.VersionChallenger, Previous: "1"},
		{Version: "2", Stage: modelplane.VersionChampion, Previous: "1"},
		{Version: "2", Stage: modelplane.VersionRolledBack, Previous: "1"},
	} {
		if err := m.Apply(ctx, c, "fraud", map[string]string{"modelplane.validation": "passed"}); err != nil {
			t.Fatal(err)
		}
		writes := s.Writes()
		if err := m.Apply(ctx, c, "fraud", map[string]string{"modelplane.validation": "passed"}); err != nil {
			t.Fatal(err)
		}
		if s.Writes() != writes {
			t.Fatalf("%s applied twice wrote %d more times, want 0", c.Stage, s.Writes()-writes)
		}
	}
	aliasIs(t, s, "champion", "1")
}

func TestMirrorRetryAfter429(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	m := mlflow.Mirror{Client: newClient(t, s, mlflow.Options{})}
	s.CreateVersion("fraud", mlflowtest.Version{})
	s.CreateVersion("fraud", mlflowtest.Version{})
	if err := m.Apply(ctx, modelplane.StageChange{Version: "2", Stage: modelplane.VersionChallenger}, "fraud", nil); err != nil {
		t.Fatal(err)
	}
	// The challenger alias removal is throttled after champion moved.
	s.Fail("DELETE registered-models/alias", 429, 1)
	c := modelplane.StageChange{Version: "2", Stage: modelplane.VersionChampion, Previous: "1"}
	err := m.Apply(ctx, c, "fraud", nil)
	if err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("429: err = %v, want retryable", err)
	}
	var ae *mlflow.APIError
	if !errors.As(err, &ae) || ae.Code != "REQUEST_LIMIT_EXCEEDED" {
		t.Fatalf("err = %v, want the APIError", err)
	}
	aliasIs(t, s, "champion", "2")
	aliasIs(t, s, "challenger", "2")
	// The retry finishes the job.
	if err := m.Apply(ctx, c, "fraud", nil); err != nil {
		t.Fatal(err)
	}
	aliasIs(t, s, "champion", "2")
	aliasIs(t, s, "challenger", "")
}

func TestMirrorRollbackWithoutPrevious(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	m := mlflow.Mirror{Client: newClient(t, s, mlflow.Options{})}
	s.CreateVersion("fraud", mlflowtest.Version{})
	s.CreateVersion("fraud", mlflowtest.Version{})
	_ = m.Apply(ctx, modelplane.StageChange{Version: "1", Stage: modelplane.VersionChallenger}, "fraud", nil)
	_ = m.Apply(ctx, modelplane.StageChange{Version: "2", Stage: modelplane.VersionChampion}, "fraud", nil)
	// Challenger 1 belongs to nobody else; champion 2 is not ours to drop.
	if err := m.Apply(ctx, modelplane.StageChange{Version: "1", Stage: modelplane.VersionRolledBack}, "fraud", nil); err != nil {
		t.Fatal(err)
	}
	aliasIs(t, s, "challenger", "")
	aliasIs(t, s, "champion", "2")
	// Rolling back the champion itself with nothing before it removes the title.
	if err := m.Apply(ctx, modelplane.StageChange{Version: "2", Stage: modelplane.VersionRolledBack}, "fraud", nil); err != nil {
		t.Fatal(err)
	}
	aliasIs(t, s, "champion", "")
}

func TestMirrorRefusals(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	m := mlflow.Mirror{Client: newClient(t, s, mlflow.Options{})}
	s.CreateVersion("fraud", mlflowtest.Version{})
	for _, tc := range []struct {
		c     modelplane.StageChange
		model string
	}{
		{modelplane.StageChange{Version: "1", Stage: "shipped"}, "fraud"},
		{modelplane.StageChange{Version: "", Stage: modelplane.VersionApproved}, "fraud"},
		{modelplane.StageChange{Version: "1", Stage: modelplane.VersionApproved}, ""},
		{modelplane.StageChange{Version: "7", Stage: modelplane.VersionApproved}, "fraud"},
		{modelplane.StageChange{Version: "1", Stage: modelplane.VersionChampion}, "nope"},
	} {
		if err := m.Apply(ctx, tc.c, tc.model, nil); !errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("%+v on %q: err = %v, want ErrInvalid", tc.c, tc.model, err)
		}
	}
}
