// Package kserve serves models as KServe InferenceServices (serverless mode)
// through the Kubernetes API.
//
// One InferenceService per model per namespace, written with server-side
// apply. A canary is spec.predictor.canaryTrafficPercent: KServe splits
// traffic between the last rolled-out revision and the revision built from
// the current spec; removing the field promotes, setting it to 0 rolls back
// (pins the previous revision). Our versions are storageUris. What Kubernetes
// cannot tell us — which version a revision runs, which mutation ids were
// applied — is kept in annotations on the InferenceService, and the registered
// versions in a ConfigMap per model, so a restarted worker loses nothing.
//
// There is no request mirroring in KServe, so the provider implements modelplane.NoShadow.
package kserve

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/modelplane/modelplane"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Name is the provider name targets use.
const Name = "kserve"

// FieldManager owns the fields modelplane applies.
const FieldManager = "modelplane"

// Options configure the provider.
type Options struct {
	// RestConfig, if set, is used for every target (tests); otherwise each
	// target's kubeconfig/context, the default loading rules (KUBECONFIG,
	// ~/.kube/config) or the in-cluster config.
	RestConfig *rest.Config
	// Getenv reads the Prometheus secrets targets name (default os.Getenv).
	Getenv func(string) string
	// PrometheusHTTP is the HTTP client for Prometheus (default http.DefaultClient).
	PrometheusHTTP *http.Client
}

// Provider is the KServe serving platform.
type Provider struct {
	opts Options

	mu      sync.Mutex
	clients map[string]dynamic.Interface
}

var (
	_ modelplane.Provider = (*Provider)(nil)
	_ modelplane.NoShadow = (*Provider)(nil)
)

// New returns a provider. Clients are made on first use per kubeconfig/context.
func New(o Options) *Provider {
	return &Provider{opts: o, clients: map[string]dynamic.Interface{}}
}

// client returns the (cached) dynamic client for the target's cluster.
func (p *Provider) client(c config) (dynamic.Interface, error) {
	key := c.kubeconfig + "\x00" + c.context
	p.mu.Lock()
	defer p.mu.Unlock()
	if dc, ok := p.clients[key]; ok {
		return dc, nil
	}
	rc := p.opts.RestConfig
	if rc == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if c.kubeconfig != "" {
			rules.ExplicitPath = c.kubeconfig
		}
		// Falls back to the in-cluster config when no kubeconfig is found.
		loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.context})
		var err error
		if rc, err = loader.ClientConfig(); err != nil {
			return nil, fmt.Errorf("kserve: kubernetes client config (config.kubeconfig %q, config.context %q): %w", c.kubeconfig, c.context, err)
		}
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "modelplane-kserve"
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kserve: kubernetes client: %w", err)
	}
	p.clients[key] = dc
	return dc, nil
}

func (p *Provider) setup(t modelplane.Target, model string) (config, dynamic.Interface, error) {
	c, err := parseConfig(t, model)
	if err != nil {
		return c, nil, err
	}
	dc, err := p.client(c)
	return c, dc, err
}
