package kserve

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/prometheus"
)

// Default queries read Knative Serving's queue-proxy metrics, which every
// serverless InferenceService revision exports (request count with the
// response code class, latency histogram in milliseconds).
const (
	defaultRequestsQuery = `sum(increase(revision_request_count{namespace_name="{{.Namespace}}",revision_name=~"{{.Revision}}"}[{{.Window}}]))`

	// "or vector(0)": no 5xx series at all means no errors, not no data.
	defaultErrorRateQuery = `(sum(increase(revision_request_count{namespace_name="{{.Namespace}}",revision_name=~"{{.Revision}}",response_code_class="5xx"}[{{.Window}}])) or vector(0))` +
		` / sum(increase(revision_request_count{namespace_name="{{.Namespace}}",revision_name=~"{{.Revision}}"}[{{.Window}}]))`

	defaultLatencyQuery = `histogram_quantile(0.99, sum by (le) (rate(revision_request_latencies_bucket{namespace_name="{{.Namespace}}",revision_name=~"{{.Revision}}"}[{{.Window}}])))`
)

// QueryData is what the query templates see.
type QueryData struct {
	Namespace string
	// Name is the InferenceService.
	Name    string
	Model   string
	Version string
	// Revision is a regular expression matching the version's Knative
	// revisions (use with =~): one version can have several.
	Revision string
	// Window is a Prometheus duration, e.g. "300s".
	Window string
}

// Health queries the target's Prometheus for the version's revisions. No
// Prometheus, a version with no revision, or no requests in the window is NoData.
func (p *Provider) Health(ctx context.Context, t modelplane.Target, model, version string, window time.Duration) (modelplane.Health, error) {
	h := modelplane.Health{Version: version, NoData: true}
	c, dc, err := p.setup(t, model)
	if err != nil {
		return h, err
	}
	if t.Prometheus == nil || t.Prometheus.URL == "" {
		return h, nil
	}
	cur, err := getISVC(ctx, dc, c)
	if err != nil {
		return h, err
	}
	revs := cur.versionRevisions(version)
	if len(revs) == 0 {
		return h, nil
	}
	pc, err := prometheus.FromConfig(*t.Prometheus, p.opts.Getenv)
	if err != nil {
		return h, fmt.Errorf("kserve: health of %s %s: %w: %w", model, version, err, modelplane.ErrInvalid)
	}
	if p.opts.PrometheusHTTP != nil {
		pc.HTTP = p.opts.PrometheusHTTP
	}
	if window < time.Second {
		window = time.Minute
	}
	for i, r := range revs {
		revs[i] = regexp.QuoteMeta(r)
	}
	data := QueryData{
		Namespace: c.namespace, Name: c.name, Model: model, Version: version,
		Revision: strings.Join(revs, "|"), Window: fmt.Sprintf("%ds", int64(window/time.Second)),
	}
	now := time.Now()
	reqs, empty, err := query(ctx, pc, c.queries.requests, KeyRequestsQuery, data, now)
	if err != nil || empty || reqs <= 0 {
		return h, err
	}
	h.Requests = int64(reqs + 0.5)
	er, emptyE, err := query(ctx, pc, c.queries.errorRate, KeyErrorRateQuery, data, now)
	if err != nil {
		return h, err
	}
	lat, emptyL, err := query(ctx, pc, c.queries.latency, KeyLatencyQuery, data, now)
	if err != nil {
		return h, err
	}
	// A measurement missing is inconclusive, never a pass.
	h.ErrorRate, h.LatencyP99Ms, h.NoData = er, lat, emptyE || emptyL
	return h, nil
}

func query(ctx context.Context, pc *prometheus.Client, tpl *template.Template, key string, data QueryData, at time.Time) (float64, bool, error) {
	var b strings.Builder
	if err := tpl.Execute(&b, data); err != nil {
		return 0, false, invalidField(key, "template: %v", err)
	}
	v, empty, err := pc.Query(ctx, b.String(), at)
	var qe *prometheus.QueryError
	if errors.As(err, &qe) && qe.BadQuery() {
		return 0, false, invalidField(key, "%v", err)
	}
	if err != nil {
		return 0, false, fmt.Errorf("kserve: %s: %w", key, err)
	}
	return v, empty, nil
}
