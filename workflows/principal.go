package workflows

import (
	"github.com/modelplane/modelplane"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// Stamped principals: modelplane's Temporal frontend verifies the caller of
// every signal and update and writes who it is in the PrincipalHeader. The
// SDK shows an update's header to its validator and handler, but strips a
// signal's before the signal reaches its channel; this interceptor keeps
// the stamps of approval signals in arrival order so the receiver can pair
// each vote with its sender. Everything here is replayed from history.

// Interceptor hands stamped principals to the workflows. Register it on the
// worker (and the replayer) that runs them.
func Interceptor() interceptor.WorkerInterceptor { return &stampInterceptor{} }

type stampInterceptor struct {
	interceptor.WorkerInterceptorBase
}

func (*stampInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &stampInbound{q: &stampQueue{}}
	i.Next = next
	return i
}

type stampInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	q *stampQueue
}

// stampQueue holds the stamps of approve signals not yet received, in order.
type stampQueue struct{ stamps []*modelplane.Principal }

type stampQueueKey struct{}

func (i *stampInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	return i.Next.ExecuteWorkflow(workflow.WithValue(ctx, stampQueueKey{}, i.q), in)
}

func (i *stampInbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	if in.SignalName == Approve {
		i.q.stamps = append(i.q.stamps, principalFrom(interceptor.WorkflowHeader(ctx)))
	}
	return i.Next.HandleSignal(ctx, in)
}

// signalStamp is the stamp of the approve signal just received: nil when
// it carried none (a frontend that does not stamp, or no interceptor).
func signalStamp(ctx workflow.Context) *modelplane.Principal {
	q, _ := ctx.Value(stampQueueKey{}).(*stampQueue)
	if q == nil || len(q.stamps) == 0 {
		return nil
	}
	p := q.stamps[0]
	q.stamps = q.stamps[1:]
	return p
}

// updateStamp is the stamp on the update whose validator or handler runs with ctx.
func updateStamp(ctx workflow.Context) *modelplane.Principal {
	return principalFrom(interceptor.WorkflowHeader(ctx))
}

func principalFrom(h map[string]*commonpb.Payload) *modelplane.Principal {
	raw, ok := h[modelplane.PrincipalHeader]
	if !ok {
		return nil
	}
	var p modelplane.Principal
	if err := converter.GetDefaultDataConverter().FromPayload(raw, &p); err != nil || p.Name == "" {
		// A header the frontend did not write: present but unreadable means
		// someone forged it where no frontend stamps; trust nothing in it.
		return &modelplane.Principal{Name: "", Method: modelplane.AuthUI}
	}
	return &p
}

// attribute decides who a vote is from. A person stamped by the frontend is
// the voter, whatever name the payload types. modelplane's own service
// (the API, which authenticated the caller itself) vouches for the payload.
// Without a stamp the payload is an unverified claim, as before stamping.
func attribute(v Vote, stamp *modelplane.Principal) Vote {
	if stamp == nil || stamp.Method == modelplane.AuthSystem {
		return v
	}
	v.Approver, v.Teams, v.Roles, v.Method = stamp.Name, stamp.Teams, stamp.Roles, stamp.Method
	if v.Method == "" || v.Method == modelplane.AuthSystem {
		v.Method = modelplane.AuthUI
	}
	v.PolicyDecision = ""
	return v
}
