package api_test

import (
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

// inboxItems is the caller's inbox, by promotion id.
func (h *harness) inboxItems(user string) map[string]map[string]any {
	h.t.Helper()
	r := h.must(h.call("GET", "/v1/inbox", user, nil), 200)
	items, ok := r.body["items"].([]any)
	if !ok {
		h.t.Fatalf("inbox of %s = %s", user, r.raw)
	}
	out := map[string]map[string]any{}
	for _, it := range items {
		m := it.(map[string]any)
		out[m["promotion"].(map[string]any)["id"].(string)] = m
	}
	return out
}

func promotionIDs(r resp) []string {
	var out []string
	for _, p := range r.body["promotions"].([]any) {
		out = append(out, p.(map[string]any)["id"].(string))
	}
	return out
}

func instant(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return at
}

// TestInboxAndPaging: a promotion awaiting approval is in the inbox of
// each approver who may still vote on it, not its requester's nor a
// requester's; a vote takes it out of the voter's inbox only. The list
// endpoints page with cursors and name a bad parameter.
func TestInboxAndPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	h.seed("high") // two approvals

	for _, c := range []struct{ path, field string }{
		{"/v1/promotions?limit=0", "limit"},
		{"/v1/promotions?limit=201", "limit"},
		{"/v1/promotions?limit=ten", "limit"},
		{"/v1/promotions?before=" + url.QueryEscape("not a cursor"), "before"},
		{"/v1/promotions?before=eHx5", "before"}, // "x|y": no time
		{"/v1/audit?model=churn&after=x", "after"},
		{"/v1/audit?model=churn&before=-1", "before"},
		{"/v1/audit?model=churn&order=sideways", "order"},
	} {
		if r := h.must(h.call("GET", c.path, "alice", nil), 400); r.errField() != c.field {
			t.Fatalf("%s: field %q, want %q (%s)", c.path, r.errField(), c.field, r.raw)
		}
	}
	if got := h.inboxItems("bob"); len(got) != 0 {
		t.Fatalf("bob's inbox before any promotion = %v", got)
	}

	id := h.promote("alice", canaryBody("v2", []int{100}, "1s"))
	h.waitFor("awaiting approval", 2*time.Minute, func() bool { return h.promotion(id).Stage == modelplane.StageAwaitingApproval })
	p := h.promotion(id)
	if p.Validation == nil || p.Validation.EvidenceHash == "" || p.RequiredApprovals != 2 {
		t.Fatalf("fixture: validation %+v, required %d", p.Validation, p.RequiredApprovals)
	}

	it, ok := h.inboxItems("bob")[id]
	if !ok {
		t.Fatalf("bob's inbox lacks %s", id)
	}
	since := instant(t, it["waiting_since"])
	var entered time.Time
	for _, e := range p.History {
		if e.Stage == modelplane.StageAwaitingApproval {
			entered = e.At
		}
	}
	if !since.Equal(entered) || since.Before(p.CreatedAt) {
		t.Fatalf("waiting_since %s, entered %s, created %s", since, entered, p.CreatedAt)
	}
	timeout := modelplane.DefaultApprovalTimeout
	if d := p.ApprovalTimeout.D(); d > 0 {
		timeout = d
	}
	if got := instant(t, it["escalates_at"]).Sub(since); got != timeout/2 {
		t.Fatalf("escalates %s after waiting began, want %s", got, timeout/2)
	}
	if got := instant(t, it["expires_at"]).Sub(since); got != timeout {
		t.Fatalf("expires %s after waiting began, want %s", got, timeout)
	}
	if it["votes"] != 0.0 || it["required"] != 2.0 || it["evidence_hash"] != p.Validation.EvidenceHash {
		t.Fatalf("inbox item = %v", it)
	}
	// Four-eyes: not in the requester's inbox; nor in that of a requester who may not approve.
	for _, who := range []string{"alice", "dave"} {
		if _, ok := h.inboxItems(who)[id]; ok {
			t.Fatalf("%s's inbox holds %s", who, id)
		}
	}

	// Promotions: filters and a cursor.
	list := func(query string) resp { return h.must(h.call("GET", "/v1/promotions?"+query, "dave", nil), 200) }
	for query, want := range map[string]bool{
		"requester=alice": true, "requester=bob": false, "team=growth": true, "team=nobody": false,
		"stage=awaiting_approval": true, "stage=canary": false, "team=growth&stage=awaiting_approval&requester=alice&model=churn&target=prod&status=running": true,
	} {
		r := list(query)
		if got := slices.Contains(promotionIDs(r), id); got != want {
			t.Fatalf("%s holds %s: %v, want %v (%s)", query, id, got, want, r.raw)
		}
		if _, next := r.body["next"]; next {
			t.Fatalf("%s: a short page has a next cursor: %s", query, r.raw)
		}
	}
	r := list("limit=1")
	next, _ := r.body["next"].(string)
	if ids := promotionIDs(r); len(ids) != 1 || ids[0] != id || next == "" {
		t.Fatalf("first page = %s", r.raw)
	}
	if r := list("limit=1&before=" + url.QueryEscape(next)); len(promotionIDs(r)) != 0 || r.body["next"] != nil {
		t.Fatalf("page after the only promotion = %s", r.raw)
	}

	// Audit: newest first, a page at a time.
	page := func(query string) ([]float64, any) {
		r := h.must(h.call("GET", "/v1/audit?model=churn&"+query, "dave", nil), 200)
		var seqs []float64
		for _, rec := range r.body["records"].([]any) {
			seqs = append(seqs, rec.(map[string]any)["seq"].(float64))
		}
		return seqs, r.body["next"]
	}
	first, n1 := page("order=desc&limit=2")
	if len(first) != 2 || first[0] <= first[1] || n1 != first[1] {
		t.Fatalf("newest page = %v next %v", first, n1)
	}
	second, _ := page("order=desc&limit=2&before=" + strconvF(n1))
	if len(second) == 0 || second[0] >= first[1] {
		t.Fatalf("second newest page = %v after %v", second, first)
	}
	older, _ := page("after=" + strconvF(second[0]) + "&limit=1")
	if len(older) != 1 || older[0] <= second[0] {
		t.Fatalf("ascending page after %v = %v", second[0], older)
	}

	// bob votes: the promotion leaves his inbox and stays in carol's, one vote counted.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "bob", map[string]any{"decision": "approve"}), 200)
	h.waitFor("bob's vote recorded", 2*time.Minute, func() bool { return len(h.promotion(id).Approvals) == 1 })
	if _, ok := h.inboxItems("bob")[id]; ok {
		t.Fatalf("bob's inbox still holds %s after his vote", id)
	}
	it, ok = h.inboxItems("carol")[id]
	if !ok || it["votes"] != 1.0 || it["required"] != 2.0 {
		t.Fatalf("carol's inbox item = %v (%v)", it, ok)
	}
	// carol's vote makes the quorum: the promotion leaves every inbox.
	h.must(h.call("POST", "/v1/promotions/"+id+"/approvals", "carol", map[string]any{"decision": "approve"}), 200)
	h.waitFor("quorum", 2*time.Minute, func() bool { return h.promotion(id).Stage != modelplane.StageAwaitingApproval })
	if got := h.inboxItems("carol"); len(got) != 0 {
		t.Fatalf("carol's inbox after the quorum = %v", got)
	}
}

// strconvF writes a JSON number as a query integer.
func strconvF(v any) string {
	f, _ := v.(float64)
	return strconv.FormatInt(int64(f), 10)
}
