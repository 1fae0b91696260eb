// Package sagemaker runs modelplane rollouts on Amazon SageMaker real-time
// endpoints: the model registry (model package groups) mirrors lifecycle
// stages, endpoint configs carry one production variant per version, canary
// steps move variant weights, shadows are inference experiments, native
// rollouts are blue/green updates with alarm-driven auto-rollback, health
// comes from CloudWatch and retraining starts a SageMaker Pipeline.
package sagemaker

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/modelplane/modelplane"
)

// Name is the provider name targets use.
const Name = "sagemaker"

// Options configure how the provider reaches AWS. The zero value is the
// production setup: the default credential chain and endpoint resolution
// (AWS_ENDPOINT_URL_SAGEMAKER / AWS_ENDPOINT_URL_CLOUDWATCH are honoured).
type Options struct {
	// BaseEndpoint sends SageMaker and CloudWatch requests to one URL (a stand-in).
	BaseEndpoint string
	// Credentials, when set, replace the default chain (no shared config is read).
	Credentials aws.CredentialsProvider
	// MaxAttempts per SDK call; default 3. Temporal's retry policy does the
	// real retrying, the SDK only smooths over blips.
	MaxAttempts int
	// NoBackoff retries at once (tests).
	NoBackoff bool
	// HTTPClient overrides the SDK's HTTP client.
	HTTPClient *http.Client
	// Now is the clock used for metric windows; default time.Now.
	Now func() time.Time
}

// Provider is the SageMaker platform. It keeps no state of its own: what it
// needs between calls lives on the SageMaker resources (names, tags).
type Provider struct {
	opts Options

	mu      sync.Mutex
	clients map[string]*clients
}

type clients struct {
	sm *sm.Client
	cw *cloudwatch.Client
}

var (
	_ modelplane.Provider      = (*Provider)(nil)
	_ modelplane.NativeRollout = (*Provider)(nil)
	_ modelplane.Stager        = (*Provider)(nil)
	_ modelplane.Retrainer     = (*Provider)(nil)
)

// New returns a provider; clients are built per region on first use.
func New(o Options) *Provider {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Provider{opts: o, clients: map[string]*clients{}}
}

func (p *Provider) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = p.opts.MaxAttempts
		// No client-side retry quota: a burst of throttling must not make the
		// SDK refuse calls for minutes; Temporal spaces the retries out.
		o.RateLimiter = ratelimit.None
		o.MaxBackoff = 2 * time.Second
		if p.opts.NoBackoff {
			o.Backoff = noBackoff{}
		}
	})
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// client returns the cached clients for a region.
func (p *Provider) client(ctx context.Context, region string) (*clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c, nil
	}
	var cfg aws.Config
	if p.opts.Credentials != nil {
		// Explicit credentials: build the config by hand so nothing is read
		// from the host's ~/.aws.
		cfg = aws.Config{Region: region, Credentials: p.opts.Credentials}
	} else {
		var err error
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("sagemaker: loading AWS configuration for %s: %w", region, err)
		}
	}
	cfg.Retryer = p.retryer
	if p.opts.HTTPClient != nil {
		cfg.HTTPClient = p.opts.HTTPClient
	}
	c := &clients{
		sm: sm.NewFromConfig(cfg, func(o *sm.Options) {
			if p.opts.BaseEndpoint != "" {
				o.BaseEndpoint = aws.String(p.opts.BaseEndpoint)
			}
		}),
		cw: cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
			if p.opts.BaseEndpoint != "" {
				o.BaseEndpoint = aws.String(p.opts.BaseEndpoint)
			}
		}),
	}
	p.clients[region] = c
	return c, nil
}

// session is one call's validated config plus clients.
type session struct {
	*clients
	cfg    targetConfig
	target modelplane.Target
	model  string
}

func (p *Provider) session(ctx context.Context, t modelplane.Target, model string) (*session, error) {
	cfg, err := parseConfig(t, model)
	if err != nil {
		return nil, err
	}
	c, err := p.client(ctx, cfg.Region)
	if err != nil {
		return nil, err
	}
	return &session{clients: c, cfg: cfg, target: t, model: model}, nil
}
