package temporalserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	mpworker "github.com/modelplane/modelplane/worker"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/temporalserver"
)

const serviceKey = "svc-key-0123456789"

var userTokens = map[string]string{
	"alice":  "tok-alice-0123456789",
	"bob":    "tok-bob-0123456789",
	"audrey": "tok-audrey-0123456789",
	"admin":  "tok-admin-0123456789",
	"old":    "tok-old-0123456789",
}

// authServer is a real Temporal server whose frontend runs modelplane's
// claim mapper, authorizer and stamp; its default client and workers
// present the service key.
func authServer(t *testing.T) *temporaltest.TestServer {
	t.Helper()
	entry := func(name, role string, teams ...string) identity.TokenEntry {
		return identity.TokenEntry{Name: name, Roles: []string{role}, Teams: teams, SHA256: identity.Digest(userTokens[name])}
	}
	old := entry("old", modelplane.RoleApprover, "growth")
	old.Expires = time.Now().Add(-time.Hour)
	users, err := identity.NewTokens([]identity.TokenEntry{
		entry("alice", modelplane.RoleRequester, "growth"), entry("bob", modelplane.RoleApprover, "growth"),
		entry("audrey", modelplane.RoleAuditor), entry("admin", modelplane.RoleAdmin), old,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &temporalserver.Auth{Users: users, ServiceKeyDigests: []string{identity.Digest(serviceKey)}}
	opts, err := a.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	return temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseServerOptions(opts...),
		temporaltest.WithBaseClientOptions(client.Options{HeadersProvider: mpworker.Bearer(serviceKey)}))
}

// forging writes a principal header of the caller's choosing on every
// outbound signal and update, as a hostile client would.
type forging struct {
	interceptor.ClientInterceptorBase
	name string
}

func (f *forging) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &forgingOut{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, name: f.name}
}

type forgingOut struct {
	interceptor.ClientOutboundInterceptorBase
	name string
}

func (f *forgingOut) forge(ctx context.Context) {
	p, _ := converter.GetDefaultDataConverter().ToPayload(modelplane.Principal{Name: f.name, Roles: []string{modelplane.RoleApprover}, Method: modelplane.AuthOIDC})
	interceptor.Header(ctx)[modelplane.PrincipalHeader] = p
}

func (f *forgingOut) SignalWorkflow(ctx context.Context, in *interceptor.ClientSignalWorkflowInput) error {
	f.forge(ctx)
	return f.Next.SignalWorkflow(ctx, in)
}

func (f *forgingOut) UpdateWorkflow(ctx context.Context, in *interceptor.ClientUpdateWorkflowInput) (client.WorkflowUpdateHandle, error) {
	f.forge(ctx)
	return f.Next.UpdateWorkflow(ctx, in)
}

func clientAs(t *testing.T, ts *temporaltest.TestServer, token, forge string) client.Client {
	t.Helper()
	c, err := dialAs(t, ts, token, forge)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialAs connects with token; a frontend that refuses the token refuses
// the connection's first call.
func dialAs(t *testing.T, ts *temporaltest.TestServer, token, forge string) (client.Client, error) {
	o := client.Options{HostPort: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(), HeadersProvider: mpworker.Bearer(token)}
	if forge != "" {
		o.Interceptors = []interceptor.ClientInterceptor{&forging{name: forge}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, o)
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

// seen is what the test workflow observed: the stamp on each signal and
// on each update (validator and handler).
type seen struct {
	Signals   []string `json:"signals"`
	Validated []string `json:"validated"`
	Updates   []string `json:"updates"`
}

// stampOf reads the principal header as workflow code can.
func stampOf(h map[string]*commonpb.Payload) string {
	raw, ok := h[modelplane.PrincipalHeader]
	if !ok {
		return "<none>"
	}
	var p modelplane.Principal
	if err := converter.GetDefaultDataConverter().FromPayload(raw, &p); err != nil {
		return "<unreadable>"
	}
	return p.Name + "/" + p.Method + "/" + strings.Join(p.Teams, "+")
}

// signalHeaders records the header of each signal, which the SDK shows
// only to HandleSignal: this pins the behaviour modelplane relies on.
type signalHeaders struct {
	interceptor.WorkerInterceptorBase
	out *[]string
}

func (s *signalHeaders) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &signalHeadersIn{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, out: s.out}
}

type signalHeadersIn struct {
	interceptor.WorkflowInboundInterceptorBase
	out *[]string
}

func (s *signalHeadersIn) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	*s.out = append(*s.out, stampOf(interceptor.WorkflowHeader(ctx)))
	return s.Next.HandleSignal(ctx, in)
}

func TestFrontendStampsVerifiedPrincipal(t *testing.T) {
	ts := authServer(t)
	var signals []string
	w := ts.NewWorkerWithOptions("stamp", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context) (seen, error) {
			var s seen
			if err := workflow.SetQueryHandler(ctx, "seen", func() (seen, error) { s.Signals = signals; return s, nil }); err != nil {
				return s, err
			}
			if err := workflow.SetUpdateHandlerWithOptions(ctx, "approve", func(ctx workflow.Context, _ string) (string, error) {
				s.Updates = append(s.Updates, stampOf(interceptor.WorkflowHeader(ctx)))
				return "ok", nil
			}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, _ string) error {
				s.Validated = append(s.Validated, stampOf(interceptor.WorkflowHeader(ctx)))
				return nil
			}}); err != nil {
				return s, err
			}
			ch := workflow.GetSignalChannel(ctx, "approve")
			for i := 0; i < 3; i++ {
				ch.Receive(ctx, nil)
			}
			err := workflow.Await(ctx, func() bool { return len(s.Updates) == 2 })
			s.Signals = signals
			return s, err
		}, workflow.RegisterOptions{Name: "Stamp"})
	}, worker.Options{Interceptors: []interceptor.WorkerInterceptor{&signalHeaders{out: &signals}}})
	_ = w

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := ts.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "stamp-1", TaskQueue: "stamp"}, "Stamp")
	if err != nil {
		t.Fatal(err)
	}
	// bob forges carol; alice forges bob; the service forges nobody.
	bob, alice := clientAs(t, ts, userTokens["bob"], "carol"), clientAs(t, ts, userTokens["alice"], "bob")
	for _, c := range []client.Client{bob, alice, ts.GetDefaultClient()} {
		if err := c.SignalWorkflow(ctx, "stamp-1", "", "approve", "x"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []client.Client{bob, alice} {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: "stamp-1", UpdateName: "approve", Args: []any{"x"}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got seen
	if err := run.Get(ctx, &got); err != nil {
		t.Fatal(err)
	}
	want := seen{
		Signals:   []string{"bob/token/growth", "alice/token/growth", "modelplane/system/"},
		Validated: []string{"bob/token/growth", "alice/token/growth"},
		Updates:   []string{"bob/token/growth", "alice/token/growth"},
	}
	if strings.Join(got.Signals, " ") != strings.Join(want.Signals, " ") || strings.Join(got.Validated, " ") != strings.Join(want.Validated, " ") ||
		strings.Join(got.Updates, " ") != strings.Join(want.Updates, " ") {
		t.Fatalf("stamps seen by the workflow:\n got %+v\nwant %+v", got, want)
	}
}

func permissionDenied(err error) bool {
	var pd *serviceerror.PermissionDenied
	return errors.As(err, &pd)
}

func TestFrontendAuthorizer(t *testing.T) {
	ts := authServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = ts.NewWorker("idle", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			workflow.GetSignalChannel(ctx, "approve").Receive(ctx, nil)
			return workflow.Await(ctx, func() bool { return false })
		}, workflow.RegisterOptions{Name: "Idle"})
	})
	if _, err := ts.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "idle-1", TaskQueue: "idle"}, "Idle"); err != nil {
		t.Fatalf("the service key may start workflows: %v", err)
	}
	describe := func(c client.Client) error { _, err := c.DescribeWorkflowExecution(ctx, "idle-1", ""); return err }
	signal := func(c client.Client) error { return c.SignalWorkflow(ctx, "idle-1", "", "approve", "x") }
	terminate := func(c client.Client) error { return c.TerminateWorkflow(ctx, "idle-1", "", "test") }
	start := func(c client.Client) error {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "idle-2", TaskQueue: "idle"}, "Idle")
		return err
	}
	for _, tc := range []struct {
		who, token string
		call       func(client.Client) error
		allowed    bool
	}{
		{"nobody", "", describe, false},
		{"nobody", "", signal, false},
		{"a made-up token", "tok-nobody", describe, false},
		{"a forged JWT", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln", signal, false},
		{"an expired token", userTokens["old"], describe, false},
		{"audrey (auditor)", userTokens["audrey"], describe, true},
		{"audrey (auditor)", userTokens["audrey"], signal, false},
		{"alice (requester)", userTokens["alice"], start, false},
		{"bob (approver)", userTokens["bob"], terminate, false},
		{"bob (approver)", userTokens["bob"], signal, true},
		{"admin", userTokens["admin"], terminate, true},
	} {
		c, err := dialAs(t, ts, tc.token, "")
		if err == nil {
			err = tc.call(c)
		}
		switch {
		case tc.allowed && err != nil:
			t.Errorf("%s: refused: %v", tc.who, err)
		case !tc.allowed && !permissionDenied(err):
			t.Errorf("%s: want PermissionDenied, got %v", tc.who, err)
		}
	}
}
