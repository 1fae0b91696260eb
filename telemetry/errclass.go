package telemetry

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/modelplane/modelplane"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error classes used as the code label of provider errors. Coarse on purpose:
// provider SDKs have hundreds of error codes, an alert needs a dozen.
const (
	ClassTimeout     = "timeout"
	ClassCanceled    = "canceled"
	ClassThrottled   = "throttled"
	ClassAuth        = "auth"
	ClassNotFound    = "not_found"
	ClassInvalid     = "invalid"
	ClassConflict    = "conflict"
	ClassUnavailable = "unavailable"
	ClassInternal    = "internal"
	ClassNetwork     = "network"
	ClassOther       = "other"
)

// ErrorClass maps err to one of the Class constants, "" for nil. It looks,
// in order, at context errors, modelplane domain errors, gRPC statuses (GCP),
// service error codes (AWS smithy), HTTP status codes, then network errors.
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.Canceled) {
		return ClassCanceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ClassTimeout
	}
	var me *modelplane.Error
	if errors.As(err, &me) {
		switch me.Code {
		case modelplane.ENotFound:
			return ClassNotFound
		case modelplane.EInvalid:
			return ClassInvalid
		case modelplane.EConflict:
			return ClassConflict
		case modelplane.EUnauthorized, modelplane.EForbidden:
			return ClassAuth
		}
	}
	if errors.Is(err, modelplane.ErrInvalid) {
		return ClassInvalid
	}
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) {
		if c := grpcClass(gs.GRPCStatus().Code()); c != "" {
			return c
		}
	}
	// AWS signals throttling and auth failures as 400s with a code, so the
	// code is read before the status.
	var ec interface{ ErrorCode() string }
	if errors.As(err, &ec) {
		if c := awsCodeClass(ec.ErrorCode()); c != "" {
			return c
		}
	}
	if code := httpStatus(err); code != 0 {
		return httpClass(code)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ClassTimeout
		}
		return ClassNetwork
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ClassNetwork
	}
	return ClassOther
}

func grpcClass(c codes.Code) string {
	switch c {
	case codes.OK:
		return ""
	case codes.Canceled:
		return ClassCanceled
	case codes.DeadlineExceeded:
		return ClassTimeout
	case codes.ResourceExhausted:
		return ClassThrottled
	case codes.Unauthenticated, codes.PermissionDenied:
		return ClassAuth
	case codes.NotFound:
		return ClassNotFound
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return ClassInvalid
	case codes.AlreadyExists, codes.Aborted:
		return ClassConflict
	case codes.Unavailable:
		return ClassUnavailable
	case codes.Internal, codes.DataLoss, codes.Unimplemented:
		return ClassInternal
	}
	// Unknown: often a wrapped non-gRPC error; let the other probes decide.
	return ""
}

func awsCodeClass(code string) string {
	switch code {
	case "ThrottlingException", "Throttling", "TooManyRequestsException",
		"RequestLimitExceeded", "ProvisionedThroughputExceededException",
		"SlowDown", "RequestThrottled", "RequestThrottledException":
		return ClassThrottled
	case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
		"ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId",
		"InvalidSignatureException", "SignatureDoesNotMatch", "UnauthorizedOperation":
		return ClassAuth
	case "ResourceNotFound", "ResourceNotFoundException", "NotFoundException", "NoSuchKey", "NoSuchBucket":
		return ClassNotFound
	case "ValidationException", "InvalidParameterValue", "InvalidParameterException":
		return ClassInvalid
	case "ResourceInUse", "ConflictException", "ResourceInUseException":
		return ClassConflict
	case "ServiceUnavailable", "ServiceUnavailableException":
		return ClassUnavailable
	case "InternalFailure", "InternalServerError", "InternalServerException", "ServiceException":
		return ClassInternal
	}
	return ""
}

// httpStatus finds an HTTP status on err through the method names the cloud
// SDKs use (smithy's HTTPStatusCode, plain StatusCode).
func httpStatus(err error) int {
	var a interface{ HTTPStatusCode() int }
	if errors.As(err, &a) {
		return a.HTTPStatusCode()
	}
	var b interface{ StatusCode() int }
	if errors.As(err, &b) {
		return b.StatusCode()
	}
	return 0
}

func httpClass(code int) string {
	switch {
	case code == 408 || code == 504:
		return ClassTimeout
	case code == 429:
		return ClassThrottled
	case code == 401 || code == 403:
		return ClassAuth
	case code == 404 || code == 410:
		return ClassNotFound
	case code == 409 || code == 412:
		return ClassConflict
	case code == 502 || code == 503:
		return ClassUnavailable
	case code >= 400 && code < 500:
		return ClassInvalid
	case code >= 500:
		return ClassInternal
	}
	return ClassOther
}
