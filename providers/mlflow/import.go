package mlflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// RegistryName is Lineage.Registry for versions imported from MLflow.
const RegistryName = "mlflow"

// Fields named in Import's refusals.
const (
	FieldName    = "mlflow.name"
	FieldVersion = "mlflow.version"
	FieldAlias   = "mlflow.alias"
)

// Ref names a registered model version in MLflow: exactly one of Version
// (MLflow's version number, "3") or Alias ("champion").
type Ref struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Alias   string `json:"alias,omitempty"`
}

var versionRe = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// Check refuses a Ref that names no version or two.
func (r Ref) Check() error {
	switch {
	case strings.TrimSpace(r.Name) == "":
		return invalidField(FieldName, "is required (the registered model's name in MLflow)")
	case r.Version == "" && r.Alias == "":
		return invalidField(FieldVersion, "give %s or %s", FieldVersion, FieldAlias)
	case r.Version != "" && r.Alias != "":
		return invalidField(FieldAlias, "give %s or %s, not both", FieldVersion, FieldAlias)
	case r.Version != "" && !versionRe.MatchString(r.Version):
		return invalidField(FieldVersion, "%q is not an MLflow version number", r.Version)
	}
	return nil
}

// Import resolves ref and returns it as a modelplane Version: Version is
// MLflow's version number, ArtifactURI its storage location (source, or
// where a runs:/ or models:/ source resolves to), Lineage points back at the
// run and the registry, Metrics are the run's latest values, CreatedBy is
// MLflow's user_id. Model is the MLflow name; the caller sets its own model
// name when they differ.
//
// A version still PENDING_REGISTRATION is a retryable error; a
// FAILED_REGISTRATION one, a missing model, version or alias wrap
// modelplane.ErrInvalid and name the Ref field. A run that is missing or
// deleted only means no metrics.
func Import(ctx context.Context, c *Client, ref Ref) (modelplane.Version, error) {
	if err := ref.Check(); err != nil {
		return modelplane.Version{}, err
	}
	var (
		mv  ModelVersion
		err error
	)
	if ref.Version != "" {
		mv, err = c.GetModelVersion(ctx, ref.Name, ref.Version)
		if IsNotFound(err) {
			return modelplane.Version{}, invalidField(FieldVersion, "MLflow has no version %s of registered model %q: %s", ref.Version, ref.Name, quoteMessage(err))
		}
	} else {
		mv, err = c.GetModelVersionByAlias(ctx, ref.Name, ref.Alias)
		switch {
		case IsNotFound(err) && ErrorCode(err) == "RESOURCE_DOES_NOT_EXIST":
			return modelplane.Version{}, invalidField(FieldName, "MLflow has no registered model %q: %s", ref.Name, quoteMessage(err))
		case IsNotFound(err):
			return modelplane.Version{}, invalidField(FieldAlias, "registered model %q has no alias %q in MLflow: %s", ref.Name, ref.Alias, quoteMessage(err))
		}
	}
	if err != nil {
		return modelplane.Version{}, err
	}
	what := fmt.Sprintf("MLflow model %q version %s", ref.Name, mv.Version)
	switch mv.Status {
	case StatusReady:
	case StatusPendingRegistration:
		// Retryable: the registration is still copying files.
		return modelplane.Version{}, fmt.Errorf("mlflow: %s is still %s: %q", what, mv.Status, mv.StatusMessage)
	case StatusFailedRegistration:
		return modelplane.Version{}, invalidField(FieldVersion, "%s is %s: %q", what, mv.Status, mv.StatusMessage)
	default:
		return modelplane.Version{}, invalidField(FieldVersion, "%s has status %q, not READY", what, mv.Status)
	}
	if mv.Source == "" {
		return modelplane.Version{}, invalidField(FieldVersion, "%s has no source", what)
	}

	v := modelplane.Version{
		Model:       mv.Name,
		Version:     mv.Version,
		ArtifactURI: mv.Source,
		CreatedBy:   mv.UserID,
		Lineage: modelplane.Lineage{
			RunID:           mv.RunID,
			Source:          mv.Source,
			RunLink:         mv.RunLink,
			Registry:        RegistryName,
			RegistryModel:   mv.Name,
			RegistryVersion: mv.Version,
		},
	}
	if v.Model == "" {
		v.Model = ref.Name
		v.Lineage.RegistryModel = ref.Name
	}
	if mv.CreationTimestamp > 0 {
		v.CreatedAt = time.UnixMilli(mv.CreationTimestamp).UTC()
	}
	if indirect(mv.Source) {
		uri, err := c.GetModelVersionDownloadURI(ctx, v.Lineage.RegistryModel, mv.Version)
		if err != nil {
			return modelplane.Version{}, err
		}
		if uri != "" {
			v.ArtifactURI = uri
		}
	}
	if mv.RunID != "" {
		run, err := c.GetRun(ctx, mv.RunID)
		switch {
		case IsNotFound(err):
			// The run was purged: the version stands on its own.
		case err != nil:
			return modelplane.Version{}, err
		case run.Info.LifecycleStage == "deleted":
		default:
			if m := run.LatestMetrics(); len(m) > 0 {
				v.Metrics = m
			}
			if v.Lineage.RunLink == "" && run.Info.ExperimentID != "" {
				v.Lineage.RunLink = c.webURL + "/#/experiments/" + url.PathEscape(run.Info.ExperimentID) +
					"/runs/" + url.PathEscape(mv.RunID)
			}
		}
	}
	return v, nil
}

// indirect reports whether source is an MLflow URI (runs:/, models:/) that
// serving platforms cannot read directly.
func indirect(source string) bool {
	return strings.HasPrefix(source, "runs:/") || strings.HasPrefix(source, "models:/")
}

func quoteMessage(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return fmt.Sprintf("%q", e.Message)
	}
	return fmt.Sprintf("%q", err.Error())
}
