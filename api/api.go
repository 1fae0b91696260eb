// Package api is modelplane's HTTP API (Echo). Handlers validate input and
// name the offending field, write to the store, and start or talk to
// workflows; they never move traffic themselves.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/promotions"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/telemetry"
	"go.temporal.io/sdk/client"
)

// Server holds what the handlers use.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	// Auth resolves bearer credentials (static tokens, OIDC JWTs).
	Auth identity.Authenticator
	// Policy decides every action; nil turns governance off (benchmarks only).
	Policy *policy.Engine
	// Metrics, when set, records request and policy figures.
	Metrics *telemetry.Metrics
	// TaskQueue is where promotions start ("": modelplane's default).
	TaskQueue string
	Providers modelplane.Providers
	// AlertLabels names the alert labels that carry model, target and version.
	AlertLabels AlertLabels
	// Sim is set in dev mode only: it enables the synthetic-health endpoint.
	Sim    *sim.Provider
	Logger *slog.Logger
	// MLflow is the MLflow Model Registry promotions may import versions
	// from (nil: not configured); MLflowWebhookSecret verifies its webhooks.
	MLflow              *mlflow.Client
	MLflowWebhookSecret []byte
	// Promotions prepares and starts promotions; nil: the standard service
	// over Store, Providers, Temporal, TaskQueue and MLflow.
	Promotions modelplane.PromotionService

	echo *echo.Echo
	doc  map[string]any
}

type route struct {
	method, path string
	handler      func(*Server, echo.Context) error
	action       string // the policy action the handler asks about (documentation; handlers decide)
	public       bool
	summary      string
	body         string   // request schema name, for the OpenAPI document
	query        []string // query parameters, for the OpenAPI document
	status       int      // success status
}

// routes is the single table that drives both the router and /openapi.json.
var routes = []route{
	{method: "GET", path: "/healthz", handler: (*Server).healthz, public: true, summary: "Liveness", status: 200},
	{method: "GET", path: "/readyz", handler: (*Server).readyz, public: true, summary: "Readiness: store and Temporal reachable", status: 200},
	{method: "GET", path: "/openapi.json", handler: (*Server).openapi, public: true, summary: "This document", status: 200},

	{method: "POST", path: "/v1/models", handler: (*Server).createModel, action: "model.create", summary: "Register a model", body: "Model", status: 201},
	{method: "GET", path: "/v1/models", handler: (*Server).listModels, action: "model.read", summary: "List models", status: 200},
	{method: "GET", path: "/v1/models/:name", handler: (*Server).getModel, action: "model.read", summary: "Get a model", status: 200},
	{method: "POST", path: "/v1/models/:name/versions", handler: (*Server).createVersion, action: "version.create", summary: "Register a version", body: "Version", status: 201},
	{method: "GET", path: "/v1/models/:name/versions", handler: (*Server).listVersions, action: "model.read", summary: "List a model's versions", status: 200},
	{method: "PUT", path: "/v1/models/:name/versions/:version/metrics", handler: (*Server).setMetrics, action: "version.create", summary: "Record a new evaluation of a version; running promotions re-validate and approvals on the old evidence stop counting", body: "MetricsRequest", status: 200},
	{method: "GET", path: "/v1/models/:name/versions/:version/provenance", handler: (*Server).provenance, action: "provenance.read", summary: "Who requested, who approved on which evidence, policy decisions, traffic timeline, rollbacks and causes", status: 200},
	{method: "GET", path: "/v1/scorecard", handler: (*Server).scorecard, action: "scorecard.read", summary: "Governance scorecard: ownership, explicit policy coverage, provenance latency, override rate", status: 200},
	{method: "GET", path: "/v1/audit/export", handler: (*Server).exportAudit, action: "audit.export", summary: "Audit records as JSON Lines with their hash chain (same filters as /v1/audit)", status: 200},
	{method: "GET", path: "/v1/audit/verify", handler: (*Server).verifyAudit, action: "audit.read", summary: "Verify the audit hash chain; names the first edited, deleted or reordered record", status: 200},
	{method: "GET", path: "/v1/policy", handler: (*Server).policyStatus, action: "audit.read", summary: "The live policy: version, when loaded, last reload error", status: 200},
	{method: "GET", path: "/v1/models/:name/versions/:version", handler: (*Server).getVersion, action: "model.read", summary: "Get a version", status: 200},

	{method: "POST", path: "/v1/targets", handler: (*Server).createTarget, action: "target.create", summary: "Create a target", body: "Target", status: 201},
	{method: "GET", path: "/v1/targets", handler: (*Server).listTargets, action: "target.read", summary: "List targets", status: 200},

	{method: "POST", path: "/v1/promotions", handler: (*Server).createPromotion, action: "promotion.start", summary: "Start a promotion (Idempotency-Key honoured)", body: "PromotionRequest", status: 202},
	{method: "GET", path: "/v1/promotions", handler: (*Server).listPromotions, action: "promotion.read", summary: "List promotions, newest first, a page at a time (limit 1-200, default 50; next is the before= of the following page)",
		query: []string{"model", "target", "status", "requester", "team", "stage", "limit", "before"}, status: 200},
	{method: "GET", path: "/v1/inbox", handler: (*Server).inbox, action: "promotion.read", summary: "What waits for the caller's approval, oldest first, with escalation and expiry times", status: 200},
	{method: "GET", path: "/v1/promotions/:id", handler: (*Server).getPromotion, action: "promotion.read", summary: "Get a promotion: stage, status, traffic, approvals, analysis, history", status: 200},
	{method: "POST", path: "/v1/promotions/:id/approvals", handler: (*Server).approve, action: "promotion.approve", summary: "Approve or reject as the caller", body: "ApprovalRequest", status: 200},
	{method: "POST", path: "/v1/promotions/:id/rollback", handler: (*Server).rollback, action: "promotion.rollback", summary: "Roll a promotion back now", body: "RollbackRequest", status: 202},
	{method: "POST", path: "/v1/promotions/:id/decision", handler: (*Server).decide, action: "promotion.decide", summary: "Resolve an inconclusive analysis", body: "DecisionRequest", status: 200},

	{method: "POST", path: "/v1/mcp/servers", handler: (*Server).createMCPServer, action: "mcp.create", summary: "Register an MCP server version", body: "MCPServerRequest", status: 201},
	{method: "GET", path: "/v1/mcp/servers", handler: (*Server).listMCPServers, action: "mcp.read", summary: "List MCP server versions (?name=)", status: 200},
	{method: "GET", path: "/v1/mcp/channels", handler: (*Server).listMCPChannels, action: "mcp.read", summary: "List MCP channels (which version each serves)", status: 200},
	{method: "POST", path: "/v1/mcp/promotions", handler: (*Server).createMCPPromotion, action: "mcp.promote", summary: "Validate, approve, publish and move a channel to an MCP server version (approve and roll back via /v1/promotions/{id})", body: "MCPPromotionRequest", status: 202},

	{method: "POST", path: "/v1/signals/drift", handler: (*Server).drift, action: "drift.report", summary: "Report drift; rolls back what serves the model", body: "DriftSignal", status: 202},
	{method: "GET", path: "/v1/deployments", handler: (*Server).listDeployments, action: "deployment.read", summary: "List deployments", status: 200},
	{method: "GET", path: "/v1/deployments/:target/:model", handler: (*Server).getDeployment, action: "deployment.read", summary: "Get a deployment", status: 200},
	{method: "GET", path: "/v1/deployments/:target/:model/guardian", handler: (*Server).getGuardian, action: "deployment.read", summary: "The deployment guardian: running, stable and previous version, last health check", status: 200},
	{method: "POST", path: "/v1/deployments/:target/:model/rollback", handler: (*Server).rollbackDeployment, action: "promotion.rollback", summary: "Return the target to the previous stable version now (the guardian's rollback)", body: "RollbackRequest", status: 202},
	{method: "GET", path: "/v1/audit", handler: (*Server).listAudit, action: "audit.read", summary: "Audit records by seq (order=asc|desc; next is the after= (asc) or before= (desc) of the following page)",
		query: []string{"model", "version", "promotion", "actor", "action", "subject", "decision", "agent", "since", "until", "after", "before", "order", "limit"}, status: 200},

	{method: "POST", path: "/v1/webhooks/mlflow", handler: (*Server).mlflowWebhook, public: true, summary: "MLflow webhook (HMAC-signed, replays refused): new versions and aliases start promotions to targets whose auto_promote rules ask for them", status: 200},
	{method: "POST", path: "/v1/alerts/alertmanager", handler: (*Server).alertmanager, action: "drift.report", summary: "Alertmanager webhook (version 4): firing alerts become drift signals", body: "AlertmanagerWebhook", status: 200},
	{method: "POST", path: "/v1/apply", handler: (*Server).apply, action: "pipeline.write", summary: "Server-side apply of declared Models, Targets and Pipelines: a plan, field by field; dry_run writes nothing, prune deletes undeclared pipelines of the caller's teams", body: "ApplyRequest", status: 200},
	{method: "PUT", path: "/v1/pipelines/:name", handler: (*Server).putPipeline, action: "pipeline.write", summary: "Create or replace a pipeline: stages (upstream, soak, windows, auto) of targets in waves", body: "Pipeline", status: 200},
	{method: "GET", path: "/v1/pipelines", handler: (*Server).listPipelines, action: "pipeline.read", summary: "List the pipelines the caller may read", status: 200},
	{method: "GET", path: "/v1/pipelines/:name", handler: (*Server).getPipeline, action: "pipeline.read", summary: "Get a pipeline", status: 200},
	{method: "GET", path: "/v1/pipelines/:name/versions", handler: (*Server).pipelineVersions, action: "pipeline.read", summary: "Which version of each model every stage last verified, and when", status: 200},
	{method: "POST", path: "/v1/pipelines/:name/runs", handler: (*Server).startRun, action: "pipeline.run", summary: "Start a version through a pipeline", body: "RunRequest", status: 202},
	{method: "GET", path: "/v1/pipelines/:name/runs/:model/:version", handler: (*Server).getRun, action: "pipeline.read", summary: "Where a version is in a pipeline: each stage's status, gate and targets' promotions", status: 200},
	{method: "POST", path: "/v1/pipelines/:name/runs/:model/:version/stages/:stage/promote", handler: (*Server).promoteStage, action: "promotion.start", summary: "Promote a stage that waits for a person, as the caller", status: 202},
	{method: "GET", path: "/v1/freeze", handler: (*Server).getFreeze, action: "freeze.read", summary: "The freeze switch: on, by whom, why, since when", status: 200},
	{method: "PUT", path: "/v1/freeze", handler: (*Server).setFreeze, action: "freeze.set", summary: "Admins: stop every pipeline's new promotions at once, or let them go again", body: "FreezeRequest", status: 200},
	{method: "PUT", path: "/v1/sim/targets/:target/models/:model/traffic", handler: (*Server).simTraffic, action: "sim.traffic", summary: "Dev mode: change a simulated endpoint's traffic by hand, as someone in a cloud console would", body: "SimTraffic", status: 200},
	{method: "POST", path: "/v1/sim/targets/:target/versions/:version/health", handler: (*Server).simHealth, action: "sim.health", summary: "Dev mode: set a simulated version's health", body: "SimHealth", status: 200},
}

// RouteInfo is one served route.
type RouteInfo struct{ Method, Path string }

// Routes lists the routes the API serves.
func Routes() []RouteInfo {
	out := make([]RouteInfo, len(routes))
	for i, r := range routes {
		out[i] = RouteInfo{Method: r.method, Path: r.path}
	}
	return out
}

// Handler builds the Echo router.
func (s *Server) Handler() http.Handler {
	if s.echo != nil {
		return s.echo
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Promotions == nil {
		s.Promotions = &promotions.Service{Store: s.Store, Providers: s.Providers, Temporal: s.Temporal, TaskQueue: s.TaskQueue, MLflow: s.MLflow}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(telemetry.EchoTracing())
	if s.Metrics != nil {
		e.Use(telemetry.EchoMiddleware(s.Metrics))
	}
	for _, r := range routes {
		r := r
		h := func(c echo.Context) error { return r.handler(s, c) }
		if !r.public {
			h = s.authenticate(s.checkAuthorized(h))
		}
		e.Add(r.method, r.path, h)
	}
	s.echo, s.doc = e, OpenAPI()
	return e
}

const principalKey = "principal"

func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if _, pass, basic := c.Request().BasicAuth(); basic {
			// Basic auth carries the token as its password: what Alertmanager's
			// http_config offers besides a bearer token.
			token, ok = pass, true
		}
		if !ok || token == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="modelplane"`)
			return modelplane.Errorf(modelplane.EUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
		}
		p, err := s.Auth.Authenticate(c.Request().Context(), strings.TrimSpace(token))
		if err != nil {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="modelplane", error="invalid_token"`)
			// identity's errors never carry the credential.
			return modelplane.Errorf(modelplane.EUnauthorized, "invalid token: %v", err)
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func caller(c echo.Context) modelplane.Principal {
	p, _ := c.Get(principalKey).(modelplane.Principal)
	return p
}

var statusByCode = map[string]int{
	modelplane.ENotFound:     http.StatusNotFound,
	modelplane.EInvalid:      http.StatusBadRequest,
	modelplane.EConflict:     http.StatusConflict,
	modelplane.EUnauthorized: http.StatusUnauthorized,
	modelplane.EForbidden:    http.StatusForbidden,
}

// errorHandler renders every error as {"error": {"code", "message", "field"}}.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		e      *modelplane.Error
		he     *echo.HTTPError
		status = http.StatusInternalServerError
		body   = &modelplane.Error{Code: modelplane.EInternal, Message: "internal error"}
	)
	switch {
	case errors.As(err, &e):
		body = e
		if st, ok := statusByCode[e.Code]; ok {
			status = st
		}
	case errors.As(err, &he):
		status = he.Code
		body = &modelplane.Error{Code: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), Message: fmt.Sprint(he.Message)}
	}
	if status == http.StatusInternalServerError {
		s.Logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err)
	}
	_ = c.JSON(status, map[string]any{"error": body})
}

// bind decodes a JSON body strictly: unknown fields and wrong types are errors naming the field.
func bind(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 1<<20))
	if err != nil {
		return modelplane.Errorf(modelplane.EInvalid, "cannot read body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return modelplane.Errorf(modelplane.EInvalid, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return modelplane.Errorf(modelplane.EInvalid, "malformed JSON: trailing data after the object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return modelplane.Errorf(modelplane.EInvalid, "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return modelplane.Errorf(modelplane.EInvalid, "malformed JSON: expected an object, got %s", typ.Value)
		}
		return modelplane.FieldError(field, "must be %s, got %s", typeName(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if unq, err := strconv.Unquote(field); err == nil && unq != "" {
			field = unq
		}
		return modelplane.FieldError(field, "is not a known field")
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return modelplane.Errorf(modelplane.EInvalid, "malformed JSON: unexpected end of input")
	}
	// Field-level unmarshalers (durations) report through here.
	return modelplane.Errorf(modelplane.EInvalid, "malformed JSON: %v", err)
}

func typeName(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "an integer"
	case strings.Contains(t, "float"):
		return "a number"
	case strings.HasSuffix(t, "Duration"):
		return `a duration such as "30s"`
	case t == "string" || strings.HasSuffix(t, "RiskTier"):
		return "a string"
	case strings.HasPrefix(t, "map"):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return t
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "temporal": "ok"}
	ready := true
	if _, err := s.Store.ListTargets(ctx); err != nil {
		checks["store"], ready = err.Error(), false
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], ready = err.Error(), false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, map[string]any{"ready": ready, "checks": checks})
}
