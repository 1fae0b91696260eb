package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// A version's provenance finds its promotion however many promotions of
// the model came after it (the store lists a page at a time).
func TestProvenanceOfAnOldVersion(t *testing.T) {
	h := newHarness(t, false)
	h.seed("low")
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	for i := range 520 {
		v := "v2"
		if i == 0 {
			v = "v1"
		}
		at := t0.Add(time.Duration(i) * time.Second)
		p := modelplane.Promotion{ID: fmt.Sprintf("p-old-%03d", i), Model: "churn", Version: v, Target: "prod", RequestedBy: "alice",
			Status: modelplane.StatusRunning, Stage: modelplane.StagePending, CreatedAt: at}
		if _, _, err := h.kit.Store.CreatePromotion(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		p.Status, p.Stage = modelplane.StatusSucceeded, modelplane.StageDone
		if err := h.kit.Store.UpdatePromotion(ctx, p, 1); err != nil {
			t.Fatal(err)
		}
	}
	r := h.must(h.call("GET", "/v1/models/churn/versions/v1/provenance", "alice", nil), 200)
	ps, _ := r.body["promotions"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["id"] != "p-old-000" {
		t.Fatalf("provenance of v1 lists %v, want p-old-000", ps)
	}
}
