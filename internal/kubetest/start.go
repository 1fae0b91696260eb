package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"github.com/modelplane/modelplane/internal/proc"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Generous: on a loaded 2-core machine kube-apiserver needs 5–30 s to be ready.
const (
	readyTimeout = 120 * time.Second
	crdTimeout   = 120 * time.Second
)

func start(assets string) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "modelplane-kube-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := launch(dir, "etcd", filepath.Join(assets, "etcd"),
		"--name=kubetest",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		// Test data is thrown away: durability only costs time.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, etcd)

	token, err := writeAuth(dir)
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	api, err := launch(dir, "kube-apiserver", filepath.Join(assets, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+certDir,
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		// No controller manager runs, so nothing would ever create the token
		// a pod's service account needs; tests create no pods.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
	)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, api)

	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.waitReady(host, token, certDir, api, etcd); err != nil {
		return nil, err
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if err := c.installCRD(filepath.Join(assets, CRDFile)); err != nil {
		return nil, err
	}
	return c, nil
}

// writeAuth writes the service-account key pair and a static token file
// whose only user is an administrator, and returns that user's token.
func writeAuth(dir string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	line := token + `,admin,admin-uid,"system:masters"` + "\n"
	return token, os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(line), 0o600)
}

// waitReady waits for the self-signed serving certificate to appear and then
// for /readyz, failing early (with the logs) if a server exits.
func (c *Cluster) waitReady(host, token, certDir string, procs ...*proc.Proc) error {
	deadline := time.Now().Add(readyTimeout)
	crt := filepath.Join(certDir, "apiserver.crt")
	var last string
	for time.Now().Before(deadline) {
		for _, p := range procs {
			if p.Exited() {
				return fmt.Errorf("%s exited (%v); log:\n%s", p.Name, p.Err(), p.Tail())
			}
		}
		time.Sleep(200 * time.Millisecond)
		if c.Config == nil {
			ca, err := os.ReadFile(crt)
			if err != nil {
				last = "no serving certificate yet"
				continue
			}
			// The self-signed certificate names 127.0.0.1 and localhost.
			c.Config = &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
				QPS: 200, Burst: 400, Timeout: 30 * time.Second}
		}
		hc, err := rest.HTTPClientFor(c.Config)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := hc.Do(req)
		if err != nil {
			cancel()
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		cancel()
		if res.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("HTTP %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	return fmt.Errorf("kube-apiserver not ready after %s (last: %s); log:\n%s", readyTimeout, last, procs[0].Tail())
}

// Stop ends the servers and removes their data.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop()
	}
	c.procs = nil
	if c.Dir != "" && os.Getenv("MODELPLANE_KUBE_KEEP") == "" {
		os.RemoveAll(c.Dir)
	}
}
