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
	i := &stampInbound{}
	i.Next = next
	// Only promotions receive people's signals; the guardian's "rollback"
	// comes from promotions and the API, and nothing would take its stamps.
	if workflow.GetInfo(ctx).WorkflowType.Name == PromotionWorkflow {
		i.q = &stampQueue{stamps: map[string][]*modelplane.Principal{}}
	}
	return i
}

type stampInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	q *stampQueue
}

// stampQueue holds, per signal name, the stamps of signals not yet
// received, in order (approve, rollback and decide: the signals a person sends).
type stampQueue struct {
	stamps map[string][]*modelplane.Principal
}

// stamped are the signals whose senders are kept.
var stamped = map[string]bool{Approve: true, Rollback: true, Decide: true}

type stampQueueKey struct{}

func (i *stampInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	if i.q != nil {
		ctx = workflow.WithValue(ctx, stampQueueKey{}, i.q)
	}
	return i.Next.ExecuteWorkflow(ctx, in)
}

func (i *stampInbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	if i.q != nil && stamped[in.SignalName] {
		i.q.stamps[in.SignalName] = append(i.q.stamps[in.SignalName], principalFrom(interceptor.WorkflowHeader(ctx)))
	}
	return i.Next.HandleSignal(ctx, in)
}

// signalStamp is the stamp of the signal called name just received: nil
// when it carried none (a frontend that does not stamp, or no interceptor).
// Every receive of a stamped signal must call it once, to stay in step.
func signalStamp(ctx workflow.Context, name string) *modelplane.Principal {
	q, _ := ctx.Value(stampQueueKey{}).(*stampQueue)
	if q == nil || len(q.stamps[name]) == 0 {
		return nil
	}
	p := q.stamps[name][0]
	q.stamps[name] = q.stamps[name][1:]
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

// actor is who asked for a rollback or a decision: the stamped person, or
// the typed name when modelplane's service (the API) or nobody stamped it.
func actor(typed string, stamp *modelplane.Principal) string {
	if stamp == nil || stamp.Method == modelplane.AuthSystem {
		return typed
	}
	return stamp.Name
}
