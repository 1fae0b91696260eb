package api

import "context"

type viaKey struct{}

// WithVia marks a request made in-process by another face of modelplane
// (the console), so votes record where they were cast. It is a context
// value, not a header: no outside caller can set it.
func WithVia(ctx context.Context, via string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

// viaOf is the channel a request came through: "api" unless marked.
func viaOf(ctx context.Context) string {
	if v, ok := ctx.Value(viaKey{}).(string); ok && v != "" {
		return v
	}
	return "api"
}
