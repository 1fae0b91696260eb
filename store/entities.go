package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

type modelRow struct {
	Name        string `gorm:"primaryKey;size:63"`
	Owner       string
	Team        string `gorm:"index"`
	RiskTier    string
	Description string
	DataDomain  string
	Tags        map[string]string `gorm:"serializer:json"`
	CreatedAt   time.Time
}

func (modelRow) TableName() string { return "models" }

type versionRow struct {
	Model       string `gorm:"primaryKey;size:63"`
	Version     string `gorm:"primaryKey;size:63"`
	ArtifactURI string
	RunID       string
	Source      string
	// Where the version came from (lineage.registry …), when imported.
	RunLink         string
	Registry        string `gorm:"size:32"`
	RegistryModel   string
	RegistryVersion string             `gorm:"size:63"`
	Metrics         map[string]float64 `gorm:"serializer:json"`
	CreatedBy       string
	CreatedAt       time.Time
}

func (versionRow) TableName() string { return "versions" }

type targetRow struct {
	Name      string            `gorm:"primaryKey;size:63"`
	Doc       modelplane.Target `gorm:"serializer:json"`
	CreatedAt time.Time
}

func (targetRow) TableName() string { return "targets" }

// promotionRow keeps the promotion as a document written by its workflow,
// plus the columns the API filters on. ActiveKey is model/target while the
// promotion runs and NULL after: its unique index allows one active promotion per pair.
type promotionRow struct {
	ID          string  `gorm:"primaryKey;size:64"`
	Model       string  `gorm:"index:idx_prom_model_target"`
	Target      string  `gorm:"index:idx_prom_model_target"`
	Status      string  `gorm:"index"`
	ActiveKey   *string `gorm:"uniqueIndex"`
	IdemKey     *string `gorm:"uniqueIndex"`
	RequestedBy string
	Seq         int64
	Doc         modelplane.Promotion `gorm:"serializer:json"`
	CreatedAt   time.Time            `gorm:"index"`
}

func (promotionRow) TableName() string { return "promotions" }

type deploymentRow struct {
	Model  string                `gorm:"primaryKey;size:63"`
	Target string                `gorm:"primaryKey;size:63"`
	Doc    modelplane.Deployment `gorm:"serializer:json"`
}

func (deploymentRow) TableName() string { return "deployments" }

type retrainRow struct {
	EventID string `gorm:"primaryKey;size:255"`
	Model   string `gorm:"index:idx_retrain_pair"`
	Target  string `gorm:"index:idx_retrain_pair"`
	Version string
	Reason  string
	SentAt  time.Time
}

func (retrainRow) TableName() string { return "retrains" }

// --- models ---

// CreateModel stores a new model; a taken name is a conflict.
func (s *Store) CreateModel(ctx context.Context, m modelplane.Model) (modelplane.Model, error) {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	row := modelRow{Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Description: m.Description, DataDomain: m.DataDomain, Tags: m.Tags, CreatedAt: m.CreatedAt}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		if isUniqueViolation(err) {
			return m, &modelplane.Error{Code: modelplane.EConflict, Field: "name", Message: fmt.Sprintf("model %q already exists", m.Name)}
		}
		return m, err
	}
	return m, nil
}

// PutModel replaces a model's owner, team, risk tier and description.
func (s *Store) PutModel(ctx context.Context, m modelplane.Model) error {
	row := modelRow{Name: m.Name, Owner: m.Owner, Team: m.Team, RiskTier: string(m.RiskTier), Description: m.Description, DataDomain: m.DataDomain, Tags: m.Tags, CreatedAt: m.CreatedAt}
	return s.db.WithContext(ctx).Save(&row).Error
}

func (r modelRow) domain() modelplane.Model {
	return modelplane.Model{Name: r.Name, Owner: r.Owner, Team: r.Team, RiskTier: modelplane.RiskTier(r.RiskTier), Description: r.Description, DataDomain: r.DataDomain, Tags: r.Tags, CreatedAt: r.CreatedAt.UTC()}
}

// GetModel returns a model by name.
func (s *Store) GetModel(ctx context.Context, name string) (modelplane.Model, error) {
	var row modelRow
	if err := s.rdb.WithContext(ctx).First(&row, "name = ?", name).Error; err != nil {
		return modelplane.Model{}, notFound(err, "model %q not found", name)
	}
	return row.domain(), nil
}

// ListModels returns every model by name.
func (s *Store) ListModels(ctx context.Context) ([]modelplane.Model, error) {
	var rows []modelRow
	if err := s.rdb.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.Model, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// --- versions ---

// CreateVersion stores a version of an existing model.
func (s *Store) CreateVersion(ctx context.Context, v modelplane.Version) (modelplane.Version, error) {
	if _, err := s.GetModel(ctx, v.Model); err != nil {
		return v, err
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now().UTC()
	}
	row := versionRow{Model: v.Model, Version: v.Version, ArtifactURI: v.ArtifactURI, RunID: v.Lineage.RunID, Source: v.Lineage.Source,
		RunLink: v.Lineage.RunLink, Registry: v.Lineage.Registry, RegistryModel: v.Lineage.RegistryModel, RegistryVersion: v.Lineage.RegistryVersion,
		Metrics: v.Metrics, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		if isUniqueViolation(err) {
			return v, &modelplane.Error{Code: modelplane.EConflict, Field: "version", Message: fmt.Sprintf("version %q of model %q already exists", v.Version, v.Model)}
		}
		return v, err
	}
	return v, nil
}

func (r versionRow) domain() modelplane.Version {
	l := modelplane.Lineage{RunID: r.RunID, Source: r.Source, RunLink: r.RunLink, Registry: r.Registry, RegistryModel: r.RegistryModel, RegistryVersion: r.RegistryVersion}
	return modelplane.Version{Model: r.Model, Version: r.Version, ArtifactURI: r.ArtifactURI, Lineage: l, Metrics: r.Metrics, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC()}
}

// GetVersion returns one version of a model.
func (s *Store) GetVersion(ctx context.Context, model, version string) (modelplane.Version, error) {
	var row versionRow
	if err := s.rdb.WithContext(ctx).First(&row, "model = ? AND version = ?", model, version).Error; err != nil {
		return modelplane.Version{}, notFound(err, "version %q of model %q not found", version, model)
	}
	return row.domain(), nil
}

// ListVersions returns a model's versions, oldest first.
func (s *Store) ListVersions(ctx context.Context, model string) ([]modelplane.Version, error) {
	if _, err := s.GetModel(ctx, model); err != nil {
		return nil, err
	}
	var rows []versionRow
	if err := s.rdb.WithContext(ctx).Where("model = ?", model).Order("created_at, version").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.Version, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// --- targets ---

// CreateTarget stores a new target.
func (s *Store) CreateTarget(ctx context.Context, t modelplane.Target) (modelplane.Target, error) {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC()
	}
	if err := s.db.WithContext(ctx).Create(&targetRow{Name: t.Name, Doc: t, CreatedAt: t.CreatedAt}).Error; err != nil {
		if isUniqueViolation(err) {
			return t, &modelplane.Error{Code: modelplane.EConflict, Field: "name", Message: fmt.Sprintf("target %q already exists", t.Name)}
		}
		return t, err
	}
	return t, nil
}

// GetTarget returns a target by name.
func (s *Store) GetTarget(ctx context.Context, name string) (modelplane.Target, error) {
	var row targetRow
	if err := s.rdb.WithContext(ctx).First(&row, "name = ?", name).Error; err != nil {
		return modelplane.Target{}, notFound(err, "target %q not found", name)
	}
	return row.Doc, nil
}

// ListTargets returns every target by name.
func (s *Store) ListTargets(ctx context.Context) ([]modelplane.Target, error) {
	var rows []targetRow
	if err := s.rdb.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.Target, len(rows))
	for i, r := range rows {
		out[i] = r.Doc
	}
	return out, nil
}

// --- promotions ---

func activeKey(model, target string) *string {
	k := model + "/" + target
	return &k
}

// CreatePromotion stores a new running promotion. With an idempotency key
// already used by the same caller it returns the earlier promotion and
// created=false. A running promotion for the same model and target is a
// conflict that names it.
func (s *Store) CreatePromotion(ctx context.Context, p modelplane.Promotion, idemKey string) (modelplane.Promotion, bool, error) {
	var idem *string
	if idemKey != "" {
		k := fmt.Sprintf("%d:%s:%s", len(p.RequestedBy), p.RequestedBy, idemKey) // unambiguous per caller
		idem = &k
		var prev promotionRow
		err := s.db.WithContext(ctx).First(&prev, "idem_key = ?", k).Error
		if err == nil {
			return prev.Doc, false, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return p, false, err
		}
	}
	row := promotionRow{ID: p.ID, Model: p.Model, Target: p.Target, Status: p.Status, ActiveKey: activeKey(p.Model, p.Target), IdemKey: idem, RequestedBy: p.RequestedBy, Doc: p, CreatedAt: p.CreatedAt}
	err := s.db.WithContext(ctx).Create(&row).Error
	if err == nil {
		return p, true, nil
	}
	if !isUniqueViolation(err) {
		return p, false, err
	}
	// Either the idempotency key raced with itself or the pair is busy.
	if idem != nil {
		var prev promotionRow
		if s.db.WithContext(ctx).First(&prev, "idem_key = ?", *idem).Error == nil {
			return prev.Doc, false, nil
		}
	}
	var running promotionRow
	if s.db.WithContext(ctx).First(&running, "active_key = ?", *row.ActiveKey).Error == nil {
		return p, false, &modelplane.Error{Code: modelplane.EConflict, Field: "target",
			Message: fmt.Sprintf("promotion %s of %s version %s to %s is still running", running.ID, running.Model, running.Doc.Version, running.Target)}
	}
	return p, false, err
}

// GetPromotion returns a promotion by id.
func (s *Store) GetPromotion(ctx context.Context, id string) (modelplane.Promotion, error) {
	var row promotionRow
	if err := s.rdb.WithContext(ctx).First(&row, "id = ?", id).Error; err != nil {
		return modelplane.Promotion{}, notFound(err, "promotion %q not found", id)
	}
	return row.Doc, nil
}

// ActivePromotion returns the running promotion for a model and target, if any.
func (s *Store) ActivePromotion(ctx context.Context, model, target string) (modelplane.Promotion, bool, error) {
	var row promotionRow
	err := s.db.WithContext(ctx).First(&row, "active_key = ?", *activeKey(model, target)).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.Promotion{}, false, nil
	}
	return row.Doc, err == nil, err
}

// PromotionFilter narrows ListPromotions; empty fields match everything.
type PromotionFilter struct {
	Model, Target, Status string
	// RequestedBy matches the requester exactly.
	RequestedBy string
	// Models, when not nil, keeps promotions of these models (or MCP
	// servers) only: a team's. An empty, non-nil list matches nothing.
	Models []string
	// Stage matches the stage in the promotion's document. It implies
	// Status running unless Status is set (or Stage is done): the matching
	// rows are read in batches and filtered until Limit are found.
	Stage string
	// Before and After are cursors (PromotionCursor): they keep the
	// promotions strictly older, or strictly newer, than the one the cursor
	// names, in (created_at, id) order. Pass the last promotion of a page as
	// Before (newest first) or After (OldestFirst) to read the next page.
	Before, After string
	// OldestFirst lists in ascending (created_at, id) order; the default is newest first.
	OldestFirst bool
	// Limit caps the list (default 100, at most 1000).
	Limit int
}

// PromotionCursor is an opaque position in a listing of promotions, just
// past p: base64url of its created_at (RFC 3339) and id.
func PromotionCursor(p modelplane.Promotion) string {
	return base64.RawURLEncoding.EncodeToString([]byte(p.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + p.ID))
}

// ParsePromotionCursor reads a cursor made by PromotionCursor.
func ParsePromotionCursor(cursor string) (createdAt time.Time, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", errors.New("not a promotion cursor")
	}
	at, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", errors.New("not a promotion cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", errors.New("not a promotion cursor: bad time")
	}
	return t, id, nil
}

// promotionQuery applies f's column filters and cursors.
func (s *Store) promotionQuery(ctx context.Context, f PromotionFilter) (*gorm.DB, error) {
	q := s.db.WithContext(ctx).Model(&promotionRow{})
	for _, c := range []struct{ col, v string }{{"model", f.Model}, {"target", f.Target}, {"status", f.Status}, {"requested_by", f.RequestedBy}} {
		if c.v != "" {
			q = q.Where(c.col+" = ?", c.v)
		}
	}
	if f.Models != nil {
		q = q.Where("model IN ?", f.Models)
	}
	for _, c := range []struct {
		field, cursor string
		older         bool
	}{{"before", f.Before, true}, {"after", f.After, false}} {
		if c.cursor == "" {
			continue
		}
		at, id, err := ParsePromotionCursor(c.cursor)
		if err != nil {
			return nil, modelplane.FieldError(c.field, "is not a cursor from a previous page: %v", err)
		}
		if q, err = s.beyond(ctx, q, at, id, c.older); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// beyond keeps the rows strictly older (or newer) than promotion id in
// (created_at, id) order. While the promotion exists its stored created_at
// is compared, not the cursor's copy: the column may hold less precision
// (microseconds on PostgreSQL) than the document the cursor was made from.
func (s *Store) beyond(ctx context.Context, q *gorm.DB, at time.Time, id string, older bool) (*gorm.DB, error) {
	op := ">"
	if older {
		op = "<"
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&promotionRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return nil, err
	}
	// Written as a range on created_at first, so the index bounds the scan
	// (an OR of the two cases alone makes SQLite read every row).
	if n > 0 {
		ref := s.db.Model(&promotionRow{}).Select("created_at").Where("id = ?", id)
		return q.Where("created_at "+op+"= (?) AND (created_at "+op+" (?) OR id "+op+" ?)", ref, ref, id), nil
	}
	return q.Where("created_at "+op+"= ? AND (created_at "+op+" ? OR id "+op+" ?)", at.UTC(), at.UTC(), id), nil
}

// ListPromotions returns promotions, newest first (oldest first with
// f.OldestFirst), at most f.Limit of them.
func (s *Store) ListPromotions(ctx context.Context, f PromotionFilter) ([]modelplane.Promotion, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.Models != nil && len(f.Models) == 0 {
		return []modelplane.Promotion{}, nil
	}
	if f.Stage != "" && f.Status == "" && f.Stage != modelplane.StageDone {
		f.Status = modelplane.StatusRunning
	}
	order := "created_at DESC, id DESC"
	if f.OldestFirst {
		order = "created_at, id"
	}
	q, err := s.promotionQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	if f.Stage == "" {
		var rows []promotionRow
		if err := q.Order(order).Limit(f.Limit).Find(&rows).Error; err != nil {
			return nil, err
		}
		out := make([]modelplane.Promotion, len(rows))
		for i, r := range rows {
			out[i] = r.Doc
		}
		return out, nil
	}
	// The stage is in the document: read in batches past the last row
	// read, keep the matches, stop at Limit or at the end.
	batch := min(max(2*f.Limit, 100), 500)
	out := []modelplane.Promotion{}
	q = q.Session(&gorm.Session{}) // each batch adds its own conditions to a copy
	var last *promotionRow
	for {
		page := q
		if last != nil {
			if page, err = s.beyond(ctx, q, last.CreatedAt, last.ID, !f.OldestFirst); err != nil {
				return nil, err
			}
		}
		var rows []promotionRow
		if err := page.Order(order).Limit(batch).Find(&rows).Error; err != nil {
			return nil, err
		}
		for i := range rows {
			if rows[i].Doc.Stage != f.Stage {
				continue
			}
			if out = append(out, rows[i].Doc); len(out) == f.Limit {
				return out, nil
			}
		}
		if len(rows) < batch {
			return out, nil
		}
		last = &rows[len(rows)-1]
	}
}

// RunningByStage counts the running promotions in each stage (the stage
// lives in the document, so the running ones are read in batches).
func (s *Store) RunningByStage(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	var rows []promotionRow
	err := s.db.WithContext(ctx).Model(&promotionRow{}).Select("id", "doc").Where("status = ?", modelplane.StatusRunning).
		FindInBatches(&rows, 500, func(*gorm.DB, int) error {
			for _, r := range rows {
				out[r.Doc.Stage]++
			}
			return nil
		}).Error
	return out, err
}

// UpdatePromotion writes the workflow's view of a promotion. seq grows with
// every write from the workflow, so a retried, late write never overwrites a newer one.
func (s *Store) UpdatePromotion(ctx context.Context, p modelplane.Promotion, seq int64) error {
	return updatePromotion(s.db.WithContext(ctx), p, seq)
}

// updatePromotion is UpdatePromotion on db, a transaction or the store's
// writer.
func updatePromotion(db *gorm.DB, p modelplane.Promotion, seq int64) error {
	cols := []string{"status", "seq", "doc"}
	if modelplane.Terminal(p.Status) {
		cols = append(cols, "active_key") // set to NULL: the pair is free again
	}
	res := db.Model(&promotionRow{}).Where("id = ? AND seq < ?", p.ID, seq).Select(cols).
		Updates(&promotionRow{Status: p.Status, Seq: seq, Doc: p})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		// Stale (seq not newer) is fine; missing is not.
		var row promotionRow
		if err := db.Select("id").First(&row, "id = ?", p.ID).Error; err != nil {
			return notFound(err, "promotion %q not found", p.ID)
		}
	}
	return nil
}

// FailPromotion marks a promotion whose workflow could not be started.
func (s *Store) FailPromotion(ctx context.Context, id, reason string) error {
	p, err := s.GetPromotion(ctx, id)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	p.Status, p.Stage, p.Reason, p.FinishedAt = modelplane.StatusFailed, modelplane.StageDone, reason, &now
	return s.UpdatePromotion(ctx, p, 1<<62)
}

// --- deployments ---

// GetDeployment returns what serves a model on a target; found=false when nothing does yet.
func (s *Store) GetDeployment(ctx context.Context, model, target string) (modelplane.Deployment, bool, error) {
	var row deploymentRow
	err := s.rdb.WithContext(ctx).First(&row, "model = ? AND target = ?", model, target).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return modelplane.Deployment{Model: model, Target: target}, false, nil
	}
	if err != nil {
		return modelplane.Deployment{}, false, err
	}
	return row.Doc, true, nil
}

// PutDeployment replaces a deployment.
func (s *Store) PutDeployment(ctx context.Context, d modelplane.Deployment) error {
	return putDeployment(s.db.WithContext(ctx), d)
}

func putDeployment(db *gorm.DB, d modelplane.Deployment) error {
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = time.Now().UTC()
	}
	return db.Save(&deploymentRow{Model: d.Model, Target: d.Target, Doc: d}).Error
}

// ListDeployments returns every deployment.
func (s *Store) ListDeployments(ctx context.Context) ([]modelplane.Deployment, error) {
	var rows []deploymentRow
	if err := s.rdb.WithContext(ctx).Order("target, model").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]modelplane.Deployment, len(rows))
	for i, r := range rows {
		out[i] = r.Doc
	}
	return out, nil
}

// --- retrains ---

// LastRetrain returns when a retrain was last sent for a model and target, other than eventID.
func (s *Store) LastRetrain(ctx context.Context, model, target, eventID string) (time.Time, bool, error) {
	var row retrainRow
	err := s.db.WithContext(ctx).Where("model = ? AND target = ? AND event_id <> ?", model, target, eventID).Order("sent_at DESC").First(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return row.SentAt.UTC(), true, nil
}

// RecordRetrain remembers a sent retrain request; recording the same event twice is a no-op.
func (s *Store) RecordRetrain(ctx context.Context, eventID, model, target, version, reason string, at time.Time) error {
	return s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&retrainRow{EventID: eventID, Model: model, Target: target, Version: version, Reason: reason, SentAt: at.UTC()}).Error
}

// --- alert notifications ---

type alertRow struct {
	Key        string `gorm:"primaryKey;size:255"` // fingerprint/startsAt/status
	ReceivedAt time.Time
}

func (alertRow) TableName() string { return "alert_notifications" }

// SeenAlert records an alert notification and reports whether it was new:
// Alertmanager repeats notifications, and a repeat must not act twice.
func (s *Store) SeenAlert(ctx context.Context, fingerprint string, startsAt time.Time, status string) (bool, error) {
	key := fmt.Sprintf("%s/%d/%s", fingerprint, startsAt.UTC().UnixNano(), status)
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&alertRow{Key: key, ReceivedAt: time.Now().UTC()})
	return res.RowsAffected == 1, res.Error
}

// PutTarget replaces a target's configuration.
func (s *Store) PutTarget(ctx context.Context, t modelplane.Target) error {
	return s.db.WithContext(ctx).Save(&targetRow{Name: t.Name, Doc: t, CreatedAt: t.CreatedAt}).Error
}

// SeenDelivery records a webhook delivery id from source and reports whether
// it was new: a replayed or retried delivery must not act twice.
func (s *Store) SeenDelivery(ctx context.Context, source, id string) (bool, error) {
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&alertRow{Key: "delivery/" + source + "/" + id, ReceivedAt: time.Now().UTC()})
	return res.RowsAffected == 1, res.Error
}

// HasDelivery reports whether a webhook delivery id from source was recorded.
func (s *Store) HasDelivery(ctx context.Context, source, id string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&alertRow{}).Where("key = ?", "delivery/"+source+"/"+id).Count(&n).Error
	return n > 0, err
}
