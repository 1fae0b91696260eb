package worker_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/worker"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
)

// TestLoopbackCallsAreNotCompressed: to a frontend on this machine the
// client sends a workflow's input as it is; gzip would shrink this one to
// a few KiB.
func TestLoopbackCallsAreNotCompressed(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sent, addr := forward(t, l, ts.GetFrontendHostPort(), nil), l.Addr().String()
	o, err := worker.ClientOptions(config.Temporal{Address: addr, Namespace: ts.GetDefaultNamespace()}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	input := strings.Repeat("modelplane ", 24<<10) // 264 KiB, compresses to about 1 KiB
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "big-input", TaskQueue: "nobody"}, "Anything", input); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The proxy counts a connection's bytes once it closes.
	deadline := time.Now().Add(5 * time.Second)
	for sent.Load() < int64(len(input)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := sent.Load(); n < int64(len(input)) {
		t.Fatalf("the client sent %d bytes for a %d-byte input: compressed on loopback", n, len(input))
	}
}
