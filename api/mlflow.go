package api

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
)

// MLflowWebhookResult says what a webhook delivery started.
type MLflowWebhookResult struct {
	Delivery   string   `json:"delivery"`
	Event      string   `json:"event"`
	Promotions []string `json:"promotions"`
	// Skipped explains rules that matched but started nothing.
	Skipped []string `json:"skipped,omitempty"`
}

// mlflowWebhook verifies an MLflow webhook (signature, timestamp window, and
// a delivery id never seen before) and starts the promotions that targets'
// auto_promote rules ask for. Webhooks are hints: the reconciliation
// schedule catches what a lost delivery missed, with the same idempotency
// keys, so both paths start each promotion once.
func (s *Server) mlflowWebhook(c echo.Context) error {
	if len(s.MLflowWebhookSecret) == 0 || s.MLflow == nil {
		return &modelplane.Error{Code: modelplane.ENotFound, Message: "MLflow webhooks are not configured (MLFLOW_TRACKING_URI and MODELPLANE_MLFLOW_WEBHOOK_SECRET)"}
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 1<<20))
	if err != nil {
		return err
	}
	d, err := mlflow.VerifyWebhook(s.MLflowWebhookSecret, c.Request().Header, body, time.Now(), mlflow.DefaultMaxSkew)
	if mlflow.IsUnverified(err) {
		return c.JSON(http.StatusUnauthorized, map[string]any{"error": modelplane.Error{Code: "unauthorized", Message: err.Error()}})
	}
	if err != nil {
		return modelplane.FieldError("body", "%v", err)
	}
	ctx := c.Request().Context()
	// The id is recorded once the delivery has been acted on, so MLflow's
	// retry of a delivery we failed is served, and a replay afterwards is not.
	seen, err := s.Store.HasDelivery(ctx, "mlflow", d.ID)
	if err != nil {
		return err
	}
	if seen {
		return c.JSON(http.StatusConflict, map[string]any{"error": modelplane.Error{Code: modelplane.EConflict, Message: fmt.Sprintf("delivery %s was received before: replay refused", d.ID)}})
	}
	res := MLflowWebhookResult{Delivery: d.ID, Event: d.Event(), Promotions: []string{}}
	alias := ""
	switch d.Event() {
	case "model_version.created":
	case "model_version_alias.created":
		alias = d.Alias
	default:
		_, err := s.Store.SeenDelivery(ctx, "mlflow", d.ID)
		return firstErr(err, c.JSON(http.StatusOK, res)) // not an event that starts anything
	}
	started, skipped, err := s.promotions().AutoPromote(ctx, d.Model, d.Version, alias)
	if err != nil {
		return err
	}
	for _, p := range started {
		if err := s.promotions().Start(ctx, p); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", p.ID, err))
			continue
		}
		res.Promotions = append(res.Promotions, p.ID)
	}
	res.Skipped = skipped
	if _, err := s.Store.SeenDelivery(ctx, "mlflow", d.ID); err != nil {
		return err
	}
	s.audit(c, modelplane.AuditMLflowWebhook, d.Model+"@"+d.Version, "", "", map[string]any{"delivery": d.ID, "event": d.Event(), "promotions": res.Promotions, "skipped": skipped})
	return c.JSON(http.StatusOK, res)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
