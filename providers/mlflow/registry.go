package mlflow

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Model version statuses.
const (
	StatusReady               = "READY"
	StatusPendingRegistration = "PENDING_REGISTRATION"
	StatusFailedRegistration  = "FAILED_REGISTRATION"
)

// Tag is a key/value pair as MLflow sends it.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ModelVersion is MLflow's ModelVersion entity.
type ModelVersion struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    int64    `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64    `json:"last_updated_timestamp,omitempty"`
	UserID               string   `json:"user_id,omitempty"`
	CurrentStage         string   `json:"current_stage,omitempty"`
	Description          string   `json:"description,omitempty"`
	Source               string   `json:"source,omitempty"`
	RunID                string   `json:"run_id,omitempty"`
	Status               string   `json:"status,omitempty"`
	StatusMessage        string   `json:"status_message,omitempty"`
	Tags                 []Tag    `json:"tags,omitempty"`
	RunLink              string   `json:"run_link,omitempty"`
	Aliases              []string `json:"aliases,omitempty"`
	ModelID              string   `json:"model_id,omitempty"`
}

// Tag returns the value of tag key and whether it is set.
func (v ModelVersion) Tag(key string) (string, bool) {
	for _, t := range v.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Alias is one alias of a registered model.
type Alias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// RegisteredModel is MLflow's RegisteredModel entity.
type RegisteredModel struct {
	Name                 string         `json:"name"`
	CreationTimestamp    int64          `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64          `json:"last_updated_timestamp,omitempty"`
	UserID               string         `json:"user_id,omitempty"`
	Description          string         `json:"description,omitempty"`
	LatestVersions       []ModelVersion `json:"latest_versions,omitempty"`
	Tags                 []Tag          `json:"tags,omitempty"`
	Aliases              []Alias        `json:"aliases,omitempty"`
}

// Metric is a run's metric value (runs/get returns the latest per key).
type Metric struct {
	Key       string `json:"key"`
	Value     Float  `json:"value"`
	Timestamp int64  `json:"timestamp,omitempty"`
	Step      int64  `json:"step,omitempty"`
}

// Float is a float64 that also reads the strings "NaN", "Infinity" and
// "-Infinity", which is how MLflow's JSON carries non-finite metric values.
type Float float64

func (f *Float) UnmarshalJSON(b []byte) error {
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		*f = Float(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "nan":
		*f = Float(math.NaN())
	case "infinity", "inf", "+infinity":
		*f = Float(math.Inf(1))
	case "-infinity", "-inf":
		*f = Float(math.Inf(-1))
	default:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*f = Float(n)
	}
	return nil
}

// RunInfo is the metadata of a run.
type RunInfo struct {
	RunID          string `json:"run_id"`
	RunName        string `json:"run_name,omitempty"`
	ExperimentID   string `json:"experiment_id,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Status         string `json:"status,omitempty"`
	StartTime      int64  `json:"start_time,omitempty"`
	EndTime        int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
}

// RunData holds a run's latest metrics, params and tags.
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Tag    `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// Run is MLflow's Run entity.
type Run struct {
	Info RunInfo `json:"info"`
	Data RunData `json:"data"`
}

// LatestMetrics returns the finite metric values of the run by key; where a
// key appears more than once the highest step (then timestamp) wins.
// Non-finite values (NaN, ±Inf) are left out: they cannot gate anything and
// JSON cannot carry them.
func (r Run) LatestMetrics() map[string]float64 {
	type seen struct{ step, ts int64 }
	out := map[string]float64{}
	at := map[string]seen{}
	for _, m := range r.Data.Metrics {
		v := float64(m.Value)
		if m.Key == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if s, ok := at[m.Key]; ok && (m.Step < s.step || (m.Step == s.step && m.Timestamp < s.ts)) {
			continue
		}
		at[m.Key] = seen{m.Step, m.Timestamp}
		out[m.Key] = v
	}
	return out
}

// CreateRegisteredModel creates a registered model (RESOURCE_ALREADY_EXISTS
// when the name is taken).
func (c *Client) CreateRegisteredModel(ctx context.Context, name string, tags []Tag, description string) (RegisteredModel, error) {
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	in := map[string]any{"name": name, "tags": tags, "description": description}
	err := c.call(ctx, http.MethodPost, "registered-models/create", nil, in, &out)
	return out.RegisteredModel, err
}

// GetRegisteredModel returns a registered model with its tags and aliases.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (RegisteredModel, error) {
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	err := c.call(ctx, http.MethodGet, "registered-models/get", url.Values{"name": {name}}, nil, &out)
	return out.RegisteredModel, err
}

// CreateModelVersion registers source as a new version of model name.
type CreateModelVersion struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
	RunLink     string `json:"run_link,omitempty"`
	Description string `json:"description,omitempty"`
	ModelID     string `json:"model_id,omitempty"`
}

// CreateModelVersion registers a new version.
func (c *Client) CreateModelVersion(ctx context.Context, in CreateModelVersion) (ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := c.call(ctx, http.MethodPost, "model-versions/create", nil, in, &out)
	return out.ModelVersion, err
}

// GetModelVersion returns one version of a registered model.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := c.call(ctx, http.MethodGet, "model-versions/get", url.Values{"name": {name}, "version": {version}}, nil, &out)
	return out.ModelVersion, err
}

// GetModelVersionByAlias returns the version an alias points at. A missing
// alias is INVALID_PARAMETER_VALUE in MLflow; IsNotFound reports it.
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := c.call(ctx, http.MethodGet, "registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, nil, &out)
	if e, ok := err.(*APIError); ok && e.Code == "INVALID_PARAMETER_VALUE" &&
		strings.Contains(strings.ToLower(e.Message), "not found") {
		e.aliasMissing = true
	}
	return out.ModelVersion, err
}

// GetModelVersionDownloadURI returns where the version's files are stored
// (a runs:/ or models:/ source resolved to its artifact location).
func (c *Client) GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error) {
	var out struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	err := c.call(ctx, http.MethodGet, "model-versions/get-download-uri", url.Values{"name": {name}, "version": {version}}, nil, &out)
	return out.ArtifactURI, err
}

// SearchModelVersions returns every version matching filter (MLflow's
// search syntax, e.g. name='fraud'), following next_page_token.
func (c *Client) SearchModelVersions(ctx context.Context, filter string) ([]ModelVersion, error) {
	var all []ModelVersion
	token := ""
	for pages := 0; ; pages++ {
		q := url.Values{}
		if filter != "" {
			q.Set("filter", filter)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var out struct {
			ModelVersions []ModelVersion `json:"model_versions"`
			NextPageToken string         `json:"next_page_token"`
		}
		if err := c.call(ctx, http.MethodGet, "model-versions/search", q, nil, &out); err != nil {
			return nil, err
		}
		all = append(all, out.ModelVersions...)
		if out.NextPageToken == "" || out.NextPageToken == token {
			return all, nil
		}
		if pages > 10000 {
			// A server handing out tokens forever: stop rather than spin.
			return nil, &APIError{Status: http.StatusBadGateway, Op: "GET model-versions/search", Message: "pagination did not end after 10000 pages"}
		}
		token = out.NextPageToken
	}
}

// GetRun returns a run with its latest metric values.
func (c *Client) GetRun(ctx context.Context, runID string) (Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	err := c.call(ctx, http.MethodGet, "runs/get", url.Values{"run_id": {runID}}, nil, &out)
	if err == nil && out.Run.Info.RunID == "" {
		out.Run.Info.RunID = runID
	}
	return out.Run, err
}

// SetModelVersionTag sets (creates or overwrites) a tag on a version.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	in := map[string]string{"name": name, "version": version, "key": key, "value": value}
	return c.call(ctx, http.MethodPost, "model-versions/set-tag", nil, in, nil)
}

// DeleteModelVersionTag removes a tag from a version.
func (c *Client) DeleteModelVersionTag(ctx context.Context, name, version, key string) error {
	in := map[string]string{"name": name, "version": version, "key": key}
	return c.call(ctx, http.MethodDelete, "model-versions/delete-tag", nil, in, nil)
}

// SetRegisteredModelAlias points alias at version, moving it if it pointed elsewhere.
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	in := map[string]string{"name": name, "alias": alias, "version": version}
	return c.call(ctx, http.MethodPost, "registered-models/alias", nil, in, nil)
}

// DeleteRegisteredModelAlias removes an alias.
func (c *Client) DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error {
	in := map[string]string{"name": name, "alias": alias}
	return c.call(ctx, http.MethodDelete, "registered-models/alias", nil, in, nil)
}
