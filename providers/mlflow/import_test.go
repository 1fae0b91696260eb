package mlflow_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/mlflow"
	"github.com/modelplane/modelplane/providers/mlflow/mlflowtest"
)

func TestImportByVersion(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	run := s.CreateRun(mlflowtest.Run{ExperimentID: "12", Metrics: map[string]float64{"auc": 0.94, "loss": 0.12, "bad": math.NaN()}})
	s.CreateVersion("fraud", mlflowtest.Version{Source: "s3://old/1"})
	s.CreateVersion("fraud", mlflowtest.Version{Source: "s3://models/fraud/2", RunID: run, RunLink: "https://ml/runs/x", UserID: "alice@example.com"})

	v, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "fraud", Version: "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := modelplane.Lineage{RunID: run, Source: "s3://models/fraud/2", RunLink: "https://ml/runs/x",
		Registry: "mlflow", RegistryModel: "fraud", RegistryVersion: "2"}
	if v.Lineage != want {
		t.Fatalf("lineage %+v, want %+v", v.Lineage, want)
	}
	if v.Model != "fraud" || v.Version != "2" || v.ArtifactURI != "s3://models/fraud/2" || v.CreatedBy != "alice@example.com" || v.CreatedAt.IsZero() {
		t.Fatalf("version %+v", v)
	}
	if len(v.Metrics) != 2 || v.Metrics["auc"] != 0.94 || v.Metrics["loss"] != 0.12 {
		t.Fatalf("metrics %v (NaN must be left out)", v.Metrics)
	}
}

func TestImportByAlias(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	run := s.CreateRun(mlflowtest.Run{ID: "abc123", ExperimentID: "4", ArtifactURI: "gs://runs/4/abc123/artifacts",
		Metrics: map[string]float64{"f1": 0.8}})
	s.CreateVersion("churn", mlflowtest.Version{Source: "runs:/abc123/model", RunID: run})
	if err := c.SetRegisteredModelAlias(ctx, "churn", "champion", "1"); err != nil {
		t.Fatal(err)
	}
	v, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "churn", Alias: "champion"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "1" || v.Lineage.RegistryVersion != "1" || v.Metrics["f1"] != 0.8 {
		t.Fatalf("version %+v", v)
	}
	// A runs:/ source is resolved to where the files are; lineage keeps the source.
	if v.ArtifactURI != "gs://runs/4/abc123/artifacts/model" || v.Lineage.Source != "runs:/abc123/model" {
		t.Fatalf("artifact %q source %q", v.ArtifactURI, v.Lineage.Source)
	}
	// No run_link in MLflow: one is derived from the tracking URI.
	if v.Lineage.RunLink != s.URL+"/#/experiments/4/runs/abc123" {
		t.Fatalf("run link %q", v.Lineage.RunLink)
	}
}

func TestImportRunMissingOrDeleted(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	deleted := s.CreateRun(mlflowtest.Run{Metrics: map[string]float64{"auc": 0.9}})
	s.DeleteRun(deleted)
	s.CreateVersion("m", mlflowtest.Version{RunID: deleted})
	s.CreateVersion("m", mlflowtest.Version{RunID: "never-existed"})
	for _, ver := range []string{"1", "2"} {
		v, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "m", Version: ver})
		if err != nil || v.Metrics != nil {
			t.Fatalf("version %s: metrics %v, err %v; want none, no error", ver, v.Metrics, err)
		}
	}
	// A run that cannot be read for a transient reason is retried, not skipped.
	s.Fail("GET runs/get", 500, 1)
	if _, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "m", Version: "1"}); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("runs/get 500: %v, want retryable", err)
	}
}

func TestImportRefusals(t *testing.T) {
	ctx := context.Background()
	s := mlflowtest.NewServer(t)
	c := newClient(t, s, mlflow.Options{})
	s.CreateVersion("m", mlflowtest.Version{})
	failed := s.CreateVersion("m", mlflowtest.Version{Status: mlflow.StatusFailedRegistration, StatusMessage: "copy failed"})
	pending := s.CreateVersion("m", mlflowtest.Version{Status: mlflow.StatusPendingRegistration})

	for _, tc := range []struct {
		ref   mlflow.Ref
		field string
		quote string
	}{
		{mlflow.Ref{Version: "1"}, "mlflow.name", ""},
		{mlflow.Ref{Name: "m"}, "mlflow.version", ""},
		{mlflow.Ref{Name: "m", Version: "1", Alias: "champion"}, "mlflow.alias", ""},
		{mlflow.Ref{Name: "m", Version: "v1"}, "mlflow.version", ""},
		{mlflow.Ref{Name: "m", Version: "99"}, "mlflow.version", "not found"},
		{mlflow.Ref{Name: "m", Alias: "champion"}, "mlflow.alias", "not found"},
		{mlflow.Ref{Name: "nope", Alias: "champion"}, "mlflow.name", "not found"},
		{mlflow.Ref{Name: "m", Version: failed}, "mlflow.version", "copy failed"},
	} {
		_, err := mlflow.Import(ctx, c, tc.ref)
		var fe *modelplane.Error
		if !errors.Is(err, modelplane.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: err = %v, want ErrInvalid naming %s", tc.ref, err, tc.field)
			continue
		}
		if !strings.Contains(err.Error(), tc.quote) {
			t.Errorf("%+v: err = %v, want it to quote %q", tc.ref, err, tc.quote)
		}
	}

	_, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "m", Version: pending})
	if err == nil || errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "PENDING_REGISTRATION") {
		t.Fatalf("pending: %v, want retryable", err)
	}
	s.SetStatus("m", pending, mlflow.StatusReady, "")
	if _, err := mlflow.Import(ctx, c, mlflow.Ref{Name: "m", Version: pending}); err != nil {
		t.Fatalf("after registration finished: %v", err)
	}
}
