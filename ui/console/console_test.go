package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
)

// TestSignInSessionAndCSRF: pages need a session; the session cookie is
// HttpOnly and SameSite; forms refuse a missing token or another origin.
func TestSignInSessionAndCSRF(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	if p := b.get("/inbox"); p.status != http.StatusSeeOther || p.loc != "/login?next=%2Finbox" {
		t.Fatalf("signed-out inbox: %d → %q", p.status, p.loc)
	}
	p := b.get("/login")
	if p.status != http.StatusOK || p.form("/login") == nil || !strings.Contains(p.hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("login page: %d csp=%q\n%s", p.status, p.hdr.Get("Content-Security-Policy"), p.body)
	}
	// A stale or missing token in the sign-in form is refused, and so is a bad token.
	if r := b.do(http.MethodPost, "/login", url.Values{"csrf": {"forged"}, "token": {tokens["bob"]}}); r.status != http.StatusForbidden {
		t.Fatalf("forged login csrf: %d", r.status)
	}
	p = b.get("/login")
	r := b.do(http.MethodPost, "/login", url.Values{"csrf": {p.inputValue("csrf")}, "token": {"not-a-token"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.text(), "token: not accepted") {
		t.Fatalf("bad token: %d %s", r.status, r.text())
	}
	// Signing in sets an HttpOnly, SameSite session cookie.
	p = b.get("/login")
	r = b.do(http.MethodPost, "/login", url.Values{"csrf": {p.inputValue("csrf")}, "token": {tokens["bob"]}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.text())
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: r.hdr}).Cookies() {
		if c.Name == "mp_console" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Value == "" || strings.Contains(sess.Value, tokens["bob"]) {
		t.Fatalf("session cookie: %+v", sess)
	}
	if p := b.get("/inbox"); p.status != http.StatusOK || !strings.Contains(p.text(), "bob") {
		t.Fatalf("inbox after sign-in: %d %s", p.status, p.text())
	}
	// A tampered cookie is no session.
	tampered := h.browser()
	u, _ := url.Parse(h.url)
	tampered.c.Jar.SetCookies(u, []*http.Cookie{{Name: "mp_console", Value: sess.Value[:len(sess.Value)-4] + "AAAA"}})
	if p := tampered.get("/inbox"); p.status != http.StatusSeeOther {
		t.Fatalf("tampered session: %d", p.status)
	}
	// Forms: no CSRF token, or posted from another site, are refused.
	if r := b.do(http.MethodPost, "/logout", url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("logout without csrf: %d", r.status)
	}
	csrf := b.get("/inbox").inputValue("csrf")
	if r := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}, "Origin", "https://evil.example"); r.status != http.StatusForbidden || !strings.Contains(r.text(), "another site") {
		t.Fatalf("cross-site logout: %d %s", r.status, r.text())
	}
	if r := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if p := b.get("/inbox"); p.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", p.status)
	}
}

// TestPromoteApproveAndDenials drives a promotion through the console's
// own forms: alice requests, bob finds it in his inbox and approves, and
// each refused action shows the policy's reason.
func TestPromoteApproveAndDenials(t *testing.T) {
	h := newHarness(t)
	alice, bob, dave := h.browser(), h.browser(), h.browser()
	alice.signIn("alice")
	bob.signIn("bob")
	dave.signIn("dave")

	// Bad input comes back with the field named and what was typed kept.
	bad := alice.post("/models/churn", "/promotions", url.Values{"version": {"v2"}, "target": {"prod"}, "strategy": {"canary"}, "steps": {"10,fifty"}, "bake": {"1s"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.text(), "strategy.steps") || bad.inputValue("steps") != "10,fifty" {
		t.Fatalf("bad steps: %d %s", bad.status, bad.text())
	}
	bad = alice.post("/models/churn", "/promotions", url.Values{"version": {"v2"}, "target": {"prod"}, "strategy": {"canary"}, "steps": {"10,100"}, "bake": {"soon"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.text(), "bake") || bad.inputValue("bake") != "soon" {
		t.Fatalf("bad bake: %d %s", bad.status, bad.text())
	}

	r := alice.post("/models/churn", "/promotions", url.Values{"version": {"v2"}, "target": {"prod"}, "strategy": {"canary"}, "steps": {"50,100"}, "bake": {"1s"}, "monitor_window": {"1s"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/promotions/") {
		t.Fatalf("start: %d %q %s", r.status, r.loc, r.text())
	}
	id := strings.TrimPrefix(strings.SplitN(r.loc, "?", 2)[0], "/promotions/")
	h.waitFor("awaiting approval", func() bool { return h.promotion(id).Stage == modelplane.StageAwaitingApproval })

	// Bob's inbox has it; dave (another team) and alice (the requester) do not.
	in := bob.get("/inbox")
	row := in.byID("inbox-" + id)
	if row == nil || !strings.Contains(text(row), "churn v2 → prod") || !strings.Contains(text(row), "left") {
		t.Fatalf("bob's inbox: %s", in.text())
	}
	if dave.get("/inbox").byID("inbox-"+id) != nil || alice.get("/inbox").byID("inbox-"+id) != nil {
		t.Fatal("inbox shows a promotion to someone who may not approve it")
	}

	// Alice's own vote is refused with the policy's reason (four-eyes).
	denied := alice.do(http.MethodPost, "/promotions/"+id+"/approvals", url.Values{"csrf": {alice.get("/inbox").inputValue("csrf")}, "decision": {"approve"}})
	if denied.status != http.StatusForbidden || !strings.Contains(denied.text(), "Denied by policy") || !strings.Contains(denied.text(), "alice") {
		t.Fatalf("alice approves her own: %d %s", denied.status, denied.text())
	}
	// Dave (team risk) may not approve growth's model.
	detail := dave.get("/promotions/" + id)
	if detail.status != http.StatusForbidden || !strings.Contains(detail.text(), "Denied by policy") {
		t.Fatalf("dave reads growth's promotion: %d %s", detail.status, detail.text())
	}

	// Bob approves from the inbox, bound to the evidence shown.
	evidence := in.inputValue("evidence_hash")
	if evidence == "" {
		t.Fatal("inbox form carries no evidence hash")
	}
	ok := bob.post("/inbox", "/promotions/"+id+"/approvals", url.Values{"decision": {"approve"}, "comment": {"looks good"}})
	if ok.status != http.StatusSeeOther || !strings.Contains(ok.loc, "notice=") {
		t.Fatalf("bob approves: %d %q %s", ok.status, ok.loc, ok.text())
	}
	p := h.waitStatusOf(id, modelplane.StatusSucceeded)
	if len(p.Approvals) != 1 || p.Approvals[0].Approver != "bob" || p.Approvals[0].Via != "console" || p.Approvals[0].EvidenceHash != evidence || p.Approvals[0].Comment != "looks good" {
		t.Fatalf("approvals: %+v", p.Approvals)
	}
	if bob.get("/inbox").byID("inbox-"+id) != nil {
		t.Fatal("approved promotion still in the inbox")
	}

	// The detail page shows the approval, the denied attempt, the traffic chart and the timeline.
	d := bob.get("/promotions/" + id)
	txt := d.text()
	for _, want := range []string{"succeeded", "looks good", "console", "Denied attempts", "alice", "v2 100%"} {
		if !strings.Contains(txt, want) {
			t.Errorf("detail page lacks %q:\n%s", want, txt)
		}
	}
	if svg := findAll(d.doc, "svg"); len(svg) != 1 || attr(svg[0], "role") != "img" {
		t.Errorf("traffic chart: %d svg elements", len(svg))
	}
	// The audit trail records the vote as bob's, through the console.
	recs, err := h.kit.Store.ListAudit(context.Background(), storeFilter(id))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if rec.Action == "vote" && rec.Actor == "bob" && rec.Details["via"] == "console" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no vote record by bob via console in %d records", len(recs))
	}
}

func (h *harness) waitStatusOf(id, status string) modelplane.Promotion {
	h.t.Helper()
	var p modelplane.Promotion
	h.waitFor("promotion "+status, func() bool {
		p = h.promotion(id)
		if modelplane.Terminal(p.Status) && p.Status != status {
			h.t.Fatalf("promotion ended %s (%s), want %s", p.Status, p.Reason, status)
		}
		return p.Status == status
	})
	return p
}

// TestEveryPageRenders reads each page as admin and as an auditor: the
// pages render, their links lead somewhere, and every form carries CSRF.
func TestEveryPageRenders(t *testing.T) {
	h := newHarness(t)
	admin := h.browser()
	admin.signIn("admin")
	paths := []string{"/inbox", "/promotions", "/deployments", "/deployments/prod/churn", "/models", "/models/churn", "/models/churn/versions/v1/provenance",
		"/audit", "/audit/verify", "/scorecard", "/mcp", "/promotions?status=running", "/audit?actor=admin&since=2020-01-01"}
	seen := map[string]bool{}
	for _, path := range paths {
		p := admin.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, p.status, p.text())
		}
		if len(findAll(p.doc, "h1")) != 1 || len(findAll(p.doc, "main")) != 1 || attr(findAll(p.doc, "html")[0], "lang") != "en" {
			t.Errorf("%s: want one h1, one main and a language", path)
		}
		if csp := p.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for _, f := range findAll(p.doc, "form") {
			if strings.EqualFold(attr(f, "method"), "post") {
				has := false
				for _, in := range findAll(f, "input") {
					has = has || (attr(in, "name") == "csrf" && attr(in, "value") != "")
				}
				if !has {
					t.Errorf("%s: form to %s has no CSRF token", path, attr(f, "action"))
				}
			}
		}
		for _, n := range append(findAll(p.doc, "*"), nil) {
			if n != nil && attr(n, "style") != "" {
				t.Errorf("%s: inline style on <%s> (the CSP forbids it)", path, n.Data)
			}
		}
		for _, a := range findAll(p.doc, "a") {
			href := attr(a, "href")
			if strings.HasPrefix(href, "/") && !strings.HasPrefix(href, "/audit/export") && !seen[href] {
				seen[href] = true
				if l := admin.get(href); l.status != http.StatusOK {
					t.Errorf("%s links to %s: %d", path, href, l.status)
				}
			}
		}
	}
	// The provenance page names the version's registration and a chain head.
	if p := admin.get("/models/churn/versions/v1/provenance"); !strings.Contains(p.text(), "s3://models/churn/v1") {
		t.Errorf("provenance: %s", p.text())
	}
	// Verify says the chain is intact; export is JSON Lines.
	if p := admin.get("/audit/verify"); p.byID("verify-result") == nil || !strings.Contains(p.text(), "intact") {
		t.Errorf("verify: %s", p.text())
	}
	if p := admin.get("/audit/export"); p.status != http.StatusOK || p.hdr.Get("Content-Type") != "application/x-ndjson" || !strings.Contains(p.hdr.Get("Content-Disposition"), "attachment") {
		t.Errorf("export: %d %v", p.status, p.hdr)
	}
	// An edited record breaks the chain, and the page names it.
	var first int64
	if err := h.kit.Store.DB().Raw("SELECT MIN(seq) FROM audit_records").Scan(&first).Error; err != nil || first == 0 {
		t.Fatalf("first audit record: %d %v", first, err)
	}
	if err := h.kit.Store.DB().Exec("UPDATE audit_records SET actor = 'mallory' WHERE seq = ?", first).Error; err != nil {
		t.Fatal(err)
	}
	if p := admin.get("/audit/verify"); !strings.Contains(p.text(), "The chain is broken") || !strings.Contains(p.text(), fmt.Sprintf("First broken record: #%d", first)) {
		t.Errorf("verify after an edit: %s", p.text())
	}
	// Unknown pages are a 404 page, not a blank.
	if p := admin.get("/nope"); p.status != http.StatusNotFound || !strings.Contains(p.text(), "Not found") {
		t.Errorf("404: %d", p.status)
	}
	// A team member reads their own models' records; the whole trail is
	// refused with the policy's reason, and the filters stay on screen.
	alice := h.browser()
	alice.signIn("alice")
	if p := alice.get("/audit"); p.status != http.StatusForbidden || p.form("/audit") == nil || !strings.Contains(p.text(), "admin or role auditor") {
		t.Errorf("alice's unfiltered audit: %d %s", p.status, p.text())
	}
	if p := alice.get("/audit?model=churn"); p.status != http.StatusOK || !strings.Contains(p.text(), "model created") && !strings.Contains(p.text(), "No records match") {
		t.Errorf("alice's audit of churn: %d %s", p.status, p.text())
	}
	// The auditor reads everything but is offered no action that changes anything it may not do.
	aud := h.browser()
	aud.signIn("audrey")
	if p := aud.get("/audit"); p.status != http.StatusOK {
		t.Errorf("auditor audit page: %d", p.status)
	}
	// Tool calls through the MCP gateway, by tool and agent.
	if err := h.kit.Store.AppendAudit(context.Background(),
		modelplane.AuditRecord{Key: "tc-1", Actor: "alice", Action: modelplane.AuditToolCall, Subject: "io.github.acme/notes/echo", Model: "io.github.acme/notes",
			Decision: string(modelplane.ToolAllowed), Details: map[string]any{"agent": "research-agent"}},
		modelplane.AuditRecord{Key: "tc-2", Actor: "alice", Action: modelplane.AuditToolCall, Subject: "io.github.acme/notes/delete_note", Model: "io.github.acme/notes",
			Decision: string(modelplane.ToolDenied), Details: map[string]any{"agent": "other-agent"}}); err != nil {
		t.Fatal(err)
	}
	if p := aud.get("/audit?action=tool_call&agent=research-agent"); p.status != http.StatusOK || !strings.Contains(p.text(), "io.github.acme/notes/echo") || strings.Contains(p.text(), "delete_note") {
		t.Errorf("tool calls by agent: %d %s", p.status, p.text())
	}
	if p := aud.get("/audit?subject=io.github.acme/notes/delete_note"); !strings.Contains(p.text(), "denied") || strings.Contains(p.text(), "notes/echo") || p.form("/audit") == nil {
		t.Errorf("tool calls by tool: %s", p.text())
	}
	r := aud.do(http.MethodPost, "/deployments/rollback", url.Values{"csrf": {aud.get("/deployments/prod/churn").inputValue("csrf")}, "target": {"prod"}, "model": {"churn"}, "reason": {"auditor tries"}})
	if r.status != http.StatusForbidden || !strings.Contains(r.text(), "auditors may read but not change anything") {
		t.Errorf("auditor rolls back a deployment: %d %s", r.status, r.text())
	}
}

// TestLiveStream: the stream names each event, ids it with the audit seq,
// and resumes from Last-Event-ID.
func TestLiveStream(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.signIn("admin")
	time.Sleep(200 * time.Millisecond) // the hub has read the head
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rq, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/events", nil)
	res, err := b.c.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan [3]string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		var ev [3]string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev[0] = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev[1] = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev[2] = strings.TrimPrefix(line, "data: ")
			case line == "" && ev[0] != "":
				events <- ev
				ev = [3]string{}
			}
		}
		close(events)
	}()
	next := func() [3]string {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return [3]string{}
	}
	if e := next(); e[0] != "hello" {
		t.Fatalf("first event %v", e)
	}
	if err := h.kit.Store.AppendAudit(context.Background(), modelplane.AuditRecord{Key: "t/1", Time: time.Now(), Actor: "system", Action: "stage", PromotionID: "p-live", Model: "churn", Subject: "x"},
		modelplane.AuditRecord{Key: "t/2", Time: time.Now(), Actor: "system", Action: "traffic", PromotionID: "p-live", Model: "churn", Decision: "v1=50,v2=50", Subject: "x"}); err != nil {
		t.Fatal(err)
	}
	e1, e2 := next(), next()
	if e1[0] != "promotion" || e2[0] != "traffic" || !strings.Contains(e1[2], `"promotion":"p-live"`) || e1[1] == "" || e2[1] <= e1[1] {
		t.Fatalf("events %v %v", e1, e2)
	}
	cancel()
	// Reconnecting with Last-Event-ID replays what came after it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	rq, _ = http.NewRequestWithContext(ctx2, http.MethodGet, h.url+"/events", nil)
	rq.Header.Set("Last-Event-ID", e1[1])
	res2, err := b.c.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	sc := bufio.NewScanner(res2.Body)
	got := ""
	for sc.Scan() && got == "" {
		if strings.HasPrefix(sc.Text(), "event: traffic") {
			got = "traffic"
		}
	}
	if got != "traffic" {
		t.Fatal("resume from Last-Event-ID did not replay the traffic event")
	}
	// Dave (team risk) hears that something happened, not which of
	// growth's promotions it was.
	dave := h.browser()
	dave.signIn("dave")
	ctx3, cancel3 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel3()
	rq, _ = http.NewRequestWithContext(ctx3, http.MethodGet, h.url+"/events", nil)
	rq.Header.Set("Last-Event-ID", e1[1])
	res3, err := dave.c.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer res3.Body.Close()
	sc = bufio.NewScanner(res3.Body)
	got = ""
	for sc.Scan() && got == "" {
		if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"seq":`+e2[1]) {
			got = sc.Text()
		}
	}
	if got == "" || strings.Contains(got, "p-live") || strings.Contains(got, "traffic") {
		t.Fatalf("dave's stream: %q", got)
	}
	// Signed out, the stream refuses.
	if p := h.browser().get("/events"); p.status != http.StatusUnauthorized {
		t.Fatalf("signed-out stream: %d", p.status)
	}
}

func storeFilter(id string) store.AuditFilter { return store.AuditFilter{PromotionID: id} }
