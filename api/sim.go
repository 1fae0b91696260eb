package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/providers/sim"
)

// --- dev-mode simulator ---

// SimHealth is the body of the dev-mode health endpoint.
type SimHealth struct {
	Model        string   `json:"model"`
	ErrorRate    *float64 `json:"error_rate"`
	LatencyP99Ms *float64 `json:"latency_p99_ms"`
	Drift        *float64 `json:"drift"`
	NoData       bool     `json:"no_data"`
}

func (s *Server) simHealth(c echo.Context) error {
	if s.Sim == nil {
		return modelplane.Errorf(modelplane.ENotFound, "the simulator endpoint exists in dev mode only")
	}
	ctx := c.Request().Context()
	var r SimHealth
	if err := bind(c, &r); err != nil {
		return err
	}
	target, version := c.Param("target"), c.Param("version")
	if _, err := s.Store.GetTarget(ctx, target); err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	if r.Model == "" {
		// The path names only the version: find the one model that has it.
		ms, err := s.Store.ListModels(ctx)
		if err != nil {
			return err
		}
		var hits []string
		for _, m := range ms {
			if _, err := s.Store.GetVersion(ctx, m.Name, version); err == nil {
				hits = append(hits, m.Name)
			}
		}
		switch len(hits) {
		case 0:
			return modelplane.Errorf(modelplane.ENotFound, "no model has version %q", version)
		case 1:
			r.Model = hits[0]
		default:
			return modelplane.FieldError("model", "version %q exists in several models (%s): name one", version, strings.Join(hits, ", "))
		}
	}
	h := sim.Baseline
	h.NoData = r.NoData
	for name, p := range map[string]*float64{"error_rate": r.ErrorRate, "latency_p99_ms": r.LatencyP99Ms, "drift": r.Drift} {
		if p != nil && *p < 0 {
			return modelplane.FieldError(name, "must not be negative")
		}
	}
	if r.ErrorRate != nil {
		h.ErrorRate = *r.ErrorRate
	}
	if r.LatencyP99Ms != nil {
		h.LatencyP99Ms = *r.LatencyP99Ms
	}
	if r.Drift != nil {
		h.Drift = *r.Drift
	}
	m, err := s.Store.GetModel(ctx, r.Model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionSimHealth, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	if err := s.Sim.SetHealth(ctx, target, r.Model, version, h); err != nil {
		return err
	}
	s.audit(c, modelplane.AuditSimHealthSet, r.Model+"@"+version+" on "+target, r.Model, target, map[string]any{"health": h})
	return c.JSON(http.StatusOK, map[string]any{"model": r.Model, "target": target, "version": version, "health": h})
}

// SimTraffic is a change made by hand on the simulated platform, as someone
// in a cloud console would: modelplane did not apply it, so the deployment
// guardian reports it as drift.
type SimTraffic struct {
	// Traffic is the new split; {} takes all traffic off the endpoint.
	Traffic modelplane.TrafficSplit `json:"traffic"`
	// Shadow starts a mirror nobody applied.
	Shadow *modelplane.Shadow `json:"shadow,omitempty"`
}

func (s *Server) simTraffic(c echo.Context) error {
	if s.Sim == nil {
		return modelplane.Errorf(modelplane.ENotFound, "the simulator endpoint exists in dev mode only")
	}
	ctx := c.Request().Context()
	var r SimTraffic
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.Traffic == nil {
		return modelplane.FieldError("traffic", "is required: the split to serve, e.g. {\"1\": 70, \"2\": 30}, or {} for none")
	}
	target, model := c.Param("target"), c.Param("model")
	if _, err := s.Store.GetTarget(ctx, target); err != nil {
		return modelplane.NotFoundAs(err, "target")
	}
	m, err := s.Store.GetModel(ctx, model)
	if err != nil {
		return modelplane.NotFoundAs(err, "model")
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionSimTraffic, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	if err := s.Sim.ChangeByHand(ctx, target, model, r.Traffic, r.Shadow); err != nil {
		if errors.Is(err, modelplane.ErrInvalid) {
			return modelplane.FieldError("traffic", "%s", strings.TrimPrefix(err.Error(), modelplane.ErrInvalid.Error()+": "))
		}
		return err
	}
	s.audit(c, modelplane.AuditSimTrafficSet, model+" on "+target, model, target, map[string]any{"traffic": r.Traffic.String(), "shadow": r.Shadow})
	return c.JSON(http.StatusOK, map[string]any{"model": model, "target": target, "traffic": r.Traffic, "shadow": r.Shadow})
}
