package vertex

import (
	"errors"
	"fmt"

	"github.com/modelplane/modelplane"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// code is the gRPC status code of an error from the Vertex AI clients.
func code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// message is the platform's own words for err.
func message(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// permanent are refusals that a retry cannot change: bad input, a missing
// resource that should exist, a conflicting one, missing permissions.
func permanent(c codes.Code) bool {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists,
		codes.OutOfRange, codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}

// wrap names what failed and quotes Vertex; permanent refusals wrap
// modelplane.ErrInvalid so Temporal stops retrying, everything else
// (Unavailable, ResourceExhausted, Internal, DeadlineExceeded, Aborted…)
// stays retryable.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	c := code(err)
	if permanent(c) {
		return fmt.Errorf("vertex: %s: %s: %q: %w", what, c, message(err), modelplane.ErrInvalid)
	}
	return fmt.Errorf("vertex: %s: %s: %q", what, c, message(err))
}

// invalid is a refusal of ours, before calling Vertex.
func invalid(format string, args ...any) error {
	return fmt.Errorf("vertex: %s: %w", fmt.Sprintf(format, args...), modelplane.ErrInvalid)
}

var errNoShadow = errors.New("vertex: Vertex AI has no shadow traffic")
