package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
)

var auditFilters = []string{"model", "version", "promotion", "actor", "action", "subject", "agent", "since", "until"}

type auditView struct {
	Filter  url.Values
	Records []modelplane.AuditRecord
	Next    string
	Export  string
	Verify  *verifyView
}

type verifyView struct {
	OK      bool
	Records int
	Break   *audit.Break
	Message string
}

// auditQuery turns the form's filters into the API's: dates from the
// browser's date inputs become RFC 3339 times.
func auditQuery(in url.Values) url.Values {
	q := url.Values{}
	for _, k := range auditFilters {
		v := strings.TrimSpace(in.Get(k))
		if v == "" {
			continue
		}
		if (k == "since" || k == "until") && len(v) == 10 {
			if t, err := time.Parse("2006-01-02", v); err == nil {
				if k == "until" {
					t = t.Add(24 * time.Hour) // through the end of that day
				}
				v = t.Format(time.RFC3339)
			}
		}
		q.Set(k, v)
	}
	return q
}

func (r *req) audit() error {
	q := auditQuery(r.r.URL.Query())
	filter := url.Values{}
	for _, k := range auditFilters {
		if v := r.r.URL.Query().Get(k); v != "" {
			filter.Set(k, v)
		}
	}
	api := url.Values{}
	for k, v := range q {
		api[k] = v
	}
	api.Set("order", "desc")
	api.Set("limit", "100")
	if b := r.r.URL.Query().Get("before"); b != "" {
		api.Set("before", b)
	}
	var out struct {
		Records []modelplane.AuditRecord `json:"records"`
		Next    json.Number              `json:"next"`
	}
	v := auditView{Filter: filter, Export: "/audit/export?" + filter.Encode()}
	if err := r.call(http.MethodGet, "/v1/audit", api, nil, &out); err != nil {
		// A team member may read their models' records only: keep the
		// filters on screen with the policy's reason.
		var ae *apiError
		if !errors.As(err, &ae) || (ae.Status != http.StatusForbidden && ae.Status != http.StatusBadRequest) {
			return err
		}
		msg := ae.Message
		if ae.Field != "" {
			msg = ae.Field + ": " + msg
		}
		vw := &view{Title: "Audit trail", Nav: "audit", Data: v, Error: msg}
		vw.fill(r)
		r.c.render(r.w, r.r, ae.Status, "audit", vw)
		return nil
	}
	v.Records = out.Records
	if out.Next != "" {
		nq := url.Values{}
		for k, vv := range filter {
			nq[k] = vv
		}
		nq.Set("before", out.Next.String())
		v.Next = "/audit?" + nq.Encode()
	}
	return r.show("audit", &view{Title: "Audit trail", Nav: "audit", Data: v})
}

// verify walks the whole chain through the API and names the first
// record that was edited, deleted or reordered.
func (r *req) verify() error {
	var v verifyView
	raw, err := r.callRaw(http.MethodGet, "/v1/audit/verify", nil, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		raw = ae.Body
	case err != nil:
		return err
	}
	if err := json.Unmarshal(raw, &struct {
		OK      *bool         `json:"ok"`
		Records *int          `json:"records"`
		Break   **audit.Break `json:"break"`
		Message *string       `json:"message"`
	}{&v.OK, &v.Records, &v.Break, &v.Message}); err != nil {
		return err
	}
	return r.show("audit", &view{Title: "Audit trail", Nav: "audit", Data: auditView{Filter: url.Values{}, Verify: &v}})
}

// export hands the browser the API's JSON Lines export (chain fields
// included, so `modelplane audit verify --file` can check it offline).
func (r *req) export() error {
	q := auditQuery(r.r.URL.Query())
	raw, err := r.callRaw(http.MethodGet, "/v1/audit/export", q, nil)
	if err != nil {
		return err
	}
	h := r.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", `attachment; filename="modelplane-audit-`+time.Now().UTC().Format("20060102T150405Z")+`.jsonl"`)
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = r.w.Write(raw)
	return nil
}
