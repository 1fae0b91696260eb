package sagemaker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func TestMarkVersionMirrorsStages(t *testing.T) {
	f := newFixture(t, nil, "v1", "v2")
	desc := func(v string) string { return "modelplane " + model + " version " + v }
	mark := func(c modelplane.StageChange) {
		t.Helper()
		c.Model = model
		if err := f.p.MarkVersion(ctx, f.tg, c); err != nil {
			t.Fatalf("MarkVersion(%+v): %v", c, err)
		}
	}
	approval, _, meta, ok := f.srv.Package(model, desc("v2"))
	if !ok || approval != "PendingManualApproval" || meta["modelplane.version"] != "v2" {
		t.Fatalf("registered package: %s %v %v", approval, meta, ok)
	}
	mark(modelplane.StageChange{Version: "v2", Stage: modelplane.VersionApproved, PromotionID: "promo-7", Note: "looks good"})
	approval, note, _, _ := f.srv.Package(model, desc("v2"))
	if approval != "Approved" || !strings.Contains(note, "promo-7") || !strings.Contains(note, "looks good") {
		t.Fatalf("after approval: %s %q", approval, note)
	}
	updates := f.srv.Calls("UpdateModelPackage")
	mark(modelplane.StageChange{Version: "v2", Stage: modelplane.VersionApproved, PromotionID: "promo-7", Note: "looks good"})
	if f.srv.Calls("UpdateModelPackage") != updates {
		t.Fatal("repeating a stage wrote to the registry again")
	}
	mark(modelplane.StageChange{Version: "v2", Stage: modelplane.VersionChampion, Previous: "v1", PromotionID: "promo-7"})
	_, _, m2, _ := f.srv.Package(model, desc("v2"))
	_, _, m1, _ := f.srv.Package(model, desc("v1"))
	if m2["modelplane.stage"] != "champion" || m2["modelplane.previous"] != "v1" || m1["modelplane.stage"] != "superseded" {
		t.Fatalf("champion metadata: v2 %v, v1 %v", m2, m1)
	}
	mark(modelplane.StageChange{Version: "v2", Stage: modelplane.VersionRolledBack, Previous: "v1", PromotionID: "promo-7"})
	_, _, m2, _ = f.srv.Package(model, desc("v2"))
	_, _, m1, _ = f.srv.Package(model, desc("v1"))
	if m2["modelplane.stage"] != "rolled_back" || m1["modelplane.stage"] != "champion" {
		t.Fatalf("rollback metadata: v2 %v, v1 %v", m2, m1)
	}
	mark(modelplane.StageChange{Version: "v1", Stage: modelplane.VersionRejected})
	if a, _, _, _ := f.srv.Package(model, desc("v1")); a != "Rejected" {
		t.Fatalf("rejected → %s", a)
	}
	err := f.p.MarkVersion(ctx, f.tg, modelplane.StageChange{Model: model, Version: "v9", Stage: modelplane.VersionApproved})
	if !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("unknown version: %v", err)
	}
}
