package kserve

import (
	"fmt"
	"strings"

	"github.com/modelplane/modelplane"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("kserve: %s: %w", fmt.Sprintf(format, args...), modelplane.ErrInvalid)
}

// apiError names what was being done and classifies the API server's answer:
// requests it refuses for good (schema validation, bad request, no such
// namespace or CRD, RBAC) wrap ErrInvalid; conflicts, throttling, timeouts
// and server errors stay plain so Temporal retries them.
func apiError(what string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if st, ok := err.(apierrors.APIStatus); ok && st.Status().Message != "" {
		msg = st.Status().Message
	}
	switch {
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), typedPatchError(err, msg):
		return fmt.Errorf("kserve: %s: the API server refused it: %q: %w", what, msg, modelplane.ErrInvalid)
	case apierrors.IsForbidden(err):
		// RBAC does not fix itself; the message names the missing verb.
		return fmt.Errorf("kserve: %s: forbidden (see the README for the RBAC needed): %q: %w", what, msg, modelplane.ErrInvalid)
	case apierrors.IsNotFound(err):
		// Only called where the object itself may not be missing: the
		// namespace or the InferenceService CRD is.
		return fmt.Errorf("kserve: %s: not found (is the namespace there and KServe installed?): %q: %w", what, msg, modelplane.ErrInvalid)
	}
	return fmt.Errorf("kserve: %s: %w", what, err)
}

// typedPatchError: server-side apply checks field types against the schema
// before validation runs and reports a mismatch as a 500 (kube-apiserver
// 1.36), though retrying the same body can never succeed.
func typedPatchError(err error, msg string) bool {
	return apierrors.IsInternalError(err) && strings.Contains(msg, "failed to create typed patch object")
}
