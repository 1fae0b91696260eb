package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// syncBuffer is written by worker goroutines and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonLines decodes each logged JSON line.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLoggerFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "n", 1)
	lines := jsonLines(t, buf.String())
	if len(lines) != 1 || lines[0]["msg"] != "shown" || lines[0]["level"] != "WARN" {
		t.Fatalf("got %v", lines)
	}

	buf.Reset()
	l, err = NewLogger(&buf, "text", "")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden at the default info level")
	l.Info("hello", "model", "churn")
	if got := buf.String(); !strings.Contains(got, "level=INFO msg=hello model=churn") || strings.Contains(got, "hidden") {
		t.Fatalf("text output %q", got)
	}

	for _, bad := range [][2]string{{"xml", "info"}, {"json", "loud"}} {
		if _, err := NewLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("NewLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestContextAttrsReachEveryLine(t *testing.T) {
	var buf bytes.Buffer
	l, _ := NewLogger(&buf, "json", "debug")

	ctx := ContextWithAttrs(context.Background(), slog.String(KeyModel, "churn"), slog.String(KeyTarget, "staging"))
	ctx = ContextWithAttrs(ctx, slog.String(KeyTarget, "prod")) // later value wins
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
	})
	ctx = trace.ContextWithSpanContext(ctx, sc)

	l.InfoContext(ctx, "deploying", "step", 1)
	l.Info("no context")

	lines := jsonLines(t, buf.String())
	got := lines[0]
	if got[KeyModel] != "churn" || got[KeyTarget] != "prod" || got["step"] != float64(1) {
		t.Errorf("context attrs missing: %v", got)
	}
	if got[KeyTraceID] != sc.TraceID().String() || got[KeySpanID] != sc.SpanID().String() {
		t.Errorf("trace ids missing: %v", got)
	}
	if _, ok := lines[1][KeyModel]; ok {
		t.Errorf("attrs leaked into a line without the context: %v", lines[1])
	}
	if n := strings.Count(buf.String(), `"target"`); n != 1 {
		t.Errorf("target logged %d times in %s", n, buf.String())
	}
}

func TestWithPromotionTagsContextAndLogger(t *testing.T) {
	var buf bytes.Buffer
	base, _ := NewLogger(&buf, "json", "info")
	ctx, l := WithPromotion(context.Background(), base, "p-42", "promote-p-42", "churn", "")

	l.InfoContext(ctx, "both")                           // logger and ctx carry the tags: no repeats
	base.InfoContext(ctx, "ctx")                         // a plain logger picks them up from ctx
	l.Info("logger")                                     // and the tagged logger works without ctx
	base.InfoContext(ctx, "override", KeyModel, "fraud") // explicit beats context

	out := buf.String()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if n := strings.Count(line, `"promotion_id"`); n != 1 {
			t.Errorf("promotion_id %d times: %s", n, line)
		}
		if strings.Contains(line, `"target"`) {
			t.Errorf("empty target logged: %s", line)
		}
	}
	lines := jsonLines(t, out)
	for _, m := range lines[:3] {
		if m[KeyPromotionID] != "p-42" || m[KeyWorkflowID] != "promote-p-42" || m[KeyModel] != "churn" {
			t.Errorf("%v lacks promotion tags", m)
		}
	}
	if lines[3][KeyModel] != "fraud" {
		t.Errorf("explicit attr lost to context: %v", lines[3])
	}
}

func TestSensitiveKeys(t *testing.T) {
	for _, k := range []string{
		"token", "Token", "api_key", "apiKey", "APIKey", "x-api-key", "key", "secret", "client_secret",
		"password", "db.password", "DB_PASSWORD", "Authorization", "authToken", "X-Auth-Token",
		"accessToken", "refresh_token", "secretAccessKey", "private_key", "credentials", "cookie",
	} {
		if !Sensitive(k) {
			t.Errorf("%q not treated as sensitive", k)
		}
	}
	for _, k := range []string{
		"key_id", "keyId", "kms_key_arn", "secret_name", "secretRef", "token_type", "token_count",
		"max_tokens", "prompt_tokens", "monkey", "keyboard", "model", "target", "promotion_id", "", "password_file",
	} {
		if Sensitive(k) {
			t.Errorf("%q treated as sensitive", k)
		}
	}
}

type creds struct{ user, pass string }

func (c creds) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", c.user), slog.String("password", c.pass))
}

func TestRedactionEverywhere(t *testing.T) {
	var buf bytes.Buffer
	l, _ := NewLogger(&buf, "json", "info")
	l = l.With("api_key", "sk-with")                                               // WithAttrs
	ctx := ContextWithAttrs(context.Background(), slog.String("token", "tok-ctx")) // context
	l.InfoContext(ctx, "call",
		"Authorization", "Basic dXNlcjpwYXNz", // record attr
		slog.Group("aws", "access_key_id", "AKIAEXAMPLE", "secret_access_key", "s3cr3t-grp"), // nested group
		"login", creds{"ana", "hunter2"}, // LogValuer resolved, then redacted
		"header", "Bearer eyJhbGciOi", // credential under an innocent key
		"max_tokens", 512, // an LLM setting, not a secret
	)
	l.WithGroup("req").Info("grouped", "password", "pw-in-group")

	out := buf.String()
	for _, secret := range []string{"sk-with", "tok-ctx", "dXNlcjpwYXNz", "s3cr3t-grp", "hunter2", "eyJhbGciOi", "pw-in-group"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q logged: %s", secret, out)
		}
	}
	for _, kept := range []string{`"access_key_id":"AKIAEXAMPLE"`, `"max_tokens":512`, `"user":"ana"`, `"api_key":"[redacted]"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s missing from %s", kept, out)
		}
	}
}
