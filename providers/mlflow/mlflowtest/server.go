// Package mlflowtest is an in-process stand-in for an MLflow tracking server's
// Model Registry REST API (/api/2.0/mlflow/...), like net/http/httptest is
// for HTTP: registered models with versions, tags and aliases, runs with
// metrics, optional authentication, fault injection and call counters. It
// follows MLflow's documented encodings and error codes; behaviour that is
// not documented is marked "assumed". Deliver signs and sends webhook
// deliveries the way MLflow does.
package mlflowtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const apiPrefix = "/api/2.0/mlflow/"

// DefaultMaxResults is the page size of model-versions/search when the
// request names none (MLflow's default).
const DefaultMaxResults = 10000

// Server is a running stand-in.
type Server struct {
	// URL is the tracking URI to give the client (no trailing slash).
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	models   map[string]*model
	runs     map[string]*run
	token    string
	user     string
	pass     string
	faults   []fault
	calls    map[string]int
	writes   int
	pageSize int
	seq      int
	lastMs   int64
}

type fault struct {
	endpoint string
	status   int
	n        int
}

type model struct {
	name        string
	description string
	created     int64
	updated     int64
	tags        map[string]string
	aliases     map[string]int
	versions    map[int]*version
	next        int
}

type version struct {
	num           int
	source        string
	runID         string
	runLink       string
	userID        string
	status        string
	statusMessage string
	description   string
	modelID       string
	downloadURI   string
	created       int64
	updated       int64
	tags          map[string]string
}

type run struct {
	id           string
	experimentID string
	userID       string
	artifactURI  string
	deleted      bool
	metrics      map[string]float64
	created      int64
}

// NewServer starts a stand-in over plain HTTP and closes it when t ends.
func NewServer(t testing.TB) *Server {
	s := newServer()
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// NewTLSServer is NewServer over HTTPS with httptest's self-signed
// certificate (for MLFLOW_TRACKING_INSECURE_TLS).
func NewTLSServer(t testing.TB) *Server {
	s := newServer()
	s.srv = httptest.NewTLSServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func newServer() *Server {
	return &Server{models: map[string]*model{}, runs: map[string]*run{}, calls: map[string]int{}}
}

// Client returns an http.Client that trusts the server (TLS or not).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// RequireToken makes every call need "Authorization: Bearer <token>"
// (401 otherwise). With RequireBasic too, either is accepted.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// RequireBasic makes every call need Basic credentials (401 otherwise), as
// MLflow's basic-auth app does.
func (s *Server) RequireBasic(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

// Fail makes the next n calls to endpoint answer status with an MLflow
// error body (429 REQUEST_LIMIT_EXCEEDED, 500 INTERNAL_ERROR, 503
// TEMPORARILY_UNAVAILABLE, 403 PERMISSION_DENIED, other 4xx BAD_REQUEST)
// without doing anything. endpoint is "METHOD path" as in Calls, e.g.
// "POST registered-models/alias", or "" for any call.
func (s *Server) Fail(endpoint string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{endpoint: endpoint, status: status, n: n})
}

// Calls counts requests to endpoint ("GET model-versions/get",
// "DELETE registered-models/alias", ...), including refused ones; "" counts all.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if endpoint == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[endpoint]
}

// Writes counts requests that changed something (successful non-GET calls).
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// SetPageSize caps model-versions/search pages at n results (0: no cap),
// so tests exercise next_page_token.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Version describes a model version created by CreateVersion.
type Version struct {
	Source        string // default "s3://models/<name>/<n>"
	RunID         string
	RunLink       string
	UserID        string
	Description   string
	ModelID       string
	Status        string // default READY
	StatusMessage string
	Tags          map[string]string
	// DownloadURI is what model-versions/get-download-uri answers; by
	// default runs:/<id>/<path> resolves against the run's artifact URI
	// and anything else is returned as is.
	DownloadURI string
}

// Run describes a run created by CreateRun.
type Run struct {
	ID           string // default a generated 32-hex id
	ExperimentID string // default "0"
	UserID       string
	ArtifactURI  string // default "s3://mlruns/<experiment>/<id>/artifacts"
	// Metrics are the latest values by key; NaN and ±Inf are sent as MLflow
	// sends them ("NaN", "Infinity", "-Infinity").
	Metrics map[string]float64
	Deleted bool
}

// CreateModel creates a registered model (no-op if it exists).
func (s *Server) CreateModel(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models[name] == nil {
		s.newModel(name, "", nil)
	}
}

// CreateVersion adds a version to model name (created if needed) and returns its number.
func (s *Server) CreateVersion(name string, v Version) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.models[name]
	if m == nil {
		m = s.newModel(name, "", nil)
	}
	mv := s.newVersion(m, v.Source, v.RunID, v.RunLink, v.Description, v.ModelID, v.UserID, v.Tags)
	if v.Status != "" {
		mv.status = v.Status
	}
	mv.statusMessage = v.StatusMessage
	mv.downloadURI = v.DownloadURI
	return strconv.Itoa(mv.num)
}

// SetStatus changes a version's registration status.
func (s *Server) SetStatus(name, version, status, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mv := s.version(name, version); mv != nil {
		mv.status, mv.statusMessage = status, message
	}
}

// CreateRun stores a run and returns its id.
func (s *Server) CreateRun(r Run) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if r.ID == "" {
		r.ID = fmt.Sprintf("%032x", s.seq)
	}
	if r.ExperimentID == "" {
		r.ExperimentID = "0"
	}
	if r.ArtifactURI == "" {
		r.ArtifactURI = "s3://mlruns/" + r.ExperimentID + "/" + r.ID + "/artifacts"
	}
	m := map[string]float64{}
	for k, v := range r.Metrics {
		m[k] = v
	}
	s.runs[r.ID] = &run{id: r.ID, experimentID: r.ExperimentID, userID: r.UserID,
		artifactURI: r.ArtifactURI, deleted: r.Deleted, metrics: m, created: s.now()}
	return r.ID
}

// DeleteRun marks a run deleted (runs/get still answers, lifecycle_stage "deleted").
func (s *Server) DeleteRun(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.runs[id]; r != nil {
		r.deleted = true
	}
}

// PurgeRun removes a run (runs/get answers RESOURCE_DOES_NOT_EXIST).
func (s *Server) PurgeRun(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, id)
}

// Alias returns the version alias points at.
func (s *Server) Alias(name, alias string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.models[name]
	if m == nil {
		return "", false
	}
	n, ok := m.aliases[alias]
	if !ok {
		return "", false
	}
	return strconv.Itoa(n), true
}

// Tags returns a copy of a version's tags (nil if there is no such version).
func (s *Server) Tags(name, version string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	mv := s.version(name, version)
	if mv == nil {
		return nil
	}
	out := make(map[string]string, len(mv.tags))
	for k, v := range mv.tags {
		out[k] = v
	}
	return out
}

// now is a strictly increasing wall clock in milliseconds.
func (s *Server) now() int64 {
	ms := time.Now().UnixMilli()
	if ms <= s.lastMs {
		ms = s.lastMs + 1
	}
	s.lastMs = ms
	return ms
}

func (s *Server) newModel(name, description string, tags map[string]string) *model {
	now := s.now()
	m := &model{name: name, description: description, created: now, updated: now,
		tags: map[string]string{}, aliases: map[string]int{}, versions: map[int]*version{}, next: 1}
	for k, v := range tags {
		m.tags[k] = v
	}
	s.models[name] = m
	return m
}

func (s *Server) newVersion(m *model, source, runID, runLink, description, modelID, userID string, tags map[string]string) *version {
	now := s.now()
	n := m.next
	m.next++
	if source == "" {
		source = fmt.Sprintf("s3://models/%s/%d", m.name, n)
	}
	mv := &version{num: n, source: source, runID: runID, runLink: runLink, userID: userID,
		description: description, modelID: modelID, status: "READY", created: now, updated: now,
		tags: map[string]string{}}
	for k, v := range tags {
		mv.tags[k] = v
	}
	m.versions[n] = mv
	m.updated = now
	return mv
}

func (s *Server) version(name, v string) *version {
	m := s.models[name]
	if m == nil {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil
	}
	return m.versions[n]
}

// apiErr is MLflow's error answer.
type apiErr struct {
	status int
	code   string
	msg    string
}

func notFound(format string, args ...any) *apiErr {
	return &apiErr{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *apiErr {
	return &apiErr{http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf(format, args...)}
}

func missing(param string) *apiErr {
	return invalid("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", param)
}

func codeFor(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "REQUEST_LIMIT_EXCEEDED"
	case http.StatusInternalServerError:
		return "INTERNAL_ERROR"
	case http.StatusServiceUnavailable:
		return "TEMPORARILY_UNAVAILABLE"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusNotFound:
		return "RESOURCE_DOES_NOT_EXIST"
	}
	if status >= 500 {
		return "INTERNAL_ERROR"
	}
	return "BAD_REQUEST"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *apiErr) {
	writeJSON(w, e.status, map[string]string{"error_code": e.code, "message": e.msg})
}

// ServeHTTP answers the REST API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, apiPrefix) {
		http.NotFound(w, r)
		return
	}
	endpoint := strings.TrimPrefix(r.URL.Path, apiPrefix)
	key := r.Method + " " + endpoint
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[key]++
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.endpoint == "" || f.endpoint == key) {
			f.n--
			writeErr(w, &apiErr{f.status, codeFor(f.status), fmt.Sprintf("injected fault (%d)", f.status)})
			return
		}
	}
	if !s.authorized(r) {
		// MLflow's basic-auth app answers in plain text (assumed for bearer
		// tokens too, which a proxy in front of MLflow checks).
		w.Header().Set("WWW-Authenticate", `Basic realm="mlflow"`)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.")
		return
	}
	h, ok := routes[key]
	if !ok {
		if _, known := endpoints[endpoint]; known {
			w.Header().Set("Allow", strings.Join(endpoints[endpoint], ", "))
			http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		writeErr(w, &apiErr{http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API endpoint at " + r.URL.Path})
		return
	}
	p, perr := params(r)
	if perr != nil {
		writeErr(w, perr)
		return
	}
	out, e := h(s, p)
	if e != nil {
		writeErr(w, e)
		return
	}
	if r.Method != http.MethodGet {
		s.writes++
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.token == "" && s.user == "" {
		return true
	}
	if s.token != "" && r.Header.Get("Authorization") == "Bearer "+s.token {
		return true
	}
	if s.user != "" {
		u, p, ok := r.BasicAuth()
		if ok && u == s.user && p == s.pass {
			return true
		}
	}
	return false
}

// req is a request's parameters: query parameters for GET, the JSON body otherwise.
type req struct {
	str  map[string]string
	list map[string][]string
	raw  map[string]json.RawMessage
}

func (q req) get(k string) string { return q.str[k] }

func params(r *http.Request) (req, *apiErr) {
	q := req{str: map[string]string{}, list: map[string][]string{}, raw: map[string]json.RawMessage{}}
	if r.Method == http.MethodGet {
		for k, vs := range r.URL.Query() {
			q.list[k] = vs
			if len(vs) > 0 {
				q.str[k] = vs[0]
			}
		}
		return q, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return q, &apiErr{http.StatusBadRequest, "BAD_REQUEST", err.Error()}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return q, nil
	}
	if err := json.Unmarshal(body, &q.raw); err != nil {
		return q, &apiErr{http.StatusBadRequest, "MALFORMED_REQUEST", "Malformed JSON request body: " + err.Error()}
	}
	for k, v := range q.raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			q.str[k] = s
			continue
		}
		if string(v) == "null" {
			continue
		}
		// Protobuf JSON parsing refuses a number or object for a string
		// field; fields that are not strings (tags) are read from raw.
		if _, stringField := stringFields[k]; stringField {
			return q, invalid("Invalid value %s for parameter '%s' supplied: expected a string", string(v), k)
		}
	}
	return q, nil
}

var stringFields = map[string]struct{}{
	"name": {}, "version": {}, "alias": {}, "key": {}, "value": {}, "source": {},
	"run_id": {}, "run_link": {}, "description": {}, "model_id": {},
}

type handler func(*Server, req) (any, *apiErr)

var routes = map[string]handler{
	"POST registered-models/create":       (*Server).createModel,
	"GET registered-models/get":           (*Server).getModel,
	"POST model-versions/create":          (*Server).createVersion,
	"GET model-versions/get":              (*Server).getVersion,
	"GET model-versions/search":           (*Server).searchVersions,
	"GET model-versions/get-download-uri": (*Server).downloadURI,
	"POST model-versions/set-tag":         (*Server).setTag,
	"DELETE model-versions/delete-tag":    (*Server).deleteTag,
	"POST registered-models/alias":        (*Server).setAlias,
	"DELETE registered-models/alias":      (*Server).deleteAlias,
	"GET registered-models/alias":         (*Server).getByAlias,
	"GET runs/get":                        (*Server).getRun,
}

// endpoints maps each path to its allowed methods, for 405 answers.
var endpoints = func() map[string][]string {
	m := map[string][]string{}
	for k := range routes {
		method, path, _ := strings.Cut(k, " ")
		m[path] = append(m[path], method)
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}()

func (s *Server) modelOf(name string) (*model, *apiErr) {
	if name == "" {
		return nil, missing("name")
	}
	m := s.models[name]
	if m == nil {
		return nil, notFound("Registered Model with name=%s not found", name)
	}
	return m, nil
}

func (s *Server) versionOf(q req) (*model, *version, *apiErr) {
	name, v := q.get("name"), q.get("version")
	if name == "" {
		return nil, nil, missing("name")
	}
	if v == "" {
		return nil, nil, missing("version")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, nil, invalid("Parameter 'version' must be an integer, got '%s'.", v)
	}
	m := s.models[name]
	if m == nil || m.versions[n] == nil {
		return nil, nil, notFound("Model Version (name=%s, version=%s) not found", name, v)
	}
	return m, m.versions[n], nil
}

func tagList(m map[string]string) []map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]string{"key": k, "value": m[k]})
	}
	return out
}

func readTags(q req) (map[string]string, *apiErr) {
	raw, ok := q.raw["tags"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var tags []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(raw, &tags); err != nil {
		return nil, invalid("Invalid value for parameter 'tags': %v", err)
	}
	out := map[string]string{}
	for _, t := range tags {
		if t.Key == "" {
			return nil, missing("key")
		}
		out[t.Key] = t.Value
	}
	return out, nil
}

func (m *model) aliasesOf(n int) []string {
	var out []string
	for a, v := range m.aliases {
		if v == n {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) versionJSON(mv *version) map[string]any {
	out := map[string]any{
		"name":                   m.name,
		"version":                strconv.Itoa(mv.num),
		"creation_timestamp":     mv.created,
		"last_updated_timestamp": mv.updated,
		"current_stage":          "None",
		"source":                 mv.source,
		"status":                 mv.status,
	}
	put := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	put("user_id", mv.userID)
	put("description", mv.description)
	put("run_id", mv.runID)
	put("run_link", mv.runLink)
	put("status_message", mv.statusMessage)
	put("model_id", mv.modelID)
	if len(mv.tags) > 0 {
		out["tags"] = tagList(mv.tags)
	}
	if a := m.aliasesOf(mv.num); len(a) > 0 {
		out["aliases"] = a
	}
	return out
}

func (m *model) json() map[string]any {
	out := map[string]any{
		"name":                   m.name,
		"creation_timestamp":     m.created,
		"last_updated_timestamp": m.updated,
	}
	if m.description != "" {
		out["description"] = m.description
	}
	if len(m.tags) > 0 {
		out["tags"] = tagList(m.tags)
	}
	if len(m.aliases) > 0 {
		names := make([]string, 0, len(m.aliases))
		for a := range m.aliases {
			names = append(names, a)
		}
		sort.Strings(names)
		var list []map[string]string
		for _, a := range names {
			list = append(list, map[string]string{"alias": a, "version": strconv.Itoa(m.aliases[a])})
		}
		out["aliases"] = list
	}
	latest := 0
	for n := range m.versions {
		latest = max(latest, n)
	}
	if latest > 0 {
		out["latest_versions"] = []any{m.versionJSON(m.versions[latest])}
	}
	return out
}

func (s *Server) createModel(q req) (any, *apiErr) {
	name := q.get("name")
	if name == "" {
		return nil, missing("name")
	}
	if s.models[name] != nil {
		return nil, &apiErr{http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", fmt.Sprintf("Registered Model (name=%s) already exists.", name)}
	}
	tags, e := readTags(q)
	if e != nil {
		return nil, e
	}
	m := s.newModel(name, q.get("description"), tags)
	return map[string]any{"registered_model": m.json()}, nil
}

func (s *Server) getModel(q req) (any, *apiErr) {
	m, e := s.modelOf(q.get("name"))
	if e != nil {
		return nil, e
	}
	return map[string]any{"registered_model": m.json()}, nil
}

func (s *Server) createVersion(q req) (any, *apiErr) {
	m, e := s.modelOf(q.get("name"))
	if e != nil {
		return nil, e
	}
	if q.get("source") == "" {
		return nil, missing("source")
	}
	tags, e := readTags(q)
	if e != nil {
		return nil, e
	}
	mv := s.newVersion(m, q.get("source"), q.get("run_id"), q.get("run_link"), q.get("description"), q.get("model_id"), "", tags)
	return map[string]any{"model_version": m.versionJSON(mv)}, nil
}

func (s *Server) getVersion(q req) (any, *apiErr) {
	m, mv, e := s.versionOf(q)
	if e != nil {
		return nil, e
	}
	return map[string]any{"model_version": m.versionJSON(mv)}, nil
}

func (s *Server) downloadURI(q req) (any, *apiErr) {
	_, mv, e := s.versionOf(q)
	if e != nil {
		return nil, e
	}
	uri := mv.source
	switch {
	case mv.downloadURI != "":
		uri = mv.downloadURI
	case strings.HasPrefix(mv.source, "runs:/"):
		id, path, _ := strings.Cut(strings.TrimPrefix(mv.source, "runs:/"), "/")
		r := s.runs[id]
		if r == nil {
			return nil, notFound("Run with id=%s not found", id)
		}
		uri = strings.TrimSuffix(r.artifactURI, "/") + "/" + path
	}
	return map[string]any{"artifact_uri": uri}, nil
}

// A filter clause: attribute = 'value'. The stand-in understands name,
// run_id and source joined by AND, which is what this package sends.
var clauseRe = regexp.MustCompile(`^\s*(name|run_id|source)\s*=\s*(?:'([^']*)'|"([^"]*)")\s*$`)
var andRe = regexp.MustCompile(`(?i)\s+and\s+`)

func (s *Server) searchVersions(q req) (any, *apiErr) {
	conds := map[string]string{}
	if f := strings.TrimSpace(q.get("filter")); f != "" {
		for _, c := range andRe.Split(f, -1) {
			m := clauseRe.FindStringSubmatch(c)
			if m == nil {
				return nil, invalid("Invalid filter '%s': the stand-in understands name, run_id and source compared with = to a quoted string, joined by AND", f)
			}
			conds[m[1]] = m[2] + m[3]
		}
	}
	limit := DefaultMaxResults
	if v := q.get("max_results"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 200000 {
			return nil, invalid("Invalid value for max_results. It must be a positive integer not greater than 200000, but got %s", v)
		}
		limit = n
	}
	if s.pageSize > 0 && s.pageSize < limit {
		limit = s.pageSize
	}
	offset := 0
	if tok := q.get("page_token"); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		var t struct {
			Offset *int `json:"offset"`
		}
		if err != nil || json.Unmarshal(b, &t) != nil || t.Offset == nil || *t.Offset < 0 {
			return nil, invalid("Invalid page token, could not base64-decode or parse it")
		}
		offset = *t.Offset
	}
	type hit struct {
		m  *model
		mv *version
	}
	var hits []hit
	for _, m := range s.models {
		if v, ok := conds["name"]; ok && m.name != v {
			continue
		}
		for _, mv := range m.versions {
			if v, ok := conds["run_id"]; ok && mv.runID != v {
				continue
			}
			if v, ok := conds["source"]; ok && mv.source != v {
				continue
			}
			hits = append(hits, hit{m, mv})
		}
	}
	// Assumed default order: name ascending, newest version first.
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].m.name != hits[j].m.name {
			return hits[i].m.name < hits[j].m.name
		}
		return hits[i].mv.num > hits[j].mv.num
	})
	out := map[string]any{}
	page := []any{}
	for i := offset; i < len(hits) && i < offset+limit; i++ {
		page = append(page, hits[i].m.versionJSON(hits[i].mv))
	}
	out["model_versions"] = page
	if offset+limit < len(hits) {
		b, _ := json.Marshal(map[string]int{"offset": offset + limit})
		out["next_page_token"] = base64.StdEncoding.EncodeToString(b)
	}
	return out, nil
}

var tagKeyRe = regexp.MustCompile(`^[\w./ -]{1,250}$`)

func (s *Server) setTag(q req) (any, *apiErr) {
	m, mv, e := s.versionOf(q)
	if e != nil {
		return nil, e
	}
	key := q.get("key")
	if key == "" {
		return nil, missing("key")
	}
	if !tagKeyRe.MatchString(key) {
		return nil, invalid("Invalid tag name: '%s'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).", key)
	}
	mv.tags[key] = q.get("value")
	mv.updated = s.now()
	m.updated = mv.updated
	return map[string]any{}, nil
}

func (s *Server) deleteTag(q req) (any, *apiErr) {
	_, mv, e := s.versionOf(q)
	if e != nil {
		return nil, e
	}
	if q.get("key") == "" {
		return nil, missing("key")
	}
	// Assumed (SQL store): deleting a tag that is not set succeeds.
	delete(mv.tags, q.get("key"))
	return map[string]any{}, nil
}

var reservedAliasRe = regexp.MustCompile(`(?i)^(latest|v[0-9]+)$`)

func (s *Server) setAlias(q req) (any, *apiErr) {
	alias := q.get("alias")
	if q.get("name") == "" {
		return nil, missing("name")
	}
	if alias == "" {
		return nil, missing("alias")
	}
	if reservedAliasRe.MatchString(alias) {
		return nil, invalid("'%s' is a reserved alias name; 'latest' and 'v<number>' cannot be used", alias)
	}
	m, mv, e := s.versionOf(q)
	if e != nil {
		return nil, e
	}
	m.aliases[alias] = mv.num // an alias points at one version: setting it moves it
	m.updated = s.now()
	return map[string]any{}, nil
}

func (s *Server) deleteAlias(q req) (any, *apiErr) {
	m, e := s.modelOf(q.get("name"))
	if e != nil {
		return nil, e
	}
	if q.get("alias") == "" {
		return nil, missing("alias")
	}
	// Assumed (SQL store): deleting an alias that is not set succeeds.
	delete(m.aliases, q.get("alias"))
	return map[string]any{}, nil
}

func (s *Server) getByAlias(q req) (any, *apiErr) {
	m, e := s.modelOf(q.get("name"))
	if e != nil {
		return nil, e
	}
	alias := q.get("alias")
	if alias == "" {
		return nil, missing("alias")
	}
	n, ok := m.aliases[alias]
	if !ok {
		return nil, invalid("Registered model alias %s not found.", alias)
	}
	return map[string]any{"model_version": m.versionJSON(m.versions[n])}, nil
}

func (s *Server) getRun(q req) (any, *apiErr) {
	id := q.get("run_id")
	if id == "" {
		id = q.get("run_uuid")
	}
	if id == "" {
		return nil, missing("run_id")
	}
	r := s.runs[id]
	if r == nil {
		return nil, notFound("Run with id=%s not found", id)
	}
	stage := "active"
	if r.deleted {
		stage = "deleted"
	}
	keys := make([]string, 0, len(r.metrics))
	for k := range r.metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	metrics := []map[string]any{}
	for _, k := range keys {
		metrics = append(metrics, map[string]any{"key": k, "value": metricValue(r.metrics[k]), "timestamp": r.created, "step": 0})
	}
	info := map[string]any{
		"run_id": r.id, "run_uuid": r.id, "experiment_id": r.experimentID, "user_id": r.userID,
		"status": "FINISHED", "start_time": r.created, "end_time": r.created,
		"artifact_uri": r.artifactURI, "lifecycle_stage": stage,
	}
	return map[string]any{"run": map[string]any{"info": info, "data": map[string]any{"metrics": metrics}}}, nil
}

// metricValue encodes non-finite values as MLflow's JSON does.
func metricValue(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return v
}
