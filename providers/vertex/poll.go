package vertex

import (
	"context"
	"fmt"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/modelplane/modelplane"
	"google.golang.org/grpc/codes"
)

// Poll reads the operation once: running, failed (with Vertex's message) or done.
func (p *Provider) Poll(ctx context.Context, t modelplane.Target, op modelplane.Op) (modelplane.OpStatus, error) {
	if !op.Pending() {
		return modelplane.OpStatus{Done: true}, nil
	}
	_, cl, err := p.setup(ctx, t)
	if err != nil {
		return modelplane.OpStatus{}, err
	}
	res, err := cl.endpoint.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: op.ID})
	if err != nil {
		return modelplane.OpStatus{}, wrap(err, "get operation %s (%s)", op.ID, op.What)
	}
	if !res.GetDone() {
		return modelplane.OpStatus{}, nil
	}
	if e := res.GetError(); e != nil {
		return modelplane.OpStatus{Done: true, Failed: true, Reason: fmt.Sprintf("%s: %s", codes.Code(e.GetCode()), e.GetMessage())}, nil
	}
	return modelplane.OpStatus{Done: true}, nil
}
