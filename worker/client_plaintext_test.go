package worker_test

import (
	"context"
	"testing"

	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/worker"
)

// An API key implies TLS, unless the config says the network is private
// (compose's, where `modelplane temporal` has no certificate).
func TestClientOptionsPlaintextAPIKey(t *testing.T) {
	c := config.Temporal{Address: "temporal:7233", Namespace: "default"}
	o, err := worker.ClientOptions(c, "svc-key")
	if err != nil {
		t.Fatal(err)
	}
	if o.ConnectionOptions.TLS == nil || o.HeadersProvider != nil {
		t.Fatalf("an API key to a remote frontend must imply TLS: tls %v, headers %v", o.ConnectionOptions.TLS, o.HeadersProvider)
	}
	c.AllowPlaintextAPIKey = true
	if o, err = worker.ClientOptions(c, "svc-key"); err != nil {
		t.Fatal(err)
	}
	if o.ConnectionOptions.TLS != nil || o.HeadersProvider == nil {
		t.Fatalf("allow_plaintext_api_key: want no TLS and the key as a header, got tls %v", o.ConnectionOptions.TLS)
	}
	if h, err := o.HeadersProvider.GetHeaders(context.Background()); err != nil || h["authorization"] != "Bearer svc-key" {
		t.Fatalf("headers %v, %v", h, err)
	}
	// TLS configured wins over the switch.
	c.TLS.Enabled = true
	if o, err = worker.ClientOptions(c, "svc-key"); err != nil || o.ConnectionOptions.TLS == nil {
		t.Fatalf("with tls.enabled the key must go over TLS: %v", err)
	}
}
