package modelplane

import (
	"context"
	"errors"
	"time"
)

// Health is what a provider measured for one version over a window.
// NoData means nothing was observed: analysis treats it as inconclusive, never as a pass.
type Health struct {
	Version      string  `json:"version"`
	Requests     int64   `json:"requests"`
	ErrorRate    float64 `json:"error_rate"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	Drift        float64 `json:"drift"`
	NoData       bool    `json:"no_data,omitempty"`
}

// Shadow is a candidate receiving mirrored requests whose answers are discarded.
type Shadow struct {
	Version string `json:"version"`
	Percent int    `json:"percent"`
}

// EndpointState is what a provider reports for a model on a target.
type EndpointState struct {
	Traffic TrafficSplit `json:"traffic"`
	Shadow  *Shadow      `json:"shadow,omitempty"`
	// Versions are deployed (warm) on the endpoint, serving or not.
	Versions []string `json:"versions"`
}

// Provider is a serving platform. Every mutation carries a mutationID chosen
// deterministically by the workflow: a provider applies each id at most once,
// so a retried activity never moves traffic twice.
type Provider interface {
	RegisterVersion(ctx context.Context, t Target, v Version) error
	SetTraffic(ctx context.Context, t Target, model string, split TrafficSplit, mutationID string) error
	StartShadow(ctx context.Context, t Target, model string, s Shadow, mutationID string) error
	StopShadow(ctx context.Context, t Target, model string, mutationID string) error
	State(ctx context.Context, t Target, model string) (EndpointState, error)
	Health(ctx context.Context, t Target, model, version string, window time.Duration) (Health, error)
	Retire(ctx context.Context, t Target, model, version string) error
}

// Providers resolves a target's provider by name.
type Providers interface {
	Provider(name string) (Provider, error)
}

// ErrInvalid marks a request a provider refuses for good: retrying cannot help.
var ErrInvalid = errors.New("invalid request")

// ProviderSet is a Providers backed by a map.
type ProviderSet map[string]Provider

// Provider returns the named provider.
func (s ProviderSet) Provider(name string) (Provider, error) {
	if p, ok := s[name]; ok {
		return p, nil
	}
	return nil, Errorf(EInvalid, "unknown provider %q", name)
}
