package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/modelplane/modelplane/config"
	"go.temporal.io/sdk/client"
)

// ClientOptions turns the temporal section of the config into SDK options:
// address, namespace, TLS or mTLS, and an API key. The caller adds logger,
// data converter, interceptors and metrics.
func ClientOptions(c config.Temporal, apiKey string) (client.Options, error) {
	o := client.Options{HostPort: c.Address, Namespace: c.Namespace}
	if loopback(c.Address) {
		// Calls that never leave the machine (modelplane dev's own
		// frontend) gain nothing from gzip, and compressing them cost a
		// tenth of each parked workflow's CPU (bench/README.md, Scale).
		o.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	t := c.TLS
	plain := !t.Enabled && t.CAFile == "" && t.CertFile == "" && t.ServerName == "" && !t.InsecureSkipVerify
	if plain && apiKey == "" {
		return o, nil
	}
	if plain && (loopback(c.Address) || c.AllowPlaintextAPIKey) {
		// A key sent over loopback never leaves the machine (modelplane
		// dev's own frontend): a header, no TLS. allow_plaintext_api_key
		// says the same of a private network (compose's).
		o.HeadersProvider = Bearer(apiKey)
		return o, nil
	}
	// An API key is a bearer credential: never send it in the clear.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(c.Address)
		if err != nil {
			return o, fmt.Errorf("temporal.address %q: %w", c.Address, err)
		}
		tc.ServerName = host
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return o, fmt.Errorf("temporal.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("temporal.tls.ca_file %s: no PEM certificates in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return o, errors.New("temporal.tls.cert_file and temporal.tls.key_file go together (mTLS)")
		}
		// Loaded on every handshake so a rotated certificate is picked up
		// without a restart (cert-manager renews in place).
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return o, fmt.Errorf("temporal.tls.cert_file/key_file: %w", err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			return &cert, err
		}
	}
	o.ConnectionOptions.TLS = tc
	if apiKey != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(apiKey)
	}
	return o, nil
}

// loopback reports whether addr (host:port) names this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Bearer sends a token as the authorization header of every call to the
// Temporal frontend; an empty token sends none.
type Bearer string

func (b Bearer) GetHeaders(context.Context) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
