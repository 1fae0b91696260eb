// Package prometheus answers analysis checks with instant queries against
// Prometheus's HTTP API (/api/v1/query).
package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// Client queries one Prometheus server.
type Client struct {
	URL                string
	BearerToken        string
	Username, Password string
	Timeout            time.Duration
	HTTP               *http.Client
}

// FromConfig builds a client, reading secrets from the environment variables the config names.
func FromConfig(c modelplane.PrometheusConfig, getenv func(string) string) (*Client, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cl := &Client{URL: strings.TrimRight(c.URL, "/"), Username: c.Username, Timeout: c.Timeout.D()}
	if c.BearerTokenEnv != "" {
		if cl.BearerToken = getenv(c.BearerTokenEnv); cl.BearerToken == "" {
			return nil, fmt.Errorf("prometheus: bearer token env %s is empty", c.BearerTokenEnv)
		}
	}
	if c.PasswordEnv != "" {
		cl.Password = getenv(c.PasswordEnv)
	}
	return cl, nil
}

// QueryError is Prometheus refusing a query (bad_data, timeout, …): the message says why.
type QueryError struct {
	Status    int
	ErrorType string
	Message   string
	Query     string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("prometheus %s (HTTP %d) for %q: %s", e.ErrorType, e.Status, e.Query, e.Message)
}

// BadQuery reports whether retrying cannot help.
func (e *QueryError) BadQuery() bool { return e.ErrorType == "bad_data" }

type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Query runs an instant query and returns its single value. A query that
// selects nothing is empty (inconclusive to the analysis, never a pass); one
// that selects several series is an error, because a check must judge one number.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (value float64, empty bool, err error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	form := url.Values{"query": {query}}
	if !at.IsZero() {
		form.Set("time", strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch {
	case c.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.BearerToken)
	case c.Username != "":
		req.SetBasicAuth(c.Username, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("prometheus at %s: %w", c.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, false, fmt.Errorf("prometheus at %s answered HTTP %d: %.200s", c.URL, res.StatusCode, body)
	}
	if r.Status != "success" {
		return 0, false, &QueryError{Status: res.StatusCode, ErrorType: r.ErrorType, Message: r.Error, Query: query}
	}
	switch r.Data.ResultType {
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(r.Data.Result, &s); err != nil {
			return 0, false, err
		}
		return parseSample(s[1])
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return 0, false, err
		}
		switch len(v) {
		case 0:
			return 0, true, nil
		case 1:
			return parseSample(v[0].Value[1])
		}
		return 0, false, fmt.Errorf("query %q returned %d series; a check needs one value (aggregate with sum/avg/max)", query, len(v))
	}
	return 0, false, fmt.Errorf("query %q returned a %s; a check needs a scalar or a one-element vector", query, r.Data.ResultType)
}

func parseSample(v any) (float64, bool, error) {
	s, ok := v.(string)
	if !ok {
		return 0, false, fmt.Errorf("unexpected sample %v", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, err
	}
	// NaN (e.g. 0/0 on a idle version) carries no information.
	if f != f {
		return 0, true, nil
	}
	return f, false, nil
}
