package vertextest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

var (
	filterMetricRe   = regexp.MustCompile(`metric\.type\s*=\s*"([^"]+)"`)
	filterEndpointRe = regexp.MustCompile(`resource\.labels\.endpoint_id\s*=\s*"([^"]+)"`)
	filterDeployedRe = regexp.MustCompile(`metric\.labels\.deployed_model_id\s*=\s*"([^"]+)"`)
)

// monitoringHandler serves GET /v3/projects/{p}/timeSeries for the two
// Vertex AI online prediction metrics, already aligned over the whole
// interval: response_count summed per response_code, prediction_latencies
// as one p99 point. A deployed model without figures (or with no requests)
// has no series, as in Cloud Monitoring.
func (s *Server) monitoringHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v3/projects/") || !strings.HasSuffix(r.URL.Path, "/timeSeries") {
			apiError(w, http.StatusNotFound, "NOT_FOUND", "no such method "+r.Method+" "+r.URL.Path)
			return
		}
		if err := s.enter("ListTimeSeries"); err != nil {
			apiError(w, http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
			return
		}
		q := r.URL.Query()
		filter := q.Get("filter")
		metric, ep, dm := match(filterMetricRe, filter), match(filterEndpointRe, filter), match(filterDeployedRe, filter)
		if metric == "" || q.Get("interval.endTime") == "" {
			apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "filter needs metric.type and interval.endTime is required")
			return
		}
		s.mu.Lock()
		from, deployed := s.deployedAs[[2]string{ep, dm}]
		f, ok := s.figures[[2]string{from.displayName, from.description}]
		s.mu.Unlock()
		var series []map[string]any
		point := func(v map[string]any) []map[string]any {
			return []map[string]any{{"interval": map[string]string{"startTime": q.Get("interval.startTime"), "endTime": q.Get("interval.endTime")}, "value": v}}
		}
		if deployed && ok && f.Requests > 0 {
			switch metric {
			case "aiplatform.googleapis.com/prediction/online/response_count":
				if good := f.Requests - f.Errors5xx; good > 0 {
					series = append(series, timeSeries(metric, map[string]string{"response_code": "200"}, point(map[string]any{"int64Value": strconv.FormatInt(good, 10)})))
				}
				if f.Errors5xx > 0 {
					series = append(series, timeSeries(metric, map[string]string{"response_code": "503"}, point(map[string]any{"int64Value": strconv.FormatInt(f.Errors5xx, 10)})))
				}
			case "aiplatform.googleapis.com/prediction/online/prediction_latencies":
				series = append(series, timeSeries(metric, map[string]string{"deployed_model_id": dm, "latency_type": "model"}, point(map[string]any{"doubleValue": f.LatencyP99Ms})))
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"timeSeries": series})
	})
}

func timeSeries(metric string, labels map[string]string, points []map[string]any) map[string]any {
	return map[string]any{"metric": map[string]any{"type": metric, "labels": labels}, "points": points}
}

func match(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func apiError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "status": status, "message": msg}})
}
