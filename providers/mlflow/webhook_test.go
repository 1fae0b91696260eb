package mlflow_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
)

// receiver is a webhook endpoint that verifies with VerifyWebhook and
// keeps what it accepted (and the error of what it refused).
type receiver struct {
	secret []byte
	mu     sync.Mutex
	got    []mlflow.Delivery
	errs   []error
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d, err := mlflow.VerifyWebhook(rc.secret, r.Header, body, time.Now(), time.Minute)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch {
	case mlflow.IsUnverified(err):
		rc.errs = append(rc.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
	case err != nil:
		rc.errs = append(rc.errs, err)
		w.WriteHeader(http.StatusBadRequest)
	default:
		rc.got = append(rc.got, d)
	}
}

func (rc *receiver) lastErr() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.errs) == 0 {
		return nil
	}
	return rc.errs[len(rc.errs)-1]
}

func newReceiver(t *testing.T) (*receiver, string) {
	rc := &receiver{secret: []byte("whsec-test")}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func TestWebhookGood(t *testing.T) {
	rc, url := newReceiver(t)
	resp, err := mlflowtest.Deliver(context.Background(), url, rc.secret, "model_version_alias", "created",
		map[string]any{"name": "fraud", "alias": "champion", "version": "3"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(rc.got) != 1 {
		t.Fatalf("status %d, accepted %d, err %v", resp.StatusCode, len(rc.got), rc.lastErr())
	}
	d := rc.got[0]
	if d.ID == "" || d.Event() != "model_version_alias.created" || d.Model != "fraud" || d.Alias != "champion" ||
		d.Version != "3" || d.EventTime == "" || d.Data["alias"] != "champion" || time.Since(d.Timestamp) > time.Minute {
		t.Fatalf("delivery %+v", d)
	}

	// A tag event with a numeric version still reads as a string.
	resp, err = mlflowtest.Deliver(context.Background(), url, rc.secret, "model_version_tag", "set",
		map[string]any{"name": "fraud", "version": 4, "key": "modelplane.stage", "value": "approved"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := rc.got[len(rc.got)-1]; d.Version != "4" || d.Key != "modelplane.stage" || d.Value != "approved" {
		t.Fatalf("tag delivery %+v", d)
	}
}

func TestWebhookRefusals(t *testing.T) {
	ctx := context.Background()
	rc, url := newReceiver(t)
	data := map[string]any{"name": "fraud", "version": "1"}
	for _, tc := range []struct {
		name       string
		w          mlflowtest.Webhook
		status     int
		unverified bool
	}{
		{"wrong secret", mlflowtest.Webhook{Secret: []byte("other")}, 401, true},
		{"tampered body", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte {
			return append(b[:len(b)-1:len(b)-1], ' ', '}')
		}}, 401, true},
		{"tampered timestamp", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte {
			ts, _ := strconv.ParseInt(h.Get(mlflow.HeaderTimestamp), 10, 64)
			h.Set(mlflow.HeaderTimestamp, strconv.FormatInt(ts+1, 10))
			return b
		}}, 401, true},
		{"tampered id", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte {
			h.Set(mlflow.HeaderDeliveryID, "another-id")
			return b
		}}, 401, true},
		{"bad signature scheme", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte {
			h.Set(mlflow.HeaderSignature, "v2,"+h.Get(mlflow.HeaderSignature)[3:])
			return b
		}}, 401, true},
		{"stale", mlflowtest.Webhook{Timestamp: time.Now().Add(-10 * time.Minute)}, 401, true},
		{"from the future", mlflowtest.Webhook{Timestamp: time.Now().Add(10 * time.Minute)}, 401, true},
		{"no delivery id", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte { h.Del(mlflow.HeaderDeliveryID); return b }}, 401, true},
		{"no timestamp", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte { h.Del(mlflow.HeaderTimestamp); return b }}, 401, true},
		{"no signature", mlflowtest.Webhook{Tamper: func(h http.Header, b []byte) []byte { h.Del(mlflow.HeaderSignature); return b }}, 401, true},
		{"no entity", mlflowtest.Webhook{Entity: "-"}, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			if w.Secret == nil {
				w.Secret = rc.secret
			}
			w.Entity, w.Action, w.Data = "model_version", "created", data
			if tc.w.Entity == "-" {
				w.Entity = ""
			}
			resp, err := mlflowtest.DeliverWebhook(ctx, url, w)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.status, rc.lastErr())
			}
			err = rc.lastErr()
			if !errors.Is(err, modelplane.ErrInvalid) || mlflow.IsUnverified(err) != tc.unverified {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if len(rc.got) != 0 {
		t.Fatalf("accepted %d bad deliveries", len(rc.got))
	}
}

func TestWebhookDirect(t *testing.T) {
	secret := []byte("s")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"entity":"registered_model","action":"created","timestamp":"2027-01-15T08:00:00Z","data":{"name":"m"}}`)
	ts := strconv.FormatInt(now.Unix()-30, 10)
	h := http.Header{}
	h.Set(mlflow.HeaderDeliveryID, "d1")
	h.Set(mlflow.HeaderTimestamp, ts)
	// Two signatures (rotation): one stale, one good.
	h.Set(mlflow.HeaderSignature, "v1,AAAA v1,"+mlflowtest.Sign(secret, "d1", ts, body))
	d, err := mlflow.VerifyWebhook(secret, h, body, now, 0)
	if err != nil || d.ID != "d1" || d.Model != "m" || d.Timestamp.Unix() != now.Unix()-30 {
		t.Fatalf("%+v, %v", d, err)
	}
	if _, err := mlflow.VerifyWebhook(secret, h, body, now, 10*time.Second); !mlflow.IsUnverified(err) {
		t.Fatalf("30s old with a 10s window: %v", err)
	}
	if _, err := mlflow.VerifyWebhook(nil, h, body, now, 0); !mlflow.IsUnverified(err) {
		t.Fatalf("no secret: %v", err)
	}
}

// TestWebhookVector pins the signature format with a value computed
// independently (Python's hmac/hashlib/base64), not by this package.
func TestWebhookVector(t *testing.T) {
	body := []byte(`{"entity":"model_version","action":"created","timestamp":"2027-01-15T08:00:00.000000Z","data":{"name":"fraud","version":"2"}}`)
	h := http.Header{}
	h.Set("X-MLflow-Delivery-Id", "abc-123")
	h.Set("X-MLflow-Timestamp", "1800000000")
	h.Set("X-MLflow-Signature", "v1,/ump6+C8IO4zxN01330nQa3WY4TJazAj5BeebVuiYnQ=")
	d, err := mlflow.VerifyWebhook([]byte("vector-secret"), h, body, time.Unix(1800000000, 0), time.Minute)
	if err != nil || d.Model != "fraud" || d.Version != "2" || d.Entity != "model_version" {
		t.Fatalf("%+v, %v", d, err)
	}
	if got := mlflowtest.Sign([]byte("vector-secret"), "abc-123", "1800000000", body); got != "/ump6+C8IO4zxN01330nQa3WY4TJazAj5BeebVuiYnQ=" {
		t.Fatalf("mlflowtest.Sign = %s", got)
	}
}
