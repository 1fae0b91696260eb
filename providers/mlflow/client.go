// Package mlflow connects modelplane to an MLflow Model Registry: a small
// REST client for MLflow's documented API (/api/2.0/mlflow/...), Import of a
// registered model version with its lineage and run metrics, a Mirror that
// writes modelplane's lifecycle stages back as aliases and tags, and
// verification of MLflow webhook deliveries. See README.md.
package mlflow

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// Environment variables read by FromEnv (MLflow's own client conventions).
const (
	EnvTrackingURI    = "MLFLOW_TRACKING_URI"
	EnvToken          = "MLFLOW_TRACKING_TOKEN"
	EnvUsername       = "MLFLOW_TRACKING_USERNAME"
	EnvPassword       = "MLFLOW_TRACKING_PASSWORD"
	EnvInsecureTLS    = "MLFLOW_TRACKING_INSECURE_TLS"
	EnvRequestTimeout = "MLFLOW_HTTP_REQUEST_TIMEOUT"
)

// DefaultTimeout bounds one HTTP request when Options.Timeout is zero
// (MLflow's own client default is 120s; activities have their own deadline).
const DefaultTimeout = 60 * time.Second

// Options say how to reach an MLflow tracking server.
type Options struct {
	// TrackingURI is the server's base URL, e.g. https://mlflow.example.com
	// or http://mlflow:5000/some/prefix. Credentials embedded in it
	// (https://user:pass@host) are used as Basic credentials and removed
	// from every URL the client builds.
	TrackingURI string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// Username and Password are sent as Basic credentials; when both are set
	// they win over Token (as in MLflow's client).
	Username, Password string
	// InsecureTLS skips certificate verification. Only honoured when
	// HTTPClient is nil.
	InsecureTLS bool
	// Timeout bounds each request when HTTPClient is nil; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient replaces the default client (tests, proxies, custom CAs).
	HTTPClient *http.Client
}

// FromEnv reads MLflow's standard environment variables. getenv is usually
// os.Getenv. MLFLOW_TRACKING_URI is required and must be an http(s) URL: the
// local file store and "databricks" URIs have no REST API this client speaks.
func FromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		TrackingURI: strings.TrimSpace(getenv(EnvTrackingURI)),
		Token:       getenv(EnvToken),
		Username:    getenv(EnvUsername),
		Password:    getenv(EnvPassword),
	}
	if o.TrackingURI == "" {
		return o, invalidField(EnvTrackingURI, "is required (the MLflow tracking server URL, e.g. http://mlflow:5000)")
	}
	if (o.Username == "") != (o.Password == "") {
		missing := EnvPassword
		if o.Username == "" {
			missing = EnvUsername
		}
		return o, invalidField(missing, "is required when %s is set", other(missing))
	}
	if v := strings.TrimSpace(getenv(EnvInsecureTLS)); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return o, invalidField(EnvInsecureTLS, "must be true or false, not %q", v)
		}
		o.InsecureTLS = b
	}
	if v := strings.TrimSpace(getenv(EnvRequestTimeout)); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 {
			return o, invalidField(EnvRequestTimeout, "must be a positive number of seconds, not %q", v)
		}
		o.Timeout = time.Duration(secs * float64(time.Second))
	}
	if _, err := baseURL(o.TrackingURI); err != nil {
		return o, err
	}
	return o, nil
}

func other(v string) string {
	if v == EnvUsername {
		return EnvPassword
	}
	return EnvUsername
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

// Client speaks MLflow's REST API. It is safe for concurrent use.
type Client struct {
	base   *url.URL // without credentials
	auth   string   // Authorization header value, never logged
	http   *http.Client
	webURL string // base URL for run links
}

// New checks o and returns a client. It does not contact the server.
func New(o Options) (*Client, error) {
	u, err := baseURL(o.TrackingURI)
	if err != nil {
		return nil, err
	}
	user, pass := o.Username, o.Password
	if u.User != nil {
		if user == "" && pass == "" {
			user = u.User.Username()
			pass, _ = u.User.Password()
		}
		u.User = nil
	}
	c := &Client{base: u, webURL: strings.TrimSuffix(u.String(), "/")}
	switch {
	case user != "" && pass != "":
		c.auth = "Basic " + basicAuth(user, pass)
	case o.Token != "":
		c.auth = "Bearer " + o.Token
	}
	c.http = o.HTTPClient
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if o.InsecureTLS {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by MLFLOW_TRACKING_INSECURE_TLS
		}
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		c.http = &http.Client{Transport: t, Timeout: timeout}
	}
	return c, nil
}

func baseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, invalidField("tracking_uri", "is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		// Never echo raw: it may carry credentials.
		return nil, invalidField("tracking_uri", "must be an http:// or https:// URL of an MLflow tracking server")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func basicAuth(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TrackingURI is the server's base URL without credentials.
func (c *Client) TrackingURI() string { return c.webURL }

// APIError is a refusal from the MLflow server: the HTTP status and, when
// the body is MLflow's {"error_code","message"}, its code and message
// (otherwise Message is the start of the body). 400, 401, 403, 404 and the
// other 4xx except 408 and 429 wrap modelplane.ErrInvalid; 408, 429 and 5xx
// are retryable.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Op is the call that failed, e.g. "GET model-versions/get".
	Op string

	aliasMissing bool
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("mlflow: %s: HTTP %d %s: %q", e.Op, e.Status, code, e.Message)
}

// Unwrap makes permanent refusals match modelplane.ErrInvalid.
func (e *APIError) Unwrap() error {
	if Permanent(e.Status) {
		return modelplane.ErrInvalid
	}
	return nil
}

// Permanent reports whether an HTTP status is a refusal a retry cannot change.
func Permanent(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return false
	case status >= 400 && status < 500:
		return true
	}
	return false
}

// IsNotFound reports whether err says the model, version, run or alias does
// not exist: RESOURCE_DOES_NOT_EXIST, or the INVALID_PARAMETER_VALUE MLflow
// answers for a missing alias.
func IsNotFound(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	return e.Code == "RESOURCE_DOES_NOT_EXIST" || e.aliasMissing ||
		(e.Code == "" && e.Status == http.StatusNotFound)
}

// ErrorCode returns MLflow's error_code in err, or "".
func ErrorCode(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func invalidField(field, format string, args ...any) error {
	return errors.Join(modelplane.FieldError(field, format, args...), modelplane.ErrInvalid)
}

// call sends one request to /api/2.0/mlflow/<endpoint>. GET sends params
// as query parameters; other methods send in as a JSON body. The answer is
// decoded into out when out is not nil.
func (c *Client) call(ctx context.Context, method, endpoint string, params url.Values, in, out any) error {
	op := method + " " + endpoint
	u := *c.base
	u.Path = c.base.Path + "/api/2.0/mlflow/" + endpoint
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = params.Encode()
	} else {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("mlflow: %s: encoding the request: %v: %w", op, err, modelplane.ErrInvalid)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("mlflow: %s: %v: %w", op, err, modelplane.ErrInvalid)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("mlflow: %s: reading the answer: %v", op, cause(err))
	}
	if resp.StatusCode/100 != 2 {
		return apiError(op, resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		// A proxy's HTML page with status 200, or a server that is not MLflow.
		return fmt.Errorf("mlflow: %s: the answer is not MLflow JSON (%v): %q", op, err, snippet(data))
	}
	return nil
}

// transportError keeps connection failures retryable and never includes the
// URL (url.Error would print it; ours has no credentials, but a proxy's might).
func transportError(op string, err error) error {
	return fmt.Errorf("mlflow: %s: %v", op, cause(err))
}

func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

func apiError(op string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Op: op}
	var m struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && (m.ErrorCode != "" || m.Message != "") {
		e.Code, e.Message = m.ErrorCode, m.Message
	} else {
		e.Message = snippet(body)
	}
	return e
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
