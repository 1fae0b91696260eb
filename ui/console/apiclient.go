package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/modelplane/modelplane/api"
)

// apiError is the API's answer when it refuses: the status, and the
// message and field the API named.
type apiError struct {
	Status        int
	Code, Message string
	Field         string
	Body          []byte
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// recorder collects the API's response in memory (the call never leaves the process).
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.h }
func (w *recorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// call sends one request to the API as the signed-in person; out, if not
// nil, receives the decoded JSON answer.
func (r *req) call(method, path string, q url.Values, body, out any) error {
	raw, err := r.callRaw(method, path, q, body)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

func (r *req) callRaw(method, path string, q url.Values, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	// The API records that the action came through the console.
	rq, err := http.NewRequestWithContext(api.WithVia(r.ctx(), "console"), method, u, rd)
	if err != nil {
		return nil, err
	}
	rq.RemoteAddr = r.r.RemoteAddr
	rq.Header.Set("Authorization", "Bearer "+r.sess.Token)
	rq.Header.Set("Accept", "application/json")
	if body != nil {
		rq.Header.Set("Content-Type", "application/json")
	}
	if k := r.r.Header.Get("Idempotency-Key"); k != "" {
		rq.Header.Set("Idempotency-Key", k)
	}
	w := &recorder{h: http.Header{}}
	r.c.api.ServeHTTP(w, rq)
	if w.status >= 300 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		_ = json.Unmarshal(w.body.Bytes(), &e)
		if e.Error.Message == "" {
			e.Error.Message = http.StatusText(w.status)
		}
		return nil, &apiError{Status: w.status, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field, Body: w.body.Bytes()}
	}
	return w.body.Bytes(), nil
}
