// Package modelplane holds the domain of the model control plane: models,
// versions, targets, promotions, pipelines, approvals, deployments, drift,
// tool calls and audit records, plus the small interfaces the adapters
// implement (Provider) and the services the entry points share
// (PromotionService). What is said once is typed here: audit actions
// (AuditAction), rollback causes (RollbackCause), lifecycle event types.
//
// A promotion's path crosses each package once: api (the HTTP request and
// the policy) → promotions (check, record, start) → workflows (the
// lifecycle) → activities (side effects) → providers (the platform).
//
// The tree, one package per thing it wraps:
//
//	workflows/      deterministic Temporal workflows: Promotion, PipelineRun,
//	                DeploymentGuardian (health, rollback, platform drift), MCP
//	activities/     thin side-effecting adapters the workflows call
//	api/            Echo HTTP API: one route table drives the router, auth and OpenAPI
//	promotions/     the PromotionService: the API, MLflow and pipelines make promotions through it
//	gateway/        the MCP gateway agents call tools through
//	providers/      one package per external system: sagemaker, vertex, kserve,
//	                mlflow, mcp, mcpregistry, prometheus, and sim (dev and tests only)
//	store/          gorm metadata store (SQLite, PostgreSQL) and its migrations
//	policy/         OPA policy engine and the default bundle
//	identity/       tokens, OIDC, the dev sign-in provider
//	audit/          the hash-chained audit trail's verification
//	worker/         Temporal worker wiring
//	ui/             the Temporal Web UI wrapper; ui/console our own console
//	temporalserver/ the embedded Temporal server of `modelplane dev`
//	telemetry/, codec/, config/, sinks/   metrics and traces, payload encryption, settings, event sinks
//	cmd/modelplane/ the single binary: dev, server, worker, gateway and the CLI
//	bench/, reliability/, e2e/, deploy/   benchmarks, crash and fault suites, browser tests, packaging
package modelplane
