package mlflow

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// Webhook headers set by MLflow on every delivery.
const (
	HeaderDeliveryID = "X-MLflow-Delivery-Id"
	HeaderTimestamp  = "X-MLflow-Timestamp"
	HeaderSignature  = "X-MLflow-Signature"
)

// DefaultMaxSkew is the replay window VerifyWebhook uses when maxSkew <= 0.
const DefaultMaxSkew = 5 * time.Minute

// ErrUnverified marks a delivery whose headers, timestamp or signature do
// not check out: answer 401 and do not look at the body. It wraps
// modelplane.ErrInvalid.
var ErrUnverified = fmt.Errorf("mlflow webhook not verified: %w", modelplane.ErrInvalid)

// Delivery is a verified MLflow webhook delivery.
type Delivery struct {
	// ID is X-MLflow-Delivery-Id, unique per delivery; an HTTP-level retry
	// resends the same request, so it is also the key to drop duplicates
	// and replays by.
	ID string
	// Timestamp is X-MLflow-Timestamp, the time the delivery was signed.
	Timestamp time.Time
	// Entity and Action name the event, e.g. model_version_alias / created.
	Entity, Action string
	// EventTime is the envelope's own timestamp as sent (ISO 8601).
	EventTime string
	// Data is the event's payload.
	Data map[string]any
	// Fields of Data most events carry, as strings ("" when absent).
	Model, Version, Alias, Key, Value, Source, RunID string
}

// Event is "<entity>.<action>", e.g. "model_version_alias.created".
func (d Delivery) Event() string { return d.Entity + "." + d.Action }

// VerifyWebhook checks an MLflow webhook delivery and parses it. It requires
// X-MLflow-Delivery-Id, X-MLflow-Timestamp (unix seconds, within maxSkew of
// now either way; DefaultMaxSkew when maxSkew <= 0) and X-MLflow-Signature,
// "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>" (several
// space-separated signatures are accepted if one matches, for secret
// rotation), compared in constant time. Failures wrap ErrUnverified. Then
// the body must be the envelope {entity, action, timestamp, data}; a bad
// envelope wraps modelplane.ErrInvalid.
//
// VerifyWebhook keeps no state: rejecting a delivery id seen before (a
// replay inside the window, or MLflow's own retry of a delivery already
// handled) is the caller's job, by storing the ids it has accepted for at
// least 2×maxSkew. Record an id only once the delivery was handled: a
// delivery answered with an error is retried with the same id. Webhooks
// are best effort: treat them as hints and reconcile by reading the registry.
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, maxSkew time.Duration) (Delivery, error) {
	if len(secret) == 0 {
		return Delivery{}, fmt.Errorf("mlflow webhook: no secret configured to verify with: %w", ErrUnverified)
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	id := h.Get(HeaderDeliveryID)
	ts := h.Get(HeaderTimestamp)
	sig := h.Get(HeaderSignature)
	for _, hv := range [][2]string{{HeaderDeliveryID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sig}} {
		if strings.TrimSpace(hv[1]) == "" {
			return Delivery{}, fmt.Errorf("mlflow webhook: header %s is missing: %w", hv[0], ErrUnverified)
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Delivery{}, fmt.Errorf("mlflow webhook: header %s is not unix seconds: %w", HeaderTimestamp, ErrUnverified)
	}
	at := time.Unix(secs, 0).UTC()
	if skew := now.Sub(at); skew > maxSkew || skew < -maxSkew {
		return Delivery{}, fmt.Errorf("mlflow webhook: %s %s is %s away from now, more than %s: %w",
			HeaderTimestamp, ts, skew.Round(time.Second), maxSkew, ErrUnverified)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte("."))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	want := mac.Sum(nil)
	ok := false
	for _, s := range strings.Fields(sig) {
		scheme, b64, found := strings.Cut(s, ",")
		if !found || scheme != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return Delivery{}, fmt.Errorf("mlflow webhook: delivery %s: signature does not match: %w", id, ErrUnverified)
	}

	var env struct {
		Entity    string          `json:"entity"`
		Action    string          `json:"action"`
		Timestamp json.RawMessage `json:"timestamp"`
		Data      map[string]any  `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return Delivery{}, fmt.Errorf("mlflow webhook: delivery %s: body is not a JSON envelope: %v: %w", id, err, modelplane.ErrInvalid)
	}
	if env.Entity == "" || env.Action == "" {
		return Delivery{}, fmt.Errorf("mlflow webhook: delivery %s: envelope has no entity or action: %w", id, modelplane.ErrInvalid)
	}
	d := Delivery{ID: id, Timestamp: at, Entity: env.Entity, Action: env.Action, Data: env.Data}
	if len(env.Timestamp) > 0 {
		var s string
		if json.Unmarshal(env.Timestamp, &s) == nil {
			d.EventTime = s
		} else {
			d.EventTime = string(env.Timestamp)
		}
	}
	if d.Data == nil {
		d.Data = map[string]any{}
	}
	d.Model = str(d.Data["name"])
	d.Version = str(d.Data["version"])
	d.Alias = str(d.Data["alias"])
	d.Key = str(d.Data["key"])
	d.Value = str(d.Data["value"])
	d.Source = str(d.Data["source"])
	d.RunID = str(d.Data["run_id"])
	return d, nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// IsUnverified reports whether err is a webhook verification failure.
func IsUnverified(err error) bool { return errors.Is(err, ErrUnverified) }
