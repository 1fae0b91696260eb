package store_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
)

// consolePromotions stores 23 promotions p00…p22 whose created_at comes
// in groups of five equal times (nanosecond precision, more than
// PostgreSQL keeps), of models m0…m2, requested by alice or bob; every 4th
// awaits approval, every 7th has ended. It returns them by id.
func consolePromotions(t *testing.T, s *store.Store) map[string]modelplane.Promotion {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	all := map[string]modelplane.Promotion{}
	for i := 0; i < 23; i++ {
		p := modelplane.Promotion{ID: fmt.Sprintf("p%02d", i), Model: fmt.Sprintf("m%d", i%3), Version: "1", Target: fmt.Sprintf("t%d", i),
			RequestedBy: []string{"alice", "bob"}[i%2], Status: modelplane.StatusRunning, Stage: modelplane.StageCanary,
			CreatedAt: base.Add(time.Duration(i/5) * time.Second)}
		if i%4 == 0 {
			p.Stage = modelplane.StageAwaitingApproval
		}
		if _, _, err := s.CreatePromotion(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 { // ended: its stage is done
			p.Status, p.Stage = modelplane.StatusSucceeded, modelplane.StageDone
			if err := s.UpdatePromotion(ctx, p, 1); err != nil {
				t.Fatal(err)
			}
		}
		all[p.ID] = p
	}
	return all
}

// newestFirst is the ids of the promotions keep accepts, by (created_at, id) descending.
func newestFirst(all map[string]modelplane.Promotion, keep func(modelplane.Promotion) bool) []string {
	var ps []modelplane.Promotion
	for _, p := range all {
		if keep(p) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b modelplane.Promotion) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

func ids(ps []modelplane.Promotion) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// pages reads every page of f, limit rows at a time, following the
// cursor of each page's last promotion; it fails on an overlong listing.
func pages(t *testing.T, s *store.Store, f store.PromotionFilter, limit int) []string {
	t.Helper()
	f.Limit = limit
	var out []string
	for n := 0; ; n++ {
		if n > 50 {
			t.Fatalf("paging does not end: %v", out)
		}
		ps, err := s.ListPromotions(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > limit {
			t.Fatalf("page of %d, limit %d", len(ps), limit)
		}
		out = append(out, ids(ps)...)
		if len(ps) < limit {
			return out
		}
		if f.OldestFirst {
			f.After = store.PromotionCursor(ps[len(ps)-1])
		} else {
			f.Before = store.PromotionCursor(ps[len(ps)-1])
		}
	}
}

func TestPromotionPagingAndFilters(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			all := consolePromotions(t, s)
			any := func(modelplane.Promotion) bool { return true }
			want := newestFirst(all, any)
			got, err := s.ListPromotions(ctx, store.PromotionFilter{})
			if err != nil || !slices.Equal(ids(got), want) {
				t.Fatalf("newest first = %v, %v; want %v", ids(got), err, want)
			}
			// Pages of every size: no duplicates, no gaps, across groups of equal created_at.
			for _, limit := range []int{1, 2, 4, 5, 7, 23, 30} {
				if got := pages(t, s, store.PromotionFilter{}, limit); !slices.Equal(got, want) {
					t.Fatalf("pages of %d = %v, want %v", limit, got, want)
				}
				oldest := slices.Clone(want)
				slices.Reverse(oldest)
				if got := pages(t, s, store.PromotionFilter{OldestFirst: true}, limit); !slices.Equal(got, oldest) {
					t.Fatalf("oldest-first pages of %d = %v, want %v", limit, got, oldest)
				}
			}

			// Filters, alone, together and paged.
			running := func(p modelplane.Promotion) bool { return p.Status == modelplane.StatusRunning }
			cases := []struct {
				name string
				f    store.PromotionFilter
				keep func(modelplane.Promotion) bool
			}{
				{"requester", store.PromotionFilter{RequestedBy: "alice"}, func(p modelplane.Promotion) bool { return p.RequestedBy == "alice" }},
				{"models", store.PromotionFilter{Models: []string{"m0", "m2"}}, func(p modelplane.Promotion) bool { return p.Model != "m1" }},
				{"no models", store.PromotionFilter{Models: []string{}}, func(modelplane.Promotion) bool { return false }},
				{"nil models", store.PromotionFilter{Models: nil}, any},
				{"stage implies running", store.PromotionFilter{Stage: modelplane.StageAwaitingApproval}, func(p modelplane.Promotion) bool {
					return running(p) && p.Stage == modelplane.StageAwaitingApproval
				}},
				{"stage and status", store.PromotionFilter{Stage: modelplane.StageDone, Status: modelplane.StatusSucceeded}, func(p modelplane.Promotion) bool { return !running(p) }},
				{"stage done", store.PromotionFilter{Stage: modelplane.StageDone}, func(p modelplane.Promotion) bool { return !running(p) }},
				{"stage, team and requester", store.PromotionFilter{Stage: modelplane.StageCanary, Models: []string{"m1", "m2"}, RequestedBy: "bob"}, func(p modelplane.Promotion) bool {
					return running(p) && p.Stage == modelplane.StageCanary && p.Model != "m0" && p.RequestedBy == "bob"
				}},
				{"unknown stage", store.PromotionFilter{Stage: "nowhere"}, func(modelplane.Promotion) bool { return false }},
			}
			for _, c := range cases {
				want := newestFirst(all, c.keep)
				got, err := s.ListPromotions(ctx, c.f)
				if err != nil || !slices.Equal(ids(got), want) {
					t.Fatalf("%s = %v, %v; want %v", c.name, ids(got), err, want)
				}
				for _, limit := range []int{1, 2, 3} {
					if got := pages(t, s, c.f, limit); !slices.Equal(got, want) {
						t.Fatalf("%s in pages of %d = %v, want %v", c.name, limit, got, want)
					}
				}
			}

			// A cursor of a promotion not stored still places the page by its time and id.
			ghost := modelplane.Promotion{ID: "p07x", CreatedAt: all["p07"].CreatedAt}
			got, err = s.ListPromotions(ctx, store.PromotionFilter{Before: store.PromotionCursor(ghost), Limit: 3})
			if err != nil || !slices.Equal(ids(got), []string{"p07", "p06", "p05"}) {
				t.Fatalf("before a ghost = %v, %v", ids(got), err)
			}
			got, err = s.ListPromotions(ctx, store.PromotionFilter{After: store.PromotionCursor(ghost), OldestFirst: true, Limit: 3})
			if err != nil || !slices.Equal(ids(got), []string{"p08", "p09", "p10"}) {
				t.Fatalf("after a ghost = %v, %v", ids(got), err)
			}
			// Before and After together: a window.
			got, err = s.ListPromotions(ctx, store.PromotionFilter{Before: store.PromotionCursor(all["p12"]), After: store.PromotionCursor(all["p03"])})
			if want := []string{"p11", "p10", "p09", "p08", "p07", "p06", "p05", "p04"}; err != nil || !slices.Equal(ids(got), want) {
				t.Fatalf("window = %v, %v; want %v", ids(got), err, want)
			}

			// A cursor round-trips; a bad one is an error naming the parameter.
			if at, id, err := store.ParsePromotionCursor(store.PromotionCursor(all["p03"])); err != nil || id != "p03" || !at.Equal(all["p03"].CreatedAt) {
				t.Fatalf("cursor round trip = %v %q %v", at, id, err)
			}
			for _, bad := range []string{"!!", "bm9waXBl", "eHx5"} { // not base64; "nopipe"; "x|y"
				if _, _, err := store.ParsePromotionCursor(bad); err == nil {
					t.Fatalf("cursor %q accepted", bad)
				}
				_, err := s.ListPromotions(ctx, store.PromotionFilter{Before: bad})
				if code(err) != modelplane.EInvalid || !strings.Contains(err.Error(), "before") {
					t.Fatalf("bad before %q: %v", bad, err)
				}
				_, err = s.ListPromotions(ctx, store.PromotionFilter{After: bad})
				if code(err) != modelplane.EInvalid || !strings.Contains(err.Error(), "after") {
					t.Fatalf("bad after %q: %v", bad, err)
				}
			}
		})
	}
}

func seqs(recs []modelplane.AuditRecord) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func TestAuditPagingAndFeed(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, mk(t))
			if head, err := s.AuditHead(ctx); head != 0 || err != nil {
				t.Fatalf("head of an empty trail = %d, %v", head, err)
			}
			if recs, err := s.AuditSince(ctx, 0, 0); len(recs) != 0 || err != nil {
				t.Fatalf("since 0 on an empty trail = %v, %v", recs, err)
			}
			for i := 1; i <= 12; i++ {
				r := rec(fmt.Sprintf("a/%d", i))
				if i%3 == 0 {
					r.Model = "fraud"
				}
				if err := s.AppendAudit(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if head, err := s.AuditHead(ctx); head != 12 || err != nil {
				t.Fatalf("head = %d, %v", head, err)
			}
			check := func(what string, recs []modelplane.AuditRecord, err error, want ...int64) {
				t.Helper()
				if err != nil || !slices.Equal(seqs(recs), want) {
					t.Fatalf("%s = %v, %v; want %v", what, seqs(recs), err, want)
				}
			}
			recs, err := s.AuditSince(ctx, 0, 5)
			check("since 0, 5", recs, err, 1, 2, 3, 4, 5)
			recs, err = s.AuditSince(ctx, 10, 0)
			check("since 10", recs, err, 11, 12)
			recs, err = s.AuditSince(ctx, 12, 0)
			check("since head", recs, err)

			// The default order is unchanged: oldest first.
			recs, err = s.ListAudit(ctx, store.AuditFilter{Limit: 4})
			check("default", recs, err, 1, 2, 3, 4)
			recs, err = s.ListAudit(ctx, store.AuditFilter{Newest: true, Limit: 5})
			check("newest", recs, err, 12, 11, 10, 9, 8)
			recs, err = s.ListAudit(ctx, store.AuditFilter{Newest: true, Limit: 5, BeforeSeq: 8})
			check("newest before 8", recs, err, 7, 6, 5, 4, 3)
			recs, err = s.ListAudit(ctx, store.AuditFilter{AfterSeq: 3, BeforeSeq: 7})
			check("window", recs, err, 4, 5, 6)
			recs, err = s.ListAudit(ctx, store.AuditFilter{AfterSeq: 10})
			check("after 10", recs, err, 11, 12)
			recs, err = s.ListAudit(ctx, store.AuditFilter{Model: "fraud", Newest: true, BeforeSeq: 12})
			check("newest fraud before 12", recs, err, 9, 6, 3)
			if n := (store.AuditFilter{}).PageSize(); n != 1000 {
				t.Fatalf("default page size %d", n)
			}
			if n := (store.AuditFilter{Limit: 9000}).PageSize(); n != 1000 {
				t.Fatalf("page size of an overlong limit %d", n)
			}

			// Exports keep seq order and honour the seq bounds; Newest does not apply.
			var buf bytes.Buffer
			n, err := s.ExportAudit(ctx, &buf, store.AuditFilter{AfterSeq: 9, Newest: true})
			if err != nil || n != 3 || !strings.Contains(strings.Split(buf.String(), "\n")[0], `"key":"a/10"`) {
				t.Fatalf("export after 9 = %d %v\n%s", n, err, buf.String())
			}
		})
	}
}
