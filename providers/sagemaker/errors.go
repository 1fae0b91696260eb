package sagemaker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/modelplane/modelplane"
)

// invalidError marks err as refused for good while keeping it visible to
// errors.As (a *modelplane.Error naming the field survives).
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, modelplane.ErrInvalid} }

func asInvalid(err error) error { return invalidError{err} }

func invalidf(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// apiCode is the service's error code, "" for transport errors.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// isNotFound: SageMaker reports most missing resources as a ValidationException
// "Could not find …"; a few operations use ResourceNotFound.
func isNotFound(err error) bool {
	switch apiCode(err) {
	case "ResourceNotFound", "ResourceNotFoundException":
		return true
	case "ValidationException":
		m := strings.ToLower(apiMessage(err))
		return strings.Contains(m, "could not find") || strings.Contains(m, "does not exist")
	}
	return false
}

// isAlreadyExists: a retried create found what an earlier attempt made.
func isAlreadyExists(err error) bool {
	switch apiCode(err) {
	case "ResourceInUse", "ValidationException", "ConflictException":
		m := strings.ToLower(apiMessage(err))
		return strings.Contains(m, "already exist")
	}
	return false
}

// wrap names the call and resource and decides whether retrying can help:
// validation problems and missing resources are for good (ErrInvalid);
// throttling, 5xx and "update in progress" stay ordinary errors so Temporal
// retries them.
func wrap(err error, op, resource string) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("sagemaker %s %s", op, resource)
	var ip smithy.InvalidParamsError
	if errors.As(err, &ip) {
		return invalidError{fmt.Errorf("%s: %v", msg, err)}
	}
	code := apiCode(err)
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultServer {
		return fmt.Errorf("%s: %w", msg, err)
	}
	switch code {
	case "ValidationException":
		m := strings.ToLower(ae.ErrorMessage())
		// SageMaker refuses changes to an endpoint that is still updating
		// with a ValidationException; that passes once the update ends.
		if strings.Contains(m, "in-progress") || strings.Contains(m, "in progress") {
			return fmt.Errorf("%s: %w", msg, err)
		}
		return invalidError{fmt.Errorf("%s: %w", msg, err)}
	case "ResourceNotFound", "ResourceNotFoundException", "ResourceLimitExceeded", "AccessDeniedException", "MissingParameter", "InvalidParameterValue":
		return invalidError{fmt.Errorf("%s: %w", msg, err)}
	}
	return fmt.Errorf("%s: %w", msg, err)
}
