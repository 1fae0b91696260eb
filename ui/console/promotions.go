package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
)

func (r *req) inbox() error {
	var out struct {
		Items []api.InboxItem `json:"items"`
	}
	if err := r.call(http.MethodGet, "/v1/inbox", nil, nil, &out); err != nil {
		return err
	}
	return r.show("inbox", &view{Title: "Approvals inbox", Nav: "inbox", Live: "*", Data: out.Items})
}

type promotionsView struct {
	Filter     url.Values
	Promotions []modelplane.Promotion
	Next       string
	Statuses   []string
}

var promotionFilters = []string{"model", "target", "status", "team", "requester", "stage"}

func (r *req) promotions() error {
	q := url.Values{}
	for _, k := range append(promotionFilters, "before") {
		if v := strings.TrimSpace(r.r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "50")
	var out struct {
		Promotions []modelplane.Promotion `json:"promotions"`
		Next       string                 `json:"next"`
	}
	if err := r.call(http.MethodGet, "/v1/promotions", q, nil, &out); err != nil {
		return err
	}
	next := ""
	if out.Next != "" {
		nq := url.Values{}
		for _, k := range promotionFilters {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("before", out.Next)
		next = "/promotions?" + nq.Encode()
	}
	return r.show("promotions", &view{Title: "Promotions", Nav: "promotions", Live: "*", Data: promotionsView{Filter: q, Promotions: out.Promotions, Next: next,
		Statuses: []string{modelplane.StatusRunning, modelplane.StatusSucceeded, modelplane.StatusFailed, modelplane.StatusRolledBack}}})
}

// promotionView is everything the detail page shows.
type promotionView struct {
	P           modelplane.Promotion
	Events      []modelplane.AuditRecord
	Denied      []modelplane.AuditRecord
	Rollbacks   []modelplane.AuditRecord
	Traffic     []trafficPoint
	Chart       template.HTML
	AuditErr    string
	Steps       []stepView
	CanVote     bool
	CanDecide   bool
	CanRollback bool
	Evidence    string
	Thresholds  []thresholdView
}

type stepView struct {
	Stage, Label string
	At           time.Time
	Note         string
	Done, Now    bool
}

type thresholdView struct{ Name, Limit string }

func (r *req) promotion() error {
	id := r.r.PathValue("id")
	var p modelplane.Promotion
	if err := r.call(http.MethodGet, "/v1/promotions/"+url.PathEscape(id), nil, nil, &p); err != nil {
		return err
	}
	v := promotionView{P: p, CanVote: p.Stage == modelplane.StageAwaitingApproval && !modelplane.Terminal(p.Status) && p.RequestedBy != r.who.Name && !votedBy(p, r.who.Name),
		CanDecide: p.Stage == modelplane.StageAwaitingDecision && !modelplane.Terminal(p.Status), CanRollback: !modelplane.Terminal(p.Status)}
	if p.Validation != nil {
		v.Evidence = p.Validation.EvidenceHash
	}
	var recs struct {
		Records []modelplane.AuditRecord `json:"records"`
	}
	if err := r.call(http.MethodGet, "/v1/audit", url.Values{"promotion": {p.ID}, "limit": {"2000"}}, nil, &recs); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		v.AuditErr = ae.Message
	}
	for _, rec := range recs.Records {
		switch rec.Action {
		case "approval_denied", "denied":
			v.Denied = append(v.Denied, rec)
		case "rollback":
			v.Rollbacks = append(v.Rollbacks, rec)
			// A rollback moves traffic too: all of it back to the stable version.
			if to, _ := rec.Details["to"].(string); rec.Decision == "rolled_back" && to != "" {
				v.Traffic = append(v.Traffic, trafficPoint{At: rec.Time, Split: modelplane.TrafficSplit{to: 100}})
			}
		case "traffic":
			if split := parseSplit(rec.Decision); len(split) > 0 {
				v.Traffic = append(v.Traffic, trafficPoint{At: rec.Time, Split: split})
			}
		}
	}
	// Newest first reads best on a live page.
	v.Events = make([]modelplane.AuditRecord, len(recs.Records))
	for i, rec := range recs.Records {
		v.Events[len(recs.Records)-1-i] = rec
	}
	// The split before the first move: the stable version took everything.
	if len(v.Traffic) > 0 && p.StableVersion != "" && v.Traffic[0].Split[p.StableVersion] != 100 {
		v.Traffic = append([]trafficPoint{{At: p.CreatedAt, Split: modelplane.TrafficSplit{p.StableVersion: 100}}}, v.Traffic...)
	}
	v.Steps = steps(p)
	v.Thresholds = thresholds(p.Analysis)
	v.Chart = trafficChart(v.Traffic, p.Version, p.CreatedAt, p.FinishedAt)
	return r.show("promotion", &view{Title: "Promotion " + p.Model + " " + p.Version + " → " + p.Target, Nav: "promotions", Live: p.ID, Data: v})
}

// steps lays the promotion's path out as a timeline: the stages it has
// passed with their times, the one it is in, and those still ahead.
func steps(p modelplane.Promotion) []stepView {
	var out []stepView
	seen := map[string]bool{}
	for i, h := range p.History {
		out = append(out, stepView{Stage: h.Stage, Label: strings.ReplaceAll(h.Stage, "_", " "), At: h.At, Note: h.Note, Done: true, Now: i == len(p.History)-1 && !modelplane.Terminal(p.Status)})
		seen[h.Stage] = true
	}
	if modelplane.Terminal(p.Status) {
		return out
	}
	ahead := []string{modelplane.StageValidating, modelplane.StageAwaitingApproval}
	switch p.Strategy.Type {
	case modelplane.StrategyShadow:
		ahead = append(ahead, modelplane.StageShadow, modelplane.StageCanary)
	case modelplane.StrategyBlueGreen:
		ahead = append(ahead, modelplane.StageBlueGreen)
	case modelplane.StrategyDirect:
		ahead = append(ahead, modelplane.StageDirect)
	default:
		ahead = append(ahead, modelplane.StageCanary)
	}
	ahead = append(ahead, modelplane.StageMonitoring, modelplane.StageDone)
	for _, s := range ahead {
		if !seen[s] {
			out = append(out, stepView{Stage: s, Label: strings.ReplaceAll(s, "_", " ")})
		}
	}
	return out
}

func thresholds(a modelplane.Analysis) []thresholdView {
	var out []thresholdView
	t := a.Thresholds
	if t.MaxErrorRate != nil {
		out = append(out, thresholdView{"error rate", "≤ " + fmtFloat(*t.MaxErrorRate)})
	}
	if t.MaxLatencyP99Ms != nil {
		out = append(out, thresholdView{"p99 latency (ms)", "≤ " + fmtFloat(*t.MaxLatencyP99Ms)})
	}
	if t.MaxDrift != nil {
		out = append(out, thresholdView{"drift", "≤ " + fmtFloat(*t.MaxDrift)})
	}
	return out
}

func parseSplit(s string) modelplane.TrafficSplit {
	out := modelplane.TrafficSplit{}
	for _, part := range strings.Split(s, ",") {
		v, pct, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		n := 0
		for _, ch := range pct {
			if ch < '0' || ch > '9' {
				return nil
			}
			n = n*10 + int(ch-'0')
		}
		out[strings.TrimSpace(v)] = n
	}
	return out
}

func sortedVersions(points []trafficPoint) []string {
	set := map[string]bool{}
	for _, p := range points {
		for v := range p.Split {
			set[v] = true
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func (r *req) approve() error {
	id := r.r.PathValue("id")
	f := r.r.PostForm
	body := map[string]any{"decision": f.Get("decision"), "comment": strings.TrimSpace(f.Get("comment")), "evidence_hash": f.Get("evidence_hash")}
	if err := r.call(http.MethodPost, "/v1/promotions/"+url.PathEscape(id)+"/approvals", nil, body, nil); err != nil {
		return err
	}
	word := map[string]string{"approve": "Approved", "reject": "Rejected"}[f.Get("decision")]
	return r.redirect("/promotions/" + url.PathEscape(id) + "?notice=" + url.QueryEscape(word+" as "+r.who.Name+"."))
}

func (r *req) rollback() error {
	id := r.r.PathValue("id")
	body := map[string]any{"reason": strings.TrimSpace(r.r.PostForm.Get("reason"))}
	if err := r.call(http.MethodPost, "/v1/promotions/"+url.PathEscape(id)+"/rollback", nil, body, nil); err != nil {
		return err
	}
	return r.redirect("/promotions/" + url.PathEscape(id) + "?notice=" + url.QueryEscape("Rollback requested by "+r.who.Name+"."))
}

func (r *req) decide() error {
	id := r.r.PathValue("id")
	body := map[string]any{"decision": r.r.PostForm.Get("decision")}
	if err := r.call(http.MethodPost, "/v1/promotions/"+url.PathEscape(id)+"/decision", nil, body, nil); err != nil {
		return err
	}
	return r.redirect("/promotions/" + url.PathEscape(id) + "?notice=" + url.QueryEscape("Decision recorded: "+r.r.PostForm.Get("decision")+"."))
}

// votedBy reports whether name has a vote on the promotion already (the
// form is not offered twice; the API would refuse it anyway).
func votedBy(p modelplane.Promotion, name string) bool {
	for _, a := range p.Approvals {
		if a.Approver == name {
			return true
		}
	}
	return false
}
