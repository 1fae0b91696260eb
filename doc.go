// Package modelplane holds the domain of the model control plane: models,
// versions, targets, promotions, approvals, deployments and audit records,
// plus the small interfaces (Provider) that the adapters implement.
//
// The layout follows the design card:
//
//	workflows/   deterministic Temporal workflow code only
//	activities/  thin side-effecting adapters called by workflows
//	api/         Echo HTTP API
//	providers/   one package per external system (sim today)
//	store/       gorm metadata store (SQLite, PostgreSQL)
//	worker/      Temporal worker wiring
//	ui/          Temporal Web UI embedding; ui/console our own console
//	temporalserver/ embedded Temporal server for `modelplane dev`
//	cmd/modelplane/ the single binary
package modelplane
