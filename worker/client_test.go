package worker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/worker"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

type pki struct {
	dir              string
	ca               *x509.Certificate
	caKey            *ecdsa.PrivateKey
	caFile           string
	serverCert       tls.Certificate
	clientCertFile   string
	clientKeyFile    string
	strangerCertFile string
	strangerKeyFile  string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	srvDER, srvKey := p.issue(t, p.ca, p.caKey, "temporal.test", x509.ExtKeyUsageServerAuth)
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := p.issue(t, p.ca, p.caKey, "modelplane-worker", x509.ExtKeyUsageClientAuth)
	p.clientCertFile = p.write("client.pem", "CERTIFICATE", cliDER)
	kb, _ := x509.MarshalECPrivateKey(cliKey)
	p.clientKeyFile = p.write("client-key.pem", "EC PRIVATE KEY", kb)
	// A client certificate from another CA: the frontend must refuse it.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherTmpl := *tmpl
	otherDER, _ := x509.CreateCertificate(rand.Reader, &otherTmpl, &otherTmpl, &otherKey.PublicKey, otherKey)
	other, _ := x509.ParseCertificate(otherDER)
	sDER, sKey := p.issue(t, other, otherKey, "stranger", x509.ExtKeyUsageClientAuth)
	p.strangerCertFile = p.write("stranger.pem", "CERTIFICATE", sDER)
	skb, _ := x509.MarshalECPrivateKey(sKey)
	p.strangerKeyFile = p.write("stranger-key.pem", "EC PRIVATE KEY", skb)
	return p
}

func (p *pki) issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, k
}

func (p *pki) write(name, typ string, der []byte) string {
	f := filepath.Join(p.dir, name)
	_ = os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	return f
}

// tlsFront terminates mTLS in front of a plaintext Temporal frontend, as a
// load balancer or Temporal Cloud's edge does.
func tlsFront(t *testing.T, p *pki, backend string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	forward(t, l, backend, func(c net.Conn) bool { return c.(*tls.Conn).Handshake() == nil })
	return l.Addr().String()
}

// forward accepts on l and copies each connection to backend and back,
// once accept (if given) takes it. It returns the bytes clients sent,
// counted as each connection's sending side ends.
func forward(t *testing.T, l net.Listener, backend string, accept func(net.Conn) bool) *atomic.Int64 {
	t.Helper()
	t.Cleanup(func() { l.Close() })
	var sent atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if accept != nil && !accept(c) {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(c, b) }()
				n, _ := io.Copy(b, c)
				sent.Add(n)
			}()
		}
	}()
	return &sent
}

func TestClientOptionsMTLSAndAPIKey(t *testing.T) {
	var mu sync.Mutex
	var seenAuth []string
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			mu.Lock()
			seenAuth = append(seenAuth, md.Get("authorization")...)
			mu.Unlock()
		}
		return h(ctx, req)
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseServerOptions(temporal.WithChainedFrontendGrpcInterceptors(record)))
	p := newPKI(t)
	front := tlsFront(t, p, ts.GetFrontendHostPort())
	_, port, _ := net.SplitHostPort(front)
	base := config.Temporal{Address: "127.0.0.1:" + port, Namespace: ts.GetDefaultNamespace(),
		TLS: config.TLS{CAFile: p.caFile, CertFile: p.clientCertFile, KeyFile: p.clientKeyFile, ServerName: "temporal.test"}}

	dial := func(c config.Temporal, key string) error {
		o, err := worker.ClientOptions(c, key)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl, err := client.DialContext(ctx, o)
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = cl.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}

	if err := dial(base, "mp-api-key-123"); err != nil {
		t.Fatalf("mTLS with the right client certificate: %v", err)
	}
	mu.Lock()
	got := strings.Join(seenAuth, ",")
	mu.Unlock()
	if !strings.Contains(got, "Bearer mp-api-key-123") {
		t.Fatalf("API key not sent as a bearer credential; frontend saw authorization=%q", got)
	}

	stranger := base
	stranger.TLS.CertFile, stranger.TLS.KeyFile = p.strangerCertFile, p.strangerKeyFile
	if err := dial(stranger, ""); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	noCert := base
	noCert.TLS.CertFile, noCert.TLS.KeyFile = "", ""
	if err := dial(noCert, ""); err == nil {
		t.Fatal("no client certificate was accepted by an mTLS frontend")
	}
	wrongName := base
	wrongName.TLS.ServerName = "other.test"
	if err := dial(wrongName, ""); err == nil {
		t.Fatal("a server certificate for another name was accepted")
	}
}

func TestClientOptionsErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(junk, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		c    config.Temporal
		want string
	}{
		{config.Temporal{Address: "h:7233", TLS: config.TLS{CAFile: filepath.Join(dir, "missing.pem")}}, "temporal.tls.ca_file"},
		{config.Temporal{Address: "h:7233", TLS: config.TLS{CAFile: junk}}, "temporal.tls.ca_file"},
		{config.Temporal{Address: "h:7233", TLS: config.TLS{CertFile: junk}}, "temporal.tls.cert_file"},
		{config.Temporal{Address: "h:7233", TLS: config.TLS{CertFile: junk, KeyFile: junk}}, "temporal.tls.cert_file/key_file"},
	} {
		if _, err := worker.ClientOptions(tc.c, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: want error naming %s, got %v", tc.c.TLS, tc.want, err)
		}
	}
	// Plain by default; an API key alone switches TLS on.
	o, err := worker.ClientOptions(config.Temporal{Address: "h:7233"}, "")
	if err != nil || o.ConnectionOptions.TLS != nil {
		t.Fatalf("plain: %v %v", err, o.ConnectionOptions.TLS)
	}
	o, err = worker.ClientOptions(config.Temporal{Address: "tmprl.example:7233"}, "k")
	if err != nil || o.ConnectionOptions.TLS == nil || o.ConnectionOptions.TLS.ServerName != "tmprl.example" || o.Credentials == nil {
		t.Fatalf("API key must imply TLS: %v %+v", err, o.ConnectionOptions.TLS)
	}
	// Over loopback (modelplane dev's own frontend) the key goes as a header, in plain.
	o, err = worker.ClientOptions(config.Temporal{Address: "127.0.0.1:7233"}, "k")
	if err != nil || o.ConnectionOptions.TLS != nil || o.Credentials != nil || o.HeadersProvider == nil {
		t.Fatalf("loopback key: %v %+v", err, o)
	}
	if h, _ := o.HeadersProvider.GetHeaders(context.Background()); h["authorization"] != "Bearer k" {
		t.Fatalf("loopback key header = %v", h)
	}
}
