package mlflow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
)

func newClient(t *testing.T, s *mlflowtest.Server, o mlflow.Options) *mlflow.Client {
	t.Helper()
	o.TrackingURI = s.URL
	c, err := mlflow.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})

	rm, err := c.CreateRegisteredModel(ctx, "fraud", []mlflow.Tag{{Key: "team", Value: "risk"}}, "fraud scorer")
	if err != nil || rm.Name != "fraud" {
		t.Fatalf("create model: %+v, %v", rm, err)
	}
	mv, err := c.CreateModelVersion(ctx, mlflow.CreateModelVersion{Name: "fraud", Source: "s3://b/fraud/1", RunID: "r1",
		Tags: []mlflow.Tag{{Key: "k", Value: "v"}}})
	if err != nil || mv.Version != "1" || mv.Status != mlflow.StatusReady {
		t.Fatalf("create version: %+v, %v", mv, err)
	}
	got, err := c.GetModelVersion(ctx, "fraud", "1")
	if err != nil || got.Source != "s3://b/fraud/1" || got.RunID != "r1" {
		t.Fatalf("get version: %+v, %v", got, err)
	}
	if v, ok := got.Tag("k"); !ok || v != "v" {
		t.Fatalf("tag k = %q %v", v, ok)
	}

	if err := c.SetModelVersionTag(ctx, "fraud", "1", "modelplane.stage", "approved"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRegisteredModelAlias(ctx, "fraud", "champion", "1"); err != nil {
		t.Fatal(err)
	}
	byAlias, err := c.GetModelVersionByAlias(ctx, "fraud", "champion")
	if err != nil || byAlias.Version != "1" || len(byAlias.Aliases) != 1 || byAlias.Aliases[0] != "champion" {
		t.Fatalf("by alias: %+v, %v", byAlias, err)
	}
	if v, _ := byAlias.Tag("modelplane.stage"); v != "approved" {
		t.Fatalf("stage tag %q", v)
	}
	rm, err = c.GetRegisteredModel(ctx, "fraud")
	if err != nil || len(rm.Aliases) != 1 || rm.Aliases[0] != (mlflow.Alias{Alias: "champion", Version: "1"}) {
		t.Fatalf("get model: %+v, %v", rm, err)
	}

	if err := c.DeleteModelVersionTag(ctx, "fraud", "1", "modelplane.stage"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Tags("fraud", "1")["modelplane.stage"]; ok {
		t.Fatal("tag still set after delete")
	}
	if err := c.DeleteRegisteredModelAlias(ctx, "fraud", "champion"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetModelVersionByAlias(ctx, "fraud", "champion"); !mlflow.IsNotFound(err) {
		t.Fatalf("deleted alias: %v, want not found", err)
	}

	runID := s.CreateRun(mlflowtest.Run{ExperimentID: "7", Metrics: map[string]float64{"auc": 0.93}})
	run, err := c.GetRun(ctx, runID)
	if err != nil || run.Info.ExperimentID != "7" || run.LatestMetrics()["auc"] != 0.93 {
		t.Fatalf("run: %+v, %v", run, err)
	}
	if s.Calls("POST registered-models/alias") != 1 || s.Calls("DELETE registered-models/alias") != 1 {
		t.Fatalf("alias calls: set %d delete %d", s.Calls("POST registered-models/alias"), s.Calls("DELETE registered-models/alias"))
	}
}

func TestAliasMoves(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	s.CreateVersion("m", mlflowtest.Version{})
	s.CreateVersion("m", mlflowtest.Version{})
	for _, v := range []string{"1", "2"} {
		if err := c.SetRegisteredModelAlias(ctx, "m", "champion", v); err != nil {
			t.Fatal(err)
		}
	}
	v1, _ := c.GetModelVersion(ctx, "m", "1")
	v2, _ := c.GetModelVersion(ctx, "m", "2")
	if len(v1.Aliases) != 0 || len(v2.Aliases) != 1 {
		t.Fatalf("aliases v1 %v v2 %v: the alias must move", v1.Aliases, v2.Aliases)
	}
	err := c.SetRegisteredModelAlias(ctx, "m", "latest", "1")
	if mlflow.ErrorCode(err) != "INVALID_PARAMETER_VALUE" || !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("reserved alias: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		status    int
		code      string
		permanent bool
		notFound  bool
		setup     func(s *mlflowtest.Server)
		call      func(c *mlflow.Client) error
	}{
		{name: "missing version", status: 404, code: "RESOURCE_DOES_NOT_EXIST", permanent: true, notFound: true,
			call: func(c *mlflow.Client) error { _, err := c.GetModelVersion(ctx, "m", "9"); return err }},
		{name: "missing model", status: 404, code: "RESOURCE_DOES_NOT_EXIST", permanent: true, notFound: true,
			call: func(c *mlflow.Client) error { _, err := c.GetRegisteredModel(ctx, "nope"); return err }},
		{name: "missing alias", status: 400, code: "INVALID_PARAMETER_VALUE", permanent: true, notFound: true,
			call: func(c *mlflow.Client) error { _, err := c.GetModelVersionByAlias(ctx, "m", "champion"); return err }},
		{name: "already exists", status: 400, code: "RESOURCE_ALREADY_EXISTS", permanent: true,
			call: func(c *mlflow.Client) error { _, err := c.CreateRegisteredModel(ctx, "m", nil, ""); return err }},
		{name: "bad version", status: 400, code: "INVALID_PARAMETER_VALUE", permanent: true,
			call: func(c *mlflow.Client) error { _, err := c.GetModelVersion(ctx, "m", "one"); return err }},
		{name: "bad request", status: 400, code: "BAD_REQUEST", permanent: true,
			setup: func(s *mlflowtest.Server) { s.Fail("", 400, 1) },
			call:  func(c *mlflow.Client) error { _, err := c.GetModelVersion(ctx, "m", "1"); return err }},
		{name: "permission denied", status: 403, code: "PERMISSION_DENIED", permanent: true,
			setup: func(s *mlflowtest.Server) { s.Fail("POST model-versions/set-tag", 403, 1) },
			call:  func(c *mlflow.Client) error { return c.SetModelVersionTag(ctx, "m", "1", "k", "v") }},
		{name: "unauthenticated", status: 401, code: "", permanent: true,
			setup: func(s *mlflowtest.Server) { s.RequireToken("right") },
			call:  func(c *mlflow.Client) error { _, err := c.GetModelVersion(ctx, "m", "1"); return err }},
		{name: "rate limited", status: 429, code: "REQUEST_LIMIT_EXCEEDED",
			setup: func(s *mlflowtest.Server) { s.Fail("", 429, 1) },
			call:  func(c *mlflow.Client) error { _, err := c.GetModelVersion(ctx, "m", "1"); return err }},
		{name: "internal error", status: 500, code: "INTERNAL_ERROR",
			setup: func(s *mlflowtest.Server) { s.Fail("", 500, 1) },
			call:  func(c *mlflow.Client) error { return c.SetRegisteredModelAlias(ctx, "m", "a", "1") }},
		{name: "unavailable", status: 503, code: "TEMPORARILY_UNAVAILABLE",
			setup: func(s *mlflowtest.Server) { s.Fail("", 503, 1) },
			call:  func(c *mlflow.Client) error { _, err := c.GetRun(ctx, "r"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mlflowtest.NewServer(t)
			s.CreateVersion("m", mlflowtest.Version{})
			if tc.setup != nil {
				tc.setup(s)
			}
			c := newClient(t, s, mlflow.Options{Token: "wrong-secret-token"})
			err := tc.call(c)
			var ae *mlflow.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("status %d code %q, want %d %q (%v)", ae.Status, ae.Code, tc.status, tc.code, err)
			}
			if ae.Message == "" {
				t.Fatalf("no message quoted: %v", err)
			}
			if got := errors.Is(err, modelplane.ErrInvalid); got != tc.permanent {
				t.Fatalf("errors.Is(ErrInvalid) = %v, want %v: %v", got, tc.permanent, err)
			}
			if got := mlflow.IsNotFound(err); got != tc.notFound {
				t.Fatalf("IsNotFound = %v, want %v: %v", got, tc.notFound, err)
			}
			if strings.Contains(err.Error(), "wrong-secret-token") {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := mlflow.New(mlflow.Options{TrackingURI: "http://alice:hunter2@" + addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetModelVersion(context.Background(), "m", "1")
	if err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "alice") {
		t.Fatalf("error leaks credentials: %v", err)
	}
	if c.TrackingURI() != "http://"+addr {
		t.Fatalf("TrackingURI() = %q, want credentials removed", c.TrackingURI())
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	srv := http.Server{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>upstream gone</html>")
	})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, _ := mlflow.New(mlflow.Options{TrackingURI: "http://" + l.Addr().String()})
	_, err = c.GetRegisteredModel(context.Background(), "m")
	var ae *mlflow.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "upstream gone") || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestSearchFollowsPages(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	for range 7 {
		s.CreateVersion("fraud", mlflowtest.Version{})
	}
	s.CreateVersion("other", mlflowtest.Version{})
	s.SetPageSize(3)
	got, err := c.SearchModelVersions(ctx, "name='fraud'")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("got %d versions, want 7", len(got))
	}
	seen := map[string]bool{}
	for _, v := range got {
		if v.Name != "fraud" || seen[v.Version] {
			t.Fatalf("unexpected or duplicate %s/%s", v.Name, v.Version)
		}
		seen[v.Version] = true
	}
	if n := s.Calls("GET model-versions/search"); n != 3 {
		t.Fatalf("search calls = %d, want 3 pages", n)
	}
	all, err := c.SearchModelVersions(ctx, "")
	if err != nil || len(all) != 8 {
		t.Fatalf("unfiltered: %d, %v", len(all), err)
	}
	if _, err := c.SearchModelVersions(ctx, "tags.x = 'y'"); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("bad filter: %v", err)
	}
}

func TestAuth(t *testing.T) {
	ctx := context.Background()
	t.Run("bearer", func(t *testing.T) {
		s := mlflowtest.NewServer(t)
		s.CreateVersion("m", mlflowtest.Version{})
		s.RequireToken("tok")
		if _, err := newClient(t, s, mlflow.Options{Token: "tok"}).GetModelVersion(ctx, "m", "1"); err != nil {
			t.Fatal(err)
		}
		_, err := newClient(t, s, mlflow.Options{}).GetModelVersion(ctx, "m", "1")
		var ae *mlflow.APIError
		if !errors.As(err, &ae) || ae.Status != 401 {
			t.Fatalf("no token: %v", err)
		}
	})
	t.Run("basic", func(t *testing.T) {
		s := mlflowtest.NewServer(t)
		s.CreateVersion("m", mlflowtest.Version{})
		s.RequireBasic("alice", "pw")
		// Basic wins over a token when both are given, as in MLflow's client.
		if _, err := newClient(t, s, mlflow.Options{Username: "alice", Password: "pw", Token: "x"}).GetModelVersion(ctx, "m", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := newClient(t, s, mlflow.Options{Username: "alice", Password: "bad"}).GetModelVersion(ctx, "m", "1"); !errors.Is(err, modelplane.ErrInvalid) {
			t.Fatalf("bad password: %v", err)
		}
		// Credentials in the URI are used as Basic credentials.
		c, err := mlflow.New(mlflow.Options{TrackingURI: strings.Replace(s.URL, "http://", "http://alice:pw@", 1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetModelVersion(ctx, "m", "1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFromEnv(t *testing.T) {
	o, err := mlflow.FromEnv(env(map[string]string{"MLFLOW_TRACKING_URI": "https://mlflow.example.com/", "MLFLOW_TRACKING_TOKEN": "t"}))
	if err != nil || o.Token != "t" || o.Username != "" || o.InsecureTLS {
		t.Fatalf("token: %+v, %v", o, err)
	}
	o, err = mlflow.FromEnv(env(map[string]string{"MLFLOW_TRACKING_URI": "http://m:5000", "MLFLOW_TRACKING_USERNAME": "u",
		"MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_INSECURE_TLS": "TRUE", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}))
	if err != nil || o.Username != "u" || o.Password != "p" || !o.InsecureTLS || o.Timeout.Seconds() != 30 {
		t.Fatalf("basic: %+v, %v", o, err)
	}
	o, err = mlflow.FromEnv(env(map[string]string{"MLFLOW_TRACKING_URI": "http://m:5000", "MLFLOW_TRACKING_INSECURE_TLS": "false"}))
	if err != nil || o.Token != "" || o.Username != "" || o.InsecureTLS {
		t.Fatalf("none: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		env   map[string]string
		field string
	}{
		{map[string]string{}, "MLFLOW_TRACKING_URI"},
		{map[string]string{"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"}, "tracking_uri"},
		{map[string]string{"MLFLOW_TRACKING_URI": "databricks"}, "tracking_uri"},
		{map[string]string{"MLFLOW_TRACKING_URI": "http://m", "MLFLOW_TRACKING_USERNAME": "u"}, "MLFLOW_TRACKING_PASSWORD"},
		{map[string]string{"MLFLOW_TRACKING_URI": "http://m", "MLFLOW_TRACKING_PASSWORD": "secret-pw"}, "MLFLOW_TRACKING_USERNAME"},
		{map[string]string{"MLFLOW_TRACKING_URI": "http://m", "MLFLOW_TRACKING_INSECURE_TLS": "maybe"}, "MLFLOW_TRACKING_INSECURE_TLS"},
		{map[string]string{"MLFLOW_TRACKING_URI": "http://m", "MLFLOW_HTTP_REQUEST_TIMEOUT": "-1"}, "MLFLOW_HTTP_REQUEST_TIMEOUT"},
	} {
		_, err := mlflow.FromEnv(env(tc.env))
		var fe *modelplane.Error
		if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%v: err = %v, want field %s", tc.env, err, tc.field)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestInsecureTLS(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewTLSServer(t)
	s.CreateVersion("m", mlflowtest.Version{})
	strict, _ := mlflow.New(mlflow.Options{TrackingURI: s.URL})
	if _, err := strict.GetModelVersion(ctx, "m", "1"); err == nil {
		t.Fatal("self-signed certificate accepted without InsecureTLS")
	}
	o, err := mlflow.FromEnv(env(map[string]string{"MLFLOW_TRACKING_URI": s.URL, "MLFLOW_TRACKING_INSECURE_TLS": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	insecure, _ := mlflow.New(o)
	if _, err := insecure.GetModelVersion(ctx, "m", "1"); err != nil {
		t.Fatalf("InsecureTLS: %v", err)
	}
	trusted, _ := mlflow.New(mlflow.Options{TrackingURI: s.URL, HTTPClient: s.Client()})
	if _, err := trusted.GetModelVersion(ctx, "m", "1"); err != nil {
		t.Fatalf("HTTPClient: %v", err)
	}
}

func TestPrefixedTrackingURI(t *testing.T) {
	s := mlflowtest.NewServer(t)
	s.CreateVersion("m", mlflowtest.Version{})
	mux := http.NewServeMux()
	mux.Handle("/mlflow/", http.StripPrefix("/mlflow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, _ := http.NewRequestWithContext(r.Context(), r.Method, s.URL+r.URL.RequestURI(), r.Body)
		r2.Header = r.Header
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, _ := mlflow.New(mlflow.Options{TrackingURI: "http://" + l.Addr().String() + "/mlflow/"})
	if _, err := c.GetModelVersion(context.Background(), "m", "1"); err != nil {
		t.Fatalf("prefixed URI: %v", err)
	}
}
