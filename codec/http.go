package codec

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/modelplane/modelplane"
	"go.temporal.io/sdk/converter"
)

// MaxRequestBytes bounds a codec request body; the UI sends one history page
// of payloads at a time, far below this.
const MaxRequestBytes = 8 << 20

// Handler serves the remote codec protocol the Temporal Web UI and CLI speak:
// POST …/encode and POST …/decode with a JSON {"payloads": [...]} body. Mount
// it under any prefix (e.g. "/codec/") and configure the UI's codec endpoint
// as that prefix.
//
// authorize runs on every encode and decode and sees the whole request
// (cookies, Authorization, X-Namespace). An error refuses the request: 403
// when it is a modelplane.Error with code forbidden, 401 otherwise. A nil
// authorize refuses everything, so a forgotten argument fails closed.
//
// allowOrigins lists the exact browser origins (scheme://host[:port]) of the
// Web UI. Matching origins get CORS headers with credentials allowed; any
// other Origin is refused outright. Requests without an Origin header (CLI,
// SDK remote codec) are not browser requests and skip the CORS check.
func Handler(kr *Keyring, authorize func(*http.Request) error, allowOrigins []string) http.Handler {
	allowed := make(map[string]bool, len(allowOrigins))
	for _, o := range allowOrigins {
		allowed[normOrigin(o)] = true
	}
	inner := converter.NewPayloadCodecHTTPHandler(NewCodec(kr))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" {
			if !allowed[normOrigin(origin)] {
				writeError(w, http.StatusForbidden, modelplane.EForbidden, "origin not allowed")
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		switch r.Method {
		case http.MethodOptions:
			// Preflight carries no credentials, so it is answered before authorize.
			h.Set("Allow", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Authorization-Extras, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost:
		default:
			h.Set("Allow", "POST, OPTIONS")
			writeError(w, http.StatusMethodNotAllowed, modelplane.EInvalid, "use POST")
			return
		}
		if p := r.URL.Path; !strings.HasSuffix(p, "/encode") && !strings.HasSuffix(p, "/decode") {
			writeError(w, http.StatusNotFound, modelplane.ENotFound, "codec endpoints are …/encode and …/decode")
			return
		}
		if authorize == nil {
			writeError(w, http.StatusUnauthorized, modelplane.EUnauthorized, "codec endpoint has no authorizer configured")
			return
		}
		if err := authorize(r); err != nil {
			status, code := http.StatusUnauthorized, modelplane.EUnauthorized
			if modelplane.ErrorCode(err) == modelplane.EForbidden {
				status, code = http.StatusForbidden, modelplane.EForbidden
			}
			writeError(w, status, code, err.Error())
			return
		}
		// Decoded payloads are plaintext secrets: keep them out of caches.
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		inner.ServeHTTP(w, r)
	})
}

// normOrigin lets "http://Localhost:8233/" in config match the browser's
// "http://localhost:8233".
func normOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// writeError uses the API's error shape: {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": modelplane.Error{Code: code, Message: msg}})
}
