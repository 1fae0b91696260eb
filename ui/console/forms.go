package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// formError re-renders a page with the API's refusal next to the field it
// names; the form keeps what was typed.
type formError struct {
	Form    url.Values
	Message string
	Field   string
}

func asFormError(err error, f url.Values) (*formError, int, bool) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status >= 500 {
		return nil, 0, false
	}
	return &formError{Form: f, Message: ae.Message, Field: ae.Field}, ae.Status, true
}

// createModel mirrors POST /v1/models.
func (r *req) createModel() error {
	f := r.r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	body := map[string]any{"name": name, "owner": strings.TrimSpace(f.Get("owner")), "team": strings.TrimSpace(f.Get("team")),
		"risk_tier": f.Get("risk_tier"), "description": strings.TrimSpace(f.Get("description"))}
	if err := r.call(http.MethodPost, "/v1/models", nil, body, nil); err != nil {
		if fe, status, ok := asFormError(err, f); ok {
			return r.modelsPage(fe, status)
		}
		return err
	}
	return r.redirect("/models/" + url.PathEscape(name) + "?notice=" + url.QueryEscape("Registered "+name+"."))
}

// parseMetrics reads "auc=0.91, f1=0.8".
func parseMetrics(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || strings.TrimSpace(k) == "" || err != nil {
			return nil, errors.New("write each metric as name=number, separated by commas, such as auc=0.91, f1=0.8")
		}
		out[strings.TrimSpace(k)] = n
	}
	return out, nil
}

// createVersion mirrors POST /v1/models/{name}/versions.
func (r *req) createVersion() error {
	f := r.r.PostForm
	name := r.r.PathValue("name")
	metrics, err := parseMetrics(f.Get("metrics"))
	if err != nil {
		return r.modelPage(nil, &formError{Form: f, Field: "metrics", Message: err.Error()}, http.StatusBadRequest)
	}
	version := strings.TrimSpace(f.Get("version"))
	body := map[string]any{"version": version, "artifact_uri": strings.TrimSpace(f.Get("artifact_uri")), "metrics": metrics,
		"lineage": map[string]string{"run_id": strings.TrimSpace(f.Get("run_id")), "run_link": strings.TrimSpace(f.Get("run_link"))}}
	if err := r.call(http.MethodPost, "/v1/models/"+url.PathEscape(name)+"/versions", nil, body, nil); err != nil {
		if fe, status, ok := asFormError(err, f); ok {
			return r.modelPage(nil, fe, status)
		}
		return err
	}
	return r.redirect("/models/" + url.PathEscape(name) + "?notice=" + url.QueryEscape("Registered version "+version+"."))
}

// reportDrift mirrors POST /v1/signals/drift: a person reporting what a
// monitor saw; what serves the model rolls back.
func (r *req) reportDrift() error {
	f := r.r.PostForm
	score, err := strconv.ParseFloat(strings.TrimSpace(f.Get("score")), 64)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Field: "score", Message: "must be a number such as 0.4"}
	}
	body := map[string]any{"model": f.Get("model"), "target": f.Get("target"), "version": f.Get("version"), "metric": strings.TrimSpace(f.Get("metric")),
		"score": score, "source": "console:" + r.who.Name}
	var out struct {
		Affected []struct {
			Kind, ID string
		} `json:"affected"`
	}
	if err := r.call(http.MethodPost, "/v1/signals/drift", nil, body, &out); err != nil {
		return err
	}
	back := localPath(f.Get("back"))
	if strings.Contains(back, "?") {
		back = strings.SplitN(back, "?", 2)[0]
	}
	msg := "Drift reported; nothing running served that version."
	if len(out.Affected) > 0 {
		msg = "Drift reported: " + out.Affected[0].Kind + " " + out.Affected[0].ID + " rolls back."
	}
	return r.redirect(back + "?notice=" + url.QueryEscape(msg))
}
