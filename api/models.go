package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/modelplane/modelplane/workflows"
)

// --- models and versions ---

func (s *Server) createModel(c echo.Context) error {
	var m modelplane.Model
	if err := bind(c, &m); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelCreate, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	m.CreatedAt = time.Time{}
	m, err := s.Store.CreateModel(c.Request().Context(), m)
	if err != nil {
		return err
	}
	s.audit(c, modelplane.AuditModelCreated, "model/"+m.Name, m.Name, "", map[string]any{"risk_tier": m.RiskTier, "owner": m.Owner, "team": m.Team})
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) listModels(c echo.Context) error {
	ms, err := s.Store.ListModels(c.Request().Context())
	if err != nil {
		return err
	}
	listing(c)
	out := []modelplane.Model{}
	for _, m := range ms {
		if s.visible(c, policy.ActionModelRead, policy.KindModel, m.Team) {
			out = append(out, m)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"models": out})
}

func (s *Server) getModel(c echo.Context) error {
	m, err := s.Store.GetModel(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionModelRead, Asset: modelAsset(m, nil)}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// versionRequest is the body of POST /v1/models/{name}/versions.
type versionRequest struct {
	Version     string             `json:"version"`
	ArtifactURI string             `json:"artifact_uri"`
	Lineage     modelplane.Lineage `json:"lineage"`
	Metrics     map[string]float64 `json:"metrics"`
}

func (s *Server) createVersion(c echo.Context) error {
	var r versionRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	v := modelplane.Version{Model: c.Param("name"), Version: r.Version, ArtifactURI: r.ArtifactURI, Lineage: r.Lineage, Metrics: r.Metrics, CreatedBy: caller(c).Name}
	if err := v.Validate(); err != nil {
		return err
	}
	m, err := s.Store.GetModel(c.Request().Context(), v.Model)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionVersionCreate, Asset: modelAsset(m, &v)}); err != nil {
		return err
	}
	v, err = s.Store.CreateVersion(c.Request().Context(), v)
	if err != nil {
		return err
	}
	rec := s.record(c, modelplane.AuditVersionCreated, "model/"+v.Model+"@"+v.Version, v.Model, "", map[string]any{"artifact_uri": v.ArtifactURI, "lineage": v.Lineage, "metrics": v.Metrics})
	rec.Version = v.Version
	s.write(c, rec)
	return c.JSON(http.StatusCreated, v)
}

// MetricsRequest is the body of PUT /v1/models/{name}/versions/{version}/metrics.
type MetricsRequest struct {
	Metrics map[string]float64 `json:"metrics"`
}

// setMetrics records a new evaluation of a version. Running promotions of
// it re-validate, and approvals given on the old evidence stop counting.
func (s *Server) setMetrics(c echo.Context) error {
	ctx := c.Request().Context()
	var r MetricsRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	if len(r.Metrics) == 0 {
		return modelplane.FieldError("metrics", "is required: at least one metric")
	}
	m, err := s.Store.GetModel(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	v, err := s.Store.GetVersion(ctx, m.Name, c.Param("version"))
	if err != nil {
		return err
	}
	v.Metrics = r.Metrics
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionVersionCreate, Asset: modelAsset(m, &v), Request: map[string]any{"update": "metrics"}}); err != nil {
		return err
	}
	if v, err = s.Store.SetVersionMetrics(ctx, m.Name, v.Version, r.Metrics); err != nil {
		return err
	}
	ps, err := s.Store.ListPromotions(ctx, store.PromotionFilter{Model: m.Name, Status: modelplane.StatusRunning})
	if err != nil {
		return err
	}
	var signalled []string
	for _, p := range ps {
		if p.Version == v.Version && p.Kind == "" {
			if err := s.Temporal.SignalWorkflow(ctx, p.WorkflowID, "", workflows.EvidenceChanged, nil); err == nil {
				signalled = append(signalled, p.ID)
			}
		}
	}
	rec := s.record(c, modelplane.AuditEvidenceUpdated, "model/"+v.Model+"@"+v.Version, v.Model, "", map[string]any{"metrics": v.Metrics, "promotions": signalled})
	rec.Version = v.Version
	s.write(c, rec)
	return c.JSON(http.StatusOK, map[string]any{"version": v, "promotions_revalidating": signalled})
}

func (s *Server) listVersions(c echo.Context) error {
	if _, err := s.readModel(c, c.Param("name")); err != nil {
		return err
	}
	vs, err := s.Store.ListVersions(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) getVersion(c echo.Context) error {
	if _, err := s.readModel(c, c.Param("name")); err != nil {
		return err
	}
	v, err := s.Store.GetVersion(c.Request().Context(), c.Param("name"), c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// --- targets ---

func (s *Server) createTarget(c echo.Context) error {
	var t modelplane.Target
	if err := bind(c, &t); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionTargetCreate, Asset: policy.Asset{Kind: policy.KindTarget, Name: t.Name}, Target: targetInfo(t)}); err != nil {
		return err
	}
	prov, err := s.Providers.Provider(t.Provider)
	if err != nil {
		return modelplane.FieldError("provider", "unknown provider %q", t.Provider)
	}
	if err := t.CheckCapabilities(modelplane.CapabilitiesOf(prov)); err != nil {
		return err
	}
	if v, ok := prov.(modelplane.TargetValidator); ok {
		if err := v.ValidateTarget(t); err != nil {
			return err
		}
	}
	t.CreatedAt = time.Time{}
	t, err = s.Store.CreateTarget(c.Request().Context(), t)
	if err != nil {
		return err
	}
	s.audit(c, modelplane.AuditTargetCreated, "target/"+t.Name, "", t.Name, map[string]any{"provider": t.Provider, "environment": t.Environment})
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) listTargets(c echo.Context) error {
	if _, err := s.authorize(c, policy.Input{Action: policy.ActionTargetRead, Asset: policy.Asset{Kind: policy.KindTarget}}); err != nil {
		return err
	}
	ts, err := s.Store.ListTargets(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"targets": ts})
}
