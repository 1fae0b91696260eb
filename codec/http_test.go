package codec_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/codec"
)

const uiOrigin = "http://localhost:8233"

// testAuth accepts the bearer token "good", forbids "viewer", and refuses the rest.
func testAuth(r *http.Request) error {
	switch r.Header.Get("Authorization") {
	case "Bearer good":
		return nil
	case "Bearer viewer":
		return modelplane.Errorf(modelplane.EForbidden, "viewer may not decode payloads")
	}
	return errors.New("missing or invalid token")
}

type codecServer struct {
	*httptest.Server
	kr *codec.Keyring
}

func newCodecServer(t *testing.T, auth func(*http.Request) error) codecServer {
	t.Helper()
	kr := mustKeys(t, "k1:"+codec.NewKey())
	mux := http.NewServeMux()
	mux.Handle("/codec/", codec.Handler(kr, auth, []string{uiOrigin + "/"}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return codecServer{srv, kr}
}

// post sends payloads the way the Web UI does.
func (s codecServer) post(t *testing.T, path, token, origin string, payloads ...*commonpb.Payload) *http.Response {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+path+"?preserveStorageRefs=true", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func readPayloads(t *testing.T, resp *http.Response) []*commonpb.Payload {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return out.Payloads
}

func errorBody(t *testing.T, resp *http.Response) modelplane.Error {
	t.Helper()
	var body struct{ Error modelplane.Error }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Error
}

func TestHandlerAuthorizedDecode(t *testing.T) {
	s := newCodecServer(t, testAuth)
	secret := encryptOne(t, s.kr, "s3cr3t-ui")
	plainIn, _ := converter.GetDefaultDataConverter().ToPayload("already plain")

	resp := s.post(t, "/codec/decode", "good", uiOrigin, secret, plainIn)
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != uiOrigin {
		t.Fatalf("Allow-Origin = %q", got)
	}
	if resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers = %v", resp.Header)
	}
	out := readPayloads(t, resp)
	var a, b string
	if err := converter.GetDefaultDataConverter().FromPayloads(&commonpb.Payloads{Payloads: out}, &a, &b); err != nil {
		t.Fatal(err)
	}
	if a != "s3cr3t-ui" || b != "already plain" {
		t.Fatalf("decoded %q, %q", a, b)
	}

	// Encode through the endpoint, then decode locally: same keyring, same result.
	enc := readPayloads(t, s.post(t, "/codec/encode", "good", "", plainIn))
	if string(enc[0].Metadata["encoding"]) != "binary/encrypted" {
		t.Fatalf("encode returned %v", enc[0])
	}
	var back string
	if err := codec.NewDataConverter(s.kr).FromPayload(enc[0], &back); err != nil || back != "already plain" {
		t.Fatalf("%q %v", back, err)
	}
}

func TestHandlerRefusesUnauthorized(t *testing.T) {
	s := newCodecServer(t, testAuth)
	secret := encryptOne(t, s.kr, "s3cr3t-ui")
	for _, c := range []struct {
		token  string
		status int
		code   string
	}{
		{"", http.StatusUnauthorized, "unauthorized"},
		{"wrong", http.StatusUnauthorized, "unauthorized"},
		{"viewer", http.StatusForbidden, "forbidden"},
	} {
		for _, path := range []string{"/codec/decode", "/codec/encode"} {
			resp := s.post(t, path, c.token, uiOrigin, secret)
			if resp.StatusCode != c.status {
				t.Fatalf("%s with token %q: status %d, want %d", path, c.token, resp.StatusCode, c.status)
			}
			// CORS headers stay on so the UI can read why it was refused.
			if resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
				t.Fatalf("refusal lacks CORS headers: %v", resp.Header)
			}
			e := errorBody(t, resp)
			if e.Code != c.code || strings.Contains(e.Message, "s3cr3t") {
				t.Fatalf("error body %+v", e)
			}
		}
	}

	// A nil authorizer fails closed.
	open := newCodecServer(t, nil)
	if resp := open.post(t, "/codec/decode", "good", "", encryptOne(t, open.kr, "x")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("nil authorize: status %d", resp.StatusCode)
	}
}

func TestHandlerCORS(t *testing.T) {
	s := newCodecServer(t, testAuth)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}

	ok := preflight(uiOrigin)
	if ok.StatusCode != http.StatusNoContent {
		t.Fatalf("allowed preflight: status %d", ok.StatusCode)
	}
	h := ok.Header
	if h.Get("Access-Control-Allow-Origin") != uiOrigin || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("allowed preflight headers: %v", h)
	}
	for _, want := range []string{"Content-Type", "Authorization", "X-Namespace"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Fatalf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("Vary lacks Origin: %v", h)
	}

	for _, evil := range []string{"https://evil.example", "http://localhost:8234", "null"} {
		bad := preflight(evil)
		if bad.StatusCode != http.StatusForbidden || bad.Header.Get("Access-Control-Allow-Origin") != "" ||
			bad.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight from %s: status %d, headers %v", evil, bad.StatusCode, bad.Header)
		}
		// Even with a valid token, a foreign page gets nothing decoded.
		resp := s.post(t, "/codec/decode", "good", evil, encryptOne(t, s.kr, "s3cr3t-ui"))
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("POST from %s: status %d", evil, resp.StatusCode)
		}
	}
}

func TestHandlerRoutes(t *testing.T) {
	s := newCodecServer(t, testAuth)
	if resp := s.post(t, "/codec/download", "good", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: status %d", resp.StatusCode)
	}
	resp, err := http.Get(s.URL + "/codec/decode")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Fatalf("GET: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// A payload under an unknown key is a client error, and the message names the id only.
	other := encryptOne(t, mustKeys(t, "k7:"+codec.NewKey()), "x")
	bad := s.post(t, "/codec/decode", "good", "", other)
	b, _ := io.ReadAll(bad.Body)
	if bad.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"k7"`) {
		t.Fatalf("unknown key: status %d, body %s", bad.StatusCode, b)
	}
}
