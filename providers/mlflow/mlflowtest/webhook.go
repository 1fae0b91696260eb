package mlflowtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Webhook is one delivery as MLflow sends it.
type Webhook struct {
	Secret []byte
	// ID is X-MLflow-Delivery-Id; default a random UUID-like id.
	ID string
	// Timestamp is signed and sent as X-MLflow-Timestamp (unix seconds);
	// default now.
	Timestamp time.Time
	// Entity, Action and Data make the envelope {entity, action, timestamp, data}.
	Entity, Action string
	Data           any
	// Tamper, when set, is called with the signed headers and body just
	// before sending and returns the body to send: a test edits the
	// signature, timestamp or id there, or the body.
	Tamper func(h http.Header, body []byte) []byte
}

// Deliver signs and POSTs a webhook delivery to url exactly as MLflow does:
// X-MLflow-Signature = "v1," + base64(HMAC-SHA256(secret, id + "." +
// timestamp + "." + body)).
func Deliver(ctx context.Context, url string, secret []byte, entity, action string, data any) (*http.Response, error) {
	return DeliverWebhook(ctx, url, Webhook{Secret: secret, Entity: entity, Action: action, Data: data})
}

// DeliverWebhook sends w (see Webhook for the defaults and Tamper).
func DeliverWebhook(ctx context.Context, url string, w Webhook) (*http.Response, error) {
	r, err := w.Request(ctx, url)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(r)
}

// Request builds the signed request without sending it.
func (w Webhook) Request(ctx context.Context, url string) (*http.Request, error) {
	if w.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		w.ID = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	if w.Timestamp.IsZero() {
		w.Timestamp = time.Now()
	}
	body, err := json.Marshal(map[string]any{
		"entity":    w.Entity,
		"action":    w.Action,
		"timestamp": w.Timestamp.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"data":      w.Data,
	})
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(w.Timestamp.Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-MLflow-Delivery-Id", w.ID)
	h.Set("X-MLflow-Timestamp", ts)
	h.Set("X-MLflow-Signature", "v1,"+Sign(w.Secret, w.ID, ts, body))
	if w.Tamper != nil {
		body = w.Tamper(h, body)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header = h
	return r, nil
}

// Sign is base64(HMAC-SHA256(secret, id + "." + timestamp + "." + body)).
func Sign(secret []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
