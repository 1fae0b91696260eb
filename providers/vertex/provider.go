// Package vertex is the Vertex AI provider: model versions live in the Model
// Registry (UploadModel with ParentModel, aliases mirroring our stages),
// traffic moves on an Endpoint (DeployModel for a new version, a synchronous
// UpdateEndpoint traffic_split for every later step), health comes from
// Cloud Monitoring and retraining starts a PipelineJob.
//
// Long-running operations are never waited on: a mutation returns the
// operation's name and the workflow polls it with Poll.
package vertex

import (
	"context"
	"errors"
	"sync"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"github.com/modelplane/modelplane"
	monitoring "google.golang.org/api/monitoring/v3"
	"google.golang.org/api/option"
)

// Name is the provider name targets use.
const Name = "vertex"

// Options configure how the provider reaches Google Cloud. The zero value
// is production: Application Default Credentials and the regional endpoint
// <location>-aiplatform.googleapis.com:443.
type Options struct {
	// ClientOptions are appended to every Vertex AI client's options, so a
	// WithEndpoint here overrides the regional endpoint (tests point it at
	// the vertextest stand-in, without authentication).
	ClientOptions []option.ClientOption
	// MonitoringOptions are given to the Cloud Monitoring client
	// (tests: WithEndpoint of the stand-in and WithoutAuthentication).
	MonitoringOptions []option.ClientOption
}

// Provider is Vertex AI. It is safe for concurrent use.
type Provider struct {
	opts Options

	mu      sync.Mutex
	clients map[string]*clients // by location
	mon     *monitoring.Service
}

type clients struct {
	model    *aiplatform.ModelClient
	endpoint *aiplatform.EndpointClient
	pipeline *aiplatform.PipelineClient
}

var (
	_ modelplane.Provider  = (*Provider)(nil)
	_ modelplane.NoShadow  = (*Provider)(nil)
	_ modelplane.Stager    = (*Provider)(nil)
	_ modelplane.Retrainer = (*Provider)(nil)
)

// New returns a provider; clients are dialled on first use per location.
func New(opts Options) *Provider {
	return &Provider{opts: opts, clients: map[string]*clients{}}
}

// clientsFor returns the cached clients of a region. Vertex AI serves each
// region from its own endpoint, so a provider keeps one set per location.
func (p *Provider) clientsFor(ctx context.Context, location string) (*clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[location]; ok {
		return c, nil
	}
	opts := append([]option.ClientOption{option.WithEndpoint(location + "-aiplatform.googleapis.com:443")}, p.opts.ClientOptions...)
	// The clients outlive the call that created them.
	ctx = context.WithoutCancel(ctx)
	mc, err := aiplatform.NewModelClient(ctx, opts...)
	if err != nil {
		return nil, err
	}
	ec, err := aiplatform.NewEndpointClient(ctx, opts...)
	if err != nil {
		mc.Close()
		return nil, err
	}
	pc, err := aiplatform.NewPipelineClient(ctx, opts...)
	if err != nil {
		mc.Close()
		ec.Close()
		return nil, err
	}
	c := &clients{model: mc, endpoint: ec, pipeline: pc}
	p.clients[location] = c
	return c, nil
}

func (p *Provider) monitoring(ctx context.Context) (*monitoring.Service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mon != nil {
		return p.mon, nil
	}
	svc, err := monitoring.NewService(context.WithoutCancel(ctx), p.opts.MonitoringOptions...)
	if err != nil {
		return nil, err
	}
	p.mon = svc
	return svc, nil
}

// Close releases the clients.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for loc, c := range p.clients {
		errs = append(errs, c.model.Close(), c.endpoint.Close(), c.pipeline.Close())
		delete(p.clients, loc)
	}
	return errors.Join(errs...)
}

// setup validates the target and returns its config and clients.
func (p *Provider) setup(ctx context.Context, t modelplane.Target) (config, *clients, error) {
	c, err := parseConfig(t)
	if err != nil {
		return c, nil, err
	}
	cl, err := p.clientsFor(ctx, c.location)
	if err != nil {
		return c, nil, err
	}
	return c, cl, nil
}
