package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
)

// AlertLabels names the labels that carry model, target and version.
type AlertLabels struct {
	Model, Target, Version string
}

func (l AlertLabels) withDefaults() AlertLabels {
	if l.Model == "" {
		l.Model = "model"
	}
	if l.Target == "" {
		l.Target = "target"
	}
	if l.Version == "" {
		l.Version = "version"
	}
	return l
}

// AlertmanagerWebhook is Alertmanager's webhook payload, version 4.
type AlertmanagerWebhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertOutcome says what became of one alert.
type AlertOutcome struct {
	Fingerprint string          `json:"fingerprint"`
	Alertname   string          `json:"alertname"`
	Status      string          `json:"status"`
	Outcome     string          `json:"outcome"` // signalled | resolved_recorded | duplicate | ignored
	Why         string          `json:"why,omitempty"`
	Affected    []DriftAffected `json:"affected,omitempty"`
}

func (s *Server) alertmanager(c echo.Context) error {
	ctx := c.Request().Context()
	var w AlertmanagerWebhook
	if err := bind(c, &w); err != nil {
		return err
	}
	if w.Version != "4" {
		return modelplane.FieldError("version", "only Alertmanager webhook version 4 is understood, got %q", w.Version)
	}
	// Alertmanager is a caller like any other: it needs drift.report on each
	// alert's model (checked below); the batch itself is allowed to arrive.
	c.Set(decisionKey, modelplane.PolicyDecision{Allow: true, Reasons: []string{"alert batch received; each alert is decided on its model"}})
	labels := s.AlertLabels.withDefaults()
	out := []AlertOutcome{}
	for i, a := range w.Alerts {
		o := AlertOutcome{Fingerprint: a.Fingerprint, Alertname: a.Labels["alertname"], Status: a.Status}
		if a.Fingerprint == "" {
			return modelplane.FieldError("alerts["+strconv.Itoa(i)+"].fingerprint", "is required")
		}
		d := modelplane.DriftSignal{Model: a.Labels[labels.Model], Target: a.Labels[labels.Target], Version: a.Labels[labels.Version],
			Metric: a.Labels["alertname"], Score: 1, Source: "alertmanager"}
		if v, err := strconv.ParseFloat(a.Annotations["value"], 64); err == nil {
			d.Score = v
		}
		if d.Model == "" || d.Target == "" {
			o.Outcome, o.Why = "ignored", "alert has no "+labels.Model+"/"+labels.Target+" labels"
			out = append(out, o)
			continue
		}
		fresh, err := s.Store.SeenAlert(ctx, a.Fingerprint, a.StartsAt, a.Status)
		if err != nil {
			return err
		}
		if !fresh {
			o.Outcome = "duplicate"
			out = append(out, o)
			continue
		}
		details := map[string]any{"alertname": o.Alertname, "fingerprint": a.Fingerprint, "starts_at": a.StartsAt, "labels": a.Labels, "annotations": a.Annotations}
		if a.Status != "firing" {
			o.Outcome = "resolved_recorded"
			s.audit(c, modelplane.AuditAlertResolved, d.Model+" on "+d.Target, d.Model, d.Target, details)
			out = append(out, o)
			continue
		}
		m, err := s.Store.GetModel(ctx, d.Model)
		if err != nil {
			o.Outcome, o.Why = "ignored", err.Error()
			out = append(out, o)
			continue
		}
		in := policy.Input{Action: policy.ActionDriftReport, Asset: modelAsset(m, nil)}
		if t, err := s.Store.GetTarget(ctx, d.Target); err == nil {
			in.Target = targetInfo(t)
		}
		if _, err := s.authorize(c, in); err != nil {
			o.Outcome, o.Why = "denied", err.Error()
			out = append(out, o)
			continue
		}
		affected, err := s.routeDrift(ctx, d)
		if err != nil {
			return err
		}
		o.Outcome, o.Affected = "signalled", affected
		details["affected"] = len(affected)
		s.audit(c, modelplane.AuditAlertFiring, d.Model+" on "+d.Target, d.Model, d.Target, details)
		out = append(out, o)
	}
	return c.JSON(http.StatusOK, map[string]any{"alerts": out})
}
