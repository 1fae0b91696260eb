package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

// JSON-RPC error codes the gateway answers with (server-defined range).
const (
	CodeDenied         = -32001 // the policy refused the call, or the tool is not approved
	CodeBlocked        = -32002 // a content check stopped the call
	CodeRateLimited    = -32003 // a budget is spent; data.retry_after_seconds says when to retry
	CodeHeaderMismatch = -32020 // Mcp-Name disagrees with the body (the spec's HeaderMismatch)
	maxBody            = 4 << 20
)

// rpcCall is the part of a JSON-RPC request the gateway reads before the
// SDK does.
type rpcCall struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// precheck runs at the HTTP layer, where a spent budget can be answered
// with 429 and Retry-After, and where the routing headers are compared
// with the body before anything trusts them.
func (g *Gateway) precheck(w http.ResponseWriter, r *http.Request, p modelplane.Principal, rt *route) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	if len(body) > maxBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var c rpcCall
	if json.Unmarshal(body, &c) != nil || c.Method != "tools/call" {
		return true // batches, notifications and bad JSON are the SDK's to answer
	}
	meta, _, _ := rt.current()
	if h := r.Header.Get("Mcp-Name"); h != "" && h != c.Params.Name {
		g.record(callRecord{p: p, meta: meta, channel: rt.channel, tool: c.Params.Name, outcome: modelplane.ToolDenied,
			reason: fmt.Sprintf("Mcp-Name header %q does not match the body's tool %q", h, c.Params.Name), start: g.cfg.Now()})
		writeRPCError(w, http.StatusBadRequest, c.ID, CodeHeaderMismatch, "Mcp-Name header does not match params.name", nil)
		return false
	}
	if ok, retry, why := g.takeBudget(p, rt.server, c.Params.Name); !ok {
		secs := int(retry / time.Second)
		g.record(callRecord{p: p, meta: meta, channel: rt.channel, tool: c.Params.Name, outcome: modelplane.ToolBlocked,
			reason: why, start: g.cfg.Now()})
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeRPCError(w, http.StatusTooManyRequests, c.ID, CodeRateLimited, why, map[string]any{"retry_after_seconds": secs})
		return false
	}
	return true
}

func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int64, msg string, data any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
}

// takeBudget takes one call from every budget that applies, all or none.
func (g *Gateway) takeBudget(p modelplane.Principal, server, tool string) (bool, time.Duration, string) {
	var keys []string
	var lims []Limit
	var names []string
	for i, b := range g.cfg.Budgets {
		if (b.Server != "" && b.Server != server) || (b.Tool != "" && b.Tool != tool) {
			continue
		}
		who := p.Name
		if b.Per == "agent" {
			who = p.Client
			if who == "" {
				continue // a static token names no agent
			}
		}
		keys = append(keys, fmt.Sprintf("%d|%s", i, who))
		lims = append(lims, b.Limit)
		names = append(names, fmt.Sprintf("%s %s", b.Per, who))
	}
	if len(keys) == 0 {
		return true, 0, ""
	}
	ok, retry, refused, window := g.limiter.TakeAll(keys, lims)
	if ok {
		return true, 0, ""
	}
	who := refused
	for i, k := range keys {
		if k == refused {
			who = names[i]
		}
	}
	return false, retry, fmt.Sprintf("budget spent: %s has used its calls for this %s; retry in %s", who, window, retry)
}

// middleware governs tools/list and tools/call on a route's MCP server.
func (rt *route) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch method {
		case "tools/list":
			res, err := next(ctx, method, req)
			if err != nil {
				return res, err
			}
			if lr, ok := res.(*sdk.ListToolsResult); ok {
				lr.Tools = rt.g.listable(ctx, principalOf(req.GetExtra()), rt, lr.Tools)
			}
			return res, nil
		case "tools/call":
			if cr, ok := req.(*sdk.CallToolRequest); ok {
				return rt.g.call(ctx, rt, cr, next)
			}
		}
		return next(ctx, method, req)
	}
}

// listable keeps the tools the caller may call, by the same policy that
// gates the call, so nobody sees a tool they may not use.
func (g *Gateway) listable(ctx context.Context, p modelplane.Principal, rt *route, tools []*sdk.Tool) []*sdk.Tool {
	meta, _, _ := rt.current()
	out := tools[:0]
	for _, t := range tools {
		d, err := g.cfg.Policy.DecideTool(ctx, g.input(p, meta, rt.channel, t, nil, true))
		if err == nil && d.Allow {
			out = append(out, t)
		}
	}
	return out
}

func (g *Gateway) input(p modelplane.Principal, meta modelplane.MCPServer, channel string, t *sdk.Tool, args map[string]any, listing bool) policy.Input {
	tool := map[string]any{"name": ""}
	if t != nil {
		tool["name"] = t.Name
		if a := t.Annotations; a != nil {
			ann := map[string]any{"readOnlyHint": a.ReadOnlyHint, "idempotentHint": a.IdempotentHint}
			if a.DestructiveHint != nil {
				ann["destructiveHint"] = *a.DestructiveHint
			}
			if a.OpenWorldHint != nil {
				ann["openWorldHint"] = *a.OpenWorldHint
			}
			tool["annotations"] = ann
		}
	}
	req := map[string]any{"tool": tool, "agent": p.Client, "listing": listing}
	if len(p.Act) > 0 {
		req["act"] = p.Act
	}
	if args != nil {
		req["arguments"] = args
	}
	return policy.Input{Action: policy.ActionMCPToolCall, Caller: p,
		Asset:   policy.Asset{Kind: policy.KindMCPServer, Name: meta.Name, Owner: meta.Owner, Team: meta.Team, RiskTier: string(meta.RiskTier), Version: meta.Version},
		Target:  &policy.TargetInfo{Name: channel, Environment: channel, Provider: "mcp"},
		Request: req, Time: g.cfg.Now()}
}

// call is one governed tool call: contract, policy, arguments, upstream,
// result, audit. Whatever happens, one record is written.
func (g *Gateway) call(ctx context.Context, rt *route, req *sdk.CallToolRequest, next sdk.MethodHandler) (sdk.Result, error) {
	rec := callRecord{p: principalOf(req.GetExtra()), channel: rt.channel, tool: req.Params.Name, start: g.cfg.Now()}
	ctx, span := traceCall(ctx, rt, req, rec.p)
	defer func() {
		span.SetAttributes(attribute.String("modelplane.outcome", string(rec.outcome)))
		if rec.outcome != modelplane.ToolAllowed {
			span.SetStatus(codes.Error, rec.reason)
		}
		span.End()
	}()
	meta, tools, serving := rt.current()
	rec.meta = meta
	rec.argsHash = digest(req.Params.Arguments)
	t := tools[req.Params.Name]
	if t == nil {
		rec.outcome = modelplane.ToolDenied
		switch {
		case !serving:
			rec.reason = fmt.Sprintf("%s@%s serves no approved tools: %s", rt.server, rt.channel, rt.reasonText())
		default:
			rec.reason = fmt.Sprintf("tool %q is not in the approved contract of %s %s, or its live definition no longer matches it", req.Params.Name, meta.Name, meta.Version)
		}
		g.record(rec)
		return nil, &jsonrpc.Error{Code: CodeDenied, Message: rec.reason}
	}
	var args map[string]any
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "params.arguments: " + err.Error()}
		}
	}
	d, err := g.cfg.Policy.DecideTool(ctx, g.input(rec.p, meta, rt.channel, t, args, false))
	rec.decision = &d
	if err != nil || !d.Allow {
		rec.outcome, rec.reason = modelplane.ToolDenied, "denied by policy: "+strings.Join(d.Reasons, "; ")
		g.record(rec)
		return nil, &jsonrpc.Error{Code: CodeDenied, Message: rec.reason}
	}
	out, findings, blocked, err := g.scan.Arguments(req.Params.Arguments)
	if err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "params.arguments: " + err.Error()}
	}
	rec.findings = findings
	if blocked {
		rec.outcome, rec.reason = modelplane.ToolBlocked, "blocked by a content check on the arguments: "+findingText(findings)
		g.record(rec)
		return nil, &jsonrpc.Error{Code: CodeBlocked, Message: rec.reason}
	}
	req.Params.Arguments = out
	upStart := time.Now()
	res, err := next(ctx, "tools/call", req)
	rec.upstream = time.Since(upStart)
	if err != nil {
		rec.outcome, rec.reason = modelplane.ToolFailed, "upstream: "+err.Error()
		g.record(rec)
		return nil, err
	}
	cr, _ := res.(*sdk.CallToolResult)
	if cr != nil {
		rf, blocked := g.scan.Result(cr)
		rec.findings = append(rec.findings, rf...)
		if blocked {
			rec.outcome, rec.reason = modelplane.ToolBlocked, "blocked by a content check on the result: "+findingText(rf)
			g.record(rec)
			return nil, &jsonrpc.Error{Code: CodeBlocked, Message: rec.reason}
		}
		if b, err := json.Marshal(cr); err == nil {
			rec.resultHash = digest(b)
		}
	}
	rec.outcome = modelplane.ToolAllowed
	g.record(rec)
	return res, nil
}

// relay is the handler of every approved tool: the call, already
// governed, goes upstream with its raw arguments.
func (rt *route) relay(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	cs, err := rt.upstream(ctx)
	if err != nil {
		return nil, err
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: req.Params.Name, Arguments: req.Params.Arguments, Meta: req.Params.Meta})
	if err != nil {
		if ctx.Err() == nil && isTransport(err) {
			rt.dropUpstream(cs)
		}
		return nil, err
	}
	return res, nil
}

// isTransport tells a broken session from an error the upstream answered.
func isTransport(err error) bool {
	_, rpc := err.(*jsonrpc.Error)
	return !rpc
}

var w3c = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// traceCall starts the call's span as a child of the caller's trace context
// (the traceparent header, or _meta where SEP-414 puts it), and puts its
// own context in the _meta that goes upstream, where every protocol
// revision can carry it. With tracing off, the caller's context passes
// through unchanged.
func traceCall(ctx context.Context, rt *route, req *sdk.CallToolRequest, p modelplane.Principal) (context.Context, trace.Span) {
	if x := req.GetExtra(); x != nil && x.Header != nil && x.Header.Get("Traceparent") != "" {
		ctx = w3c.Extract(ctx, propagation.HeaderCarrier(x.Header))
	} else if tp, ok := req.Params.Meta["traceparent"].(string); ok {
		ctx = w3c.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
	}
	// Looked up per call, so the provider telemetry.SetupTracing installs is the one used.
	ctx, span := otel.Tracer("github.com/modelplane/modelplane/gateway").Start(ctx, "mcp tools/call "+req.Params.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("mcp.server", rt.server), attribute.String("mcp.channel", rt.channel),
			attribute.String("mcp.tool", req.Params.Name), attribute.String("enduser.id", p.Name), attribute.String("mcp.agent", p.Client)))
	carrier := propagation.MapCarrier{}
	w3c.Inject(ctx, carrier)
	if len(carrier) > 0 {
		if req.Params.Meta == nil {
			req.Params.Meta = sdk.Meta{}
		}
		for k, v := range carrier {
			req.Params.Meta[k] = v
		}
	}
	return ctx, span
}

func (rt *route) reasonText() string {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.reason
}

func digest(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func findingText(fs []Finding) string {
	var parts []string
	for _, f := range fs {
		if f.Action == ActBlock {
			parts = append(parts, fmt.Sprintf("%s at %s", f.Detector, f.Path))
		}
	}
	return strings.Join(parts, ", ")
}
