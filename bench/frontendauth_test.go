package bench

import (
	"context"
	"testing"
	"time"

	mpworker "github.com/modelplane/modelplane/worker"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/temporalserver"
)

// BenchmarkFrontendAuthSignal: one approve signal, client to accepted, on a
// frontend with modelplane's claim mapper, authorizer and principal stamp,
// against the same signal on a frontend without them; the two servers run
// side by side and the calls alternate, so load hits both alike.
// MODELPLANE_BENCH_SIGNALS signals per side (default 400).
func BenchmarkFrontendAuthSignal(b *testing.B) {
	loadNote(b)
	n := envInt(b, "MODELPLANE_BENCH_SIGNALS", 400)
	const svc, bob = "svc-bench-key", "tok-bob-bench"
	users, err := identity.NewTokens([]identity.TokenEntry{{Name: "bob", Roles: []string{modelplane.RoleApprover}, Teams: []string{"growth"}, SHA256: identity.Digest(bob)}})
	if err != nil {
		b.Fatal(err)
	}
	opts, err := (&temporalserver.Auth{Users: users, ServiceKeyDigests: []string{identity.Digest(svc)}}).ServerOptions()
	if err != nil {
		b.Fatal(err)
	}
	on := temporaltest.NewServer(temporaltest.WithBaseServerOptions(opts...), temporaltest.WithBaseClientOptions(client.Options{HeadersProvider: mpworker.Bearer(svc)}))
	defer on.Stop()
	off := temporaltest.NewServer()
	defer off.Stop()
	ctx := context.Background()
	// No worker polls: the signals are only accepted and appended, so what
	// is timed is the frontend and history path, not a workflow task.
	for _, ts := range []*temporaltest.TestServer{on, off} {
		if _, err := ts.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "signals", TaskQueue: "none"}, "Waits"); err != nil {
			b.Fatal(err)
		}
	}
	cOn := on.NewClientWithOptions(client.Options{HeadersProvider: mpworker.Bearer(bob)})
	cOff := off.GetDefaultClient()
	vote := map[string]string{"decision": "approve", "comment": "bench"}
	var withAuth, without []time.Duration
	b.ResetTimer()
	for i := 0; i < n; i++ {
		for _, side := range []struct {
			c   client.Client
			out *[]time.Duration
		}{{cOn, &withAuth}, {cOff, &without}} {
			start := time.Now()
			if err := side.c.SignalWorkflow(ctx, "signals", "", "approve", vote); err != nil {
				b.Fatal(err)
			}
			*side.out = append(*side.out, time.Since(start))
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n), "signals")
	b.ReportMetric(ms(pct(without, .5)), "off-p50-ms")
	b.ReportMetric(ms(pct(withAuth, .5)), "on-p50-ms")
	b.ReportMetric(ms(pct(without, .99)), "off-p99-ms")
	b.ReportMetric(ms(pct(withAuth, .99)), "on-p99-ms")
	b.ReportMetric(ms(pct(withAuth, .5)-pct(without, .5)), "added-p50-ms")
	b.ReportMetric(ms(pct(withAuth, .99)-pct(without, .99)), "added-p99-ms")
}
