package vertextest

import (
	"context"
	"maps"
	"slices"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// lro is a long-running operation: apply runs when it finishes (and returns
// the response), undo when it fails (releasing what the start reserved).
type lro struct {
	op    *longrunningpb.Operation
	kind  string
	seq   int // start order
	polls int
	fail  string
	apply func() proto.Message
	undo  func()
}

// startOp registers an operation under parent (a resource name) and
// finishes it at once when polls is 0. The caller holds s.mu.
func (s *Server) startOp(parent, kind string, metadata proto.Message, apply func() proto.Message, undo func()) (*longrunningpb.Operation, error) {
	md, err := anypb.New(metadata)
	if err != nil {
		return nil, err
	}
	id := s.nextID()
	l := &lro{
		op:   &longrunningpb.Operation{Name: parent + "/operations/" + id, Metadata: md},
		kind: kind, seq: s.seq, apply: apply, undo: undo, fail: s.failOp[kind],
	}
	delete(s.failOp, kind)
	s.ops[l.op.Name] = l
	if s.polls == 0 {
		if err := s.finish(l); err != nil {
			return nil, err
		}
	}
	return proto.Clone(l.op).(*longrunningpb.Operation), nil
}

func (s *Server) finish(l *lro) error {
	l.op.Done = true
	if l.fail != "" {
		if l.undo != nil {
			l.undo()
		}
		l.op.Result = &longrunningpb.Operation_Error{Error: &status.Status{Code: int32(codes.Internal), Message: l.fail}}
		return nil
	}
	resp, err := anypb.New(l.apply())
	if err != nil {
		return err
	}
	l.op.Result = &longrunningpb.Operation_Response{Response: resp}
	return nil
}

type operationsService struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

// GetOperation counts a poll; the poll that reaches the server's count finishes the operation.
func (o *operationsService) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.ops[req.GetName()]
	if !ok {
		return nil, errf(codes.NotFound, "operation %q not found", req.GetName())
	}
	if !l.op.Done {
		l.polls++
		if l.polls >= s.polls {
			if err := s.finish(l); err != nil {
				return nil, err
			}
		}
	}
	return proto.Clone(l.op).(*longrunningpb.Operation), nil
}

// FinishAll finishes every running operation, as time passing would on
// the real service: for operations nobody polls (their start reply was lost).
func (s *Server) FinishAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	running := slices.SortedFunc(maps.Values(s.ops), func(a, b *lro) int { return a.seq - b.seq })
	for _, l := range running {
		if !l.op.Done {
			if err := s.finish(l); err != nil {
				return err
			}
		}
	}
	return nil
}
