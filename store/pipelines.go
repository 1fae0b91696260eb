package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/modelplane/modelplane"
	"gorm.io/gorm"
)

type pipelineRow struct {
	Name      string              `gorm:"primaryKey;size:63"`
	Team      string              `gorm:"size:63"`
	Doc       modelplane.Pipeline `gorm:"serializer:json"`
	UpdatedAt time.Time
}

func (pipelineRow) TableName() string { return "pipelines" }

// settingRow holds one switch of the whole installation (the freeze).
type settingRow struct {
	Key       string `gorm:"primaryKey;size:63"`
	Doc       string
	UpdatedAt time.Time
}

func (settingRow) TableName() string { return "settings" }

// PutPipeline creates or replaces a pipeline.
func (s *Store) PutPipeline(ctx context.Context, p modelplane.Pipeline) (modelplane.Pipeline, error) {
	p.UpdatedAt = time.Now().UTC()
	return p, s.db.WithContext(ctx).Save(&pipelineRow{Name: p.Name, Team: p.Team, Doc: p, UpdatedAt: p.UpdatedAt}).Error
}

// GetPipeline returns a pipeline by name.
func (s *Store) GetPipeline(ctx context.Context, name string) (modelplane.Pipeline, error) {
	var row pipelineRow
	if err := s.rdb.WithContext(ctx).First(&row, "name = ?", name).Error; err != nil {
		return modelplane.Pipeline{}, notFound(err, "pipeline %q not found", name)
	}
	return row.Doc, nil
}

// ListPipelines returns every pipeline by name.
func (s *Store) ListPipelines(ctx context.Context) ([]modelplane.Pipeline, error) {
	var rows []pipelineRow
	if err := s.rdb.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.Pipeline, len(rows))
	for i, r := range rows {
		out[i] = r.Doc
	}
	return out, nil
}

// DeletePipeline removes a pipeline (runs already started go on).
func (s *Store) DeletePipeline(ctx context.Context, name string) error {
	return s.db.WithContext(ctx).Delete(&pipelineRow{}, "name = ?", name).Error
}

// Freeze is the switch that stops new promotions everywhere at once.
type Freeze struct {
	On     bool      `json:"on"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

const freezeKey = "freeze"

// GetFreeze reads the freeze switch (off when never set).
func (s *Store) GetFreeze(ctx context.Context) (Freeze, error) {
	var row settingRow
	err := s.rdb.WithContext(ctx).First(&row, "key = ?", freezeKey).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Freeze{}, nil
	}
	if err != nil {
		return Freeze{}, err
	}
	var f Freeze
	return f, json.Unmarshal([]byte(row.Doc), &f)
}

// SetFreeze turns the freeze on or off.
func (s *Store) SetFreeze(ctx context.Context, f Freeze) error {
	if f.Since.IsZero() {
		f.Since = time.Now().UTC()
	}
	doc, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.db.WithContext(ctx).Save(&settingRow{Key: freezeKey, Doc: string(doc), UpdatedAt: f.Since}).Error
}

// Soak is a version soaking in a stage of a pipeline: while it does, other
// versions of the model wait before entering that stage (their promotion
// would end its soak).
type Soak struct {
	Version string    `json:"version"`
	Until   time.Time `json:"until"`
}

func soakKey(pipeline, model, stage string) string {
	return "soak/" + pipeline + "/" + model + "/" + stage
}

// BeginSoak records version soaking in stages until a time.
func (s *Store) BeginSoak(ctx context.Context, pipeline, model string, stages []string, k Soak) error {
	doc, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, st := range stages {
			if err := tx.Save(&settingRow{Key: soakKey(pipeline, model, st), Doc: string(doc), UpdatedAt: time.Now().UTC()}).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// EndSoak forgets version's soak in stages (a later version's stays).
func (s *Store) EndSoak(ctx context.Context, pipeline, model, version string, stages []string) error {
	for _, st := range stages {
		k, ok, err := s.GetSoak(ctx, pipeline, model, st)
		if err != nil {
			return err
		}
		if ok && k.Version == version {
			if err := s.db.WithContext(ctx).Delete(&settingRow{}, "key = ?", soakKey(pipeline, model, st)).Error; err != nil {
				return err
			}
		}
	}
	return nil
}

// GetSoak reads what soaks in a stage, if anything.
func (s *Store) GetSoak(ctx context.Context, pipeline, model, stage string) (Soak, bool, error) {
	var row settingRow
	err := s.rdb.WithContext(ctx).First(&row, "key = ?", soakKey(pipeline, model, stage)).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Soak{}, false, nil
	}
	if err != nil {
		return Soak{}, false, err
	}
	var k Soak
	return k, true, json.Unmarshal([]byte(row.Doc), &k)
}
