// Package sinks delivers lifecycle events as CloudEvents
// (github.com/cloudevents/sdk-go) to HTTP webhooks (signed) and NATS
// JetStream subjects. Delivery is at-least-once: the caller (an activity)
// retries, and every event keeps its id so consumers can deduplicate.
package sinks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/modelplane/modelplane"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sink receives events.
type Sink interface {
	Send(ctx context.Context, e cloudevents.Event) error
	Name() string
}

// ToCloudEvent converts a lifecycle event.
func ToCloudEvent(e modelplane.Event) (cloudevents.Event, error) {
	ce := cloudevents.NewEvent()
	ce.SetID(e.ID)
	ce.SetType(e.Type)
	ce.SetSource(e.Source)
	ce.SetSubject(e.Subject)
	ce.SetTime(e.Time)
	if err := ce.SetData(cloudevents.ApplicationJSON, e.Data); err != nil {
		return ce, err
	}
	return ce, ce.Validate()
}

// SignatureHeader carries "t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">".
const SignatureHeader = "X-Modelplane-Signature"

// Sign computes the signature header for body at time ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// HTTP posts structured-mode CloudEvents, signed when Secret is set.
type HTTP struct {
	URL    string
	Secret []byte
	Client *http.Client
}

func (h *HTTP) Name() string { return "http " + h.URL }

func (h *HTTP) Send(ctx context.Context, e cloudevents.Event) error {
	body, err := e.MarshalJSON()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if len(h.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(h.Secret, time.Now().Unix(), body))
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", h.URL, res.Status)
	}
	return nil
}

// NATS publishes to JetStream subjects Prefix.<type suffix>, e.g.
// modelplane.events.promotion.rolled_back. The event id is the JetStream
// message id, so the server itself drops a retried duplicate within its window.
type NATS struct {
	Prefix string
	js     jetstream.JetStream
	nc     *nats.Conn
}

// NewNATS connects to url and makes sure a stream covers Prefix.>.
func NewNATS(ctx context.Context, url, stream, prefix string) (*NATS, error) {
	nc, err := nats.Connect(url, nats.Name("modelplane"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Duplicates: 10 * time.Minute}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats stream %s: %w", stream, err)
	}
	return &NATS{Prefix: prefix, js: js, nc: nc}, nil
}

func (n *NATS) Name() string { return "nats " + n.Prefix }

// Subject is where an event of type typ is published.
func (n *NATS) Subject(typ string) string {
	return n.Prefix + "." + strings.TrimPrefix(typ, "dev.modelplane.")
}

func (n *NATS) Send(ctx context.Context, e cloudevents.Event) error {
	body, err := e.MarshalJSON()
	if err != nil {
		return err
	}
	msg := nats.NewMsg(n.Subject(e.Type()))
	msg.Data = body
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	msg.Header.Set("ce-id", e.ID())
	_, err = n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID()))
	return err
}

// Close ends the connection.
func (n *NATS) Close() { n.nc.Close() }

// Publish sends every event to every sink; it fails if any delivery failed,
// so the caller retries (sinks see a delivered event again: at-least-once).
func Publish(ctx context.Context, sinks []Sink, events []modelplane.Event) error {
	var errs []error
	for _, ev := range events {
		ce, err := ToCloudEvent(ev)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		for _, s := range sinks {
			if err := s.Send(ctx, ce); err != nil {
				errs = append(errs, fmt.Errorf("%s: event %s: %w", s.Name(), ev.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
