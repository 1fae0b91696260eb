package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/gateway"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/mcp"
	"github.com/modelplane/modelplane/providers/mcp/mcptest"
	"github.com/modelplane/modelplane/store"
)

// BenchmarkMCPGateway: an echo tool called directly with the go-sdk client
// against the same tool called through the gateway (token check, policy
// decision, content checks on arguments and result, batched audit record),
// at 1, 8 and 32 concurrent clients, each call with distinct arguments.
// Direct and gateway calls alternate in blocks, so both see the same load.
// Reported: p50 and p99 of each side, the difference (what the gateway
// adds), and calls per second through the gateway as a share of direct.
func BenchmarkMCPGateway(b *testing.B) {
	loadNote(b)
	const server = "io.github.bench/echo"
	upURL, _ := mcptest.Serve(b, mcptest.ServerSpec{Name: "echo", Tools: []mcptest.Tool{mcptest.Echo()}})
	ctx := context.Background()
	st, err := store.Open(filepath.Join(b.TempDir(), "mp.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := mcp.Validate(ctx, upURL, mcp.Options{})
	if err != nil || !r.Passed {
		b.Fatalf("validate: %v", err)
	}
	if _, err := st.CreateMCPServer(ctx, modelplane.MCPServer{Name: server, Version: "1.0.0", Description: "echo", RemoteURL: "https://echo.example.com/mcp",
		ValidateURL: upURL, Owner: "o", Team: "growth", RiskTier: modelplane.RiskLow, CreatedBy: "o"}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.UpdateMCPServer(ctx, server, "1.0.0", func(m *modelplane.MCPServer) {
		m.Status, m.Contract, m.ContractHash = modelplane.MCPActive, r.Fingerprints, r.ContractHash
	}); err != nil {
		b.Fatal(err)
	}
	if err := st.PutChannel(ctx, modelplane.MCPChannel{Server: server, Channel: "prod", Version: "1.0.0"}); err != nil {
		b.Fatal(err)
	}
	pol, err := policy.New("")
	if err != nil {
		b.Fatal(err)
	}
	const secret = "bench-token-0123456789"
	toks, err := identity.NewTokens([]identity.TokenEntry{{Name: "agent", Teams: []string{"growth"}, Roles: []string{modelplane.RoleRequester}, SHA256: identity.Digest(secret)}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	gw, err := gateway.New(gateway.Config{Store: st, Policy: pol, Auth: toks, Resource: srv.URL + "/mcp"})
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	srv.Config.Handler = gw

	connect := func(endpoint string, hc *http.Client) *sdk.ClientSession {
		c := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1},
			&sdk.ClientSessionOptions{ProtocolVersion: mcp.ProtocolVersion})
		if err != nil {
			b.Fatal(err)
		}
		return cs
	}
	authed := &http.Client{Transport: bearerRT{secret}}
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			direct := make([]*sdk.ClientSession, clients)
			through := make([]*sdk.ClientSession, clients)
			for i := range clients {
				direct[i] = connect(upURL, http.DefaultClient)
				through[i] = connect(srv.URL+"/mcp/"+server, authed)
			}
			defer func() {
				for i := range clients {
					direct[i].Close()
					through[i].Close()
				}
			}()
			perBlock, blocks := 50*clients, 10
			if clients == 1 {
				perBlock = 200
			}
			var seq atomic.Int64
			run := func(sessions []*sdk.ClientSession) ([]time.Duration, time.Duration) {
				lat := make([]time.Duration, perBlock)
				var next atomic.Int64
				var wg sync.WaitGroup
				t0 := time.Now()
				for _, cs := range sessions {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(perBlock) {
								return
							}
							text := fmt.Sprintf("call %d of the benchmark", seq.Add(1))
							s := time.Now()
							res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
							lat[i] = time.Since(s)
							if err != nil || res.IsError || res.Content[0].(*sdk.TextContent).Text != text {
								b.Errorf("call: %v %+v", err, res)
								return
							}
						}
					}()
				}
				wg.Wait()
				return lat, time.Since(t0)
			}
			run(direct) // warm both paths
			run(through)
			var dl, gl []time.Duration
			var dw, gwall time.Duration
			for range blocks {
				l, w := run(direct)
				dl, dw = append(dl, l...), dw+w
				l, w = run(through)
				gl, gwall = append(gl, l...), gwall+w
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(len(gl)), "calls")
			b.ReportMetric(ms(pct(dl, .5)), "direct-p50-ms")
			b.ReportMetric(ms(pct(dl, .99)), "direct-p99-ms")
			b.ReportMetric(ms(pct(gl, .5)), "gateway-p50-ms")
			b.ReportMetric(ms(pct(gl, .99)), "gateway-p99-ms")
			b.ReportMetric(ms(pct(gl, .5)-pct(dl, .5)), "added-p50-ms")
			b.ReportMetric(ms(pct(gl, .99)-pct(dl, .99)), "added-p99-ms")
			b.ReportMetric((float64(len(gl))/gwall.Seconds())/(float64(len(dl))/dw.Seconds()), "throughput-ratio")
		})
	}
	gw.SyncAudit()
	if brk, n, err := st.VerifyAudit(ctx); err != nil || brk != nil {
		b.Fatalf("audit chain after the benchmark: %v %v (%d records)", brk, err, n)
	}
}

type bearerRT struct{ tok string }

func (t bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.tok)
	return http.DefaultTransport.RoundTrip(r)
}
