package mlflowtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
)

// call sends raw requests so the stand-in's wire behaviour is checked
// without the client package.
func call(t *testing.T, s *mlflowtest.Server, method, endpoint string, q url.Values, body string) (int, map[string]any, string) {
	t.Helper()
	u := s.URL + "/api/2.0/mlflow/" + endpoint
	if q != nil {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

func TestWire(t *testing.T) {
	s := mlflowtest.NewServer(t)
	if st, _, _ := call(t, s, "POST", "registered-models/create", nil, `{"name":"m","unknown_field":1}`); st != 200 {
		t.Fatalf("create: %d", st)
	}
	st, m, _ := call(t, s, "POST", "registered-models/create", nil, `{"name":"m"}`)
	if st != 400 || m["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Fatalf("duplicate: %d %v", st, m)
	}
	st, m, _ = call(t, s, "POST", "model-versions/create", nil, `{"name":"m"}`)
	if st != 400 || m["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("no source: %d %v", st, m)
	}
	st, m, _ = call(t, s, "POST", "model-versions/create", nil, `{"name":"m","source":"s3://x"}`)
	if st != 200 || m["model_version"].(map[string]any)["version"] != "1" {
		t.Fatalf("create version: %d %v", st, m)
	}
	// Protobuf JSON: a number for a string field is refused.
	st, m, _ = call(t, s, "POST", "registered-models/alias", nil, `{"name":"m","alias":"a","version":1}`)
	if st != 400 || m["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("numeric version: %d %v", st, m)
	}
	st, m, _ = call(t, s, "GET", "registered-models/alias", url.Values{"name": {"m"}, "alias": {"a"}}, "")
	if st != 400 || m["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("missing alias: %d %v", st, m)
	}
	st, m, _ = call(t, s, "GET", "model-versions/get", url.Values{"name": {"m"}, "version": {"2"}}, "")
	if st != 404 || m["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("missing version: %d %v", st, m)
	}
	if st, _, _ = call(t, s, "PUT", "model-versions/get", nil, "{}"); st != 405 {
		t.Fatalf("wrong method: %d", st)
	}
	st, m, _ = call(t, s, "GET", "model-versions/search", url.Values{"page_token": {"!!"}}, "")
	if st != 400 || m["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("bad page token: %d %v", st, m)
	}
	if st, _, _ = call(t, s, "DELETE", "registered-models/alias", nil, `{"name":"m","alias":"never-set"}`); st != 200 {
		t.Fatalf("deleting an unset alias: %d", st)
	}
}

func TestAuthAndFaults(t *testing.T) {
	s := mlflowtest.NewServer(t)
	s.CreateModel("m")
	s.RequireBasic("u", "p")
	st, _, body := call(t, s, "GET", "registered-models/get", url.Values{"name": {"m"}}, "")
	if st != 401 || !strings.Contains(body, "not authenticated") {
		t.Fatalf("no credentials: %d %s", st, body)
	}
	s.RequireBasic("", "")
	s.Fail("GET registered-models/get", 429, 2)
	for i := range 2 {
		if st, m, _ := call(t, s, "GET", "registered-models/get", url.Values{"name": {"m"}}, ""); st != 429 || m["error_code"] != "REQUEST_LIMIT_EXCEEDED" {
			t.Fatalf("fault %d: %d %v", i, st, m)
		}
	}
	if st, _, _ := call(t, s, "GET", "registered-models/get", url.Values{"name": {"m"}}, ""); st != 200 {
		t.Fatalf("after faults: %d", st)
	}
	if n := s.Calls("GET registered-models/get"); n != 4 {
		t.Fatalf("calls = %d, want 4", n)
	}
	if s.Writes() != 0 {
		t.Fatalf("writes = %d", s.Writes())
	}
}
