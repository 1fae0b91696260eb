package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
)

// Log attribute keys shared by the API, workflows and activities, so one
// query finds a promotion's lines from every component.
const (
	KeyPromotionID = "promotion_id"
	KeyWorkflowID  = "workflow_id"
	KeyRunID       = "run_id"
	KeyActivity    = "activity"
	KeyAttempt     = "attempt"
	KeyModel       = "model"
	KeyTarget      = "target"
	KeyTraceID     = "trace_id"
	KeySpanID      = "span_id"
)

// Redacted replaces the value of a sensitive attribute.
const Redacted = "[redacted]"

// NewLogger builds a logger writing format ("json", the default, or "text")
// at level (debug, info (default), warn, error; "warn+2" style offsets work).
// Its handler adds context attributes and trace ids and redacts secrets
// (see NewHandler).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
	return slog.New(NewHandler(h)), nil
}

type ctxAttrsKey struct{}

// ContextWithAttrs returns ctx carrying attrs (added to those already there)
// for every record logged with that ctx through a NewHandler logger. This is
// how identifiers reach log lines deep in activities and providers without
// threading a logger through every call.
func ContextWithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	prev := AttrsFromContext(ctx)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	// A later value for a key replaces the earlier one.
	for _, a := range prev {
		if !hasKey(attrs, a.Key) {
			all = append(all, a)
		}
	}
	all = append(all, attrs...)
	return context.WithValue(ctx, ctxAttrsKey{}, all)
}

// AttrsFromContext returns the attributes ContextWithAttrs stored in ctx.
func AttrsFromContext(ctx context.Context) []slog.Attr {
	attrs, _ := ctx.Value(ctxAttrsKey{}).([]slog.Attr)
	return attrs
}

// WithPromotion tags ctx and logger with a promotion's identity. Empty
// values are left out. Use the returned ctx for calls (their logs inherit the
// tags) and the logger for lines of your own.
func WithPromotion(ctx context.Context, logger *slog.Logger, promotionID, workflowID, model, target string) (context.Context, *slog.Logger) {
	var attrs []slog.Attr
	for _, kv := range [...][2]string{
		{KeyPromotionID, promotionID}, {KeyWorkflowID, workflowID}, {KeyModel, model}, {KeyTarget, target},
	} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	ctx = ContextWithAttrs(ctx, attrs...)
	if logger == nil {
		logger = slog.Default()
	}
	// The handler skips context attrs the logger already carries, so a
	// line logged with both does not repeat them.
	return ctx, slog.New(logger.Handler().WithAttrs(attrs))
}

// WithActivity tags an activity's ctx with its workflow_id, run_id,
// activity type and attempt; outside an activity it returns ctx unchanged.
func WithActivity(ctx context.Context) context.Context {
	if !activity.IsActivity(ctx) {
		return ctx
	}
	info := activity.GetInfo(ctx)
	return ContextWithAttrs(ctx,
		slog.String(KeyWorkflowID, info.WorkflowExecution.ID),
		slog.String(KeyRunID, info.WorkflowExecution.RunID),
		slog.String(KeyActivity, info.ActivityType.Name),
		slog.Int(KeyAttempt, int(info.Attempt)),
	)
}

// Handler wraps another slog.Handler: it appends the context's attributes
// and trace/span ids to each record and redacts sensitive attributes.
type Handler struct {
	inner slog.Handler
	// keys set at the top level through WithAttrs; context attrs with the
	// same keys are skipped as duplicates.
	keys map[string]bool
	// grouped: after WithGroup, keys no longer sit at the top level.
	grouped bool
}

// NewHandler wraps inner with context attributes and redaction.
func NewHandler(inner slog.Handler) *Handler {
	return &Handler{inner: inner}
}

// Enabled reports whether the inner handler logs at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds context attrs and trace ids, redacts, and passes r on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	ctxAttrs := AttrsFromContext(ctx)
	var seen map[string]bool
	if len(ctxAttrs) > 0 {
		seen = make(map[string]bool, r.NumAttrs())
	}
	r.Attrs(func(a slog.Attr) bool {
		if seen != nil {
			seen[a.Key] = true
		}
		out.AddAttrs(redact(a))
		return true
	})
	for _, a := range ctxAttrs {
		if !seen[a.Key] && !h.keys[a.Key] {
			out.AddAttrs(redact(a))
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, out)
}

// WithAttrs redacts attrs before the inner handler preformats them.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	red := make([]slog.Attr, len(attrs))
	keys := h.keys
	if !h.grouped {
		keys = make(map[string]bool, len(h.keys)+len(attrs))
		for k := range h.keys {
			keys[k] = true
		}
	}
	for i, a := range attrs {
		red[i] = redact(a)
		if !h.grouped {
			keys[a.Key] = true
		}
	}
	return &Handler{inner: h.inner.WithAttrs(red), keys: keys, grouped: h.grouped}
}

// WithGroup nests later attributes; context attrs land in the group too.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name), keys: h.keys, grouped: true}
}

// redact replaces sensitive values, descending into groups.
func redact(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindLogValuer {
		a.Value = a.Value.Resolve()
	}
	if Sensitive(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindGroup:
		members := a.Value.Group()
		out := make([]slog.Attr, len(members))
		for i, m := range members {
			out[i] = redact(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindString:
		// A credential under an innocent key, e.g. a logged header value.
		if s := a.Value.String(); len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
			return slog.String(a.Key, Redacted)
		}
	}
	return a
}

// sensitiveWords are key words whose value is a credential.
var sensitiveWords = map[string]bool{
	"token": true, "secret": true, "password": true, "passwd": true, "passphrase": true,
	"authorization": true, "credential": true, "credentials": true, "cookie": true,
	"key": true, "apikey": true, "accesskey": true, "privatekey": true, "secretkey": true,
	"accesstoken": true, "authtoken": true, "refreshtoken": true, "bearer": true,
}

// safeLastWords name something about a credential, not the credential:
// key_id, secret_name, token_type, password_file.
var safeLastWords = map[string]bool{
	"id": true, "ids": true, "name": true, "names": true, "ref": true, "arn": true,
	"type": true, "count": true, "ttl": true, "expiry": true, "expires": true,
	"version": true, "path": true, "file": true,
}

// Sensitive reports whether an attribute key names a credential. Keys are
// split into words (snake, kebab, dotted and camelCase), so "apiKey",
// "X-Auth-Token" and "db.password" match while "monkey", "max_tokens" and
// "key_id" do not: a whole word must match, and a key ending in id, name,
// ref, arn, type, count, ttl, expiry, version, path or file names the secret
// rather than holding it.
func Sensitive(key string) bool {
	words := splitWords(key)
	hit := false
	for _, w := range words {
		if sensitiveWords[w] {
			hit = true
			break
		}
	}
	return hit && !safeLastWords[words[len(words)-1]]
}

// splitWords lower-cases key and splits it at non-alphanumerics and at
// lower-to-upper case changes.
func splitWords(key string) []string {
	var words []string
	var cur strings.Builder
	var prevLower bool
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range key {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		cur.WriteRune(unicode.ToLower(r))
	}
	flush()
	if len(words) == 0 {
		words = []string{""}
	}
	return words
}

func hasKey(attrs []slog.Attr, key string) bool {
	for _, a := range attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}
