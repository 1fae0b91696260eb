package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
	"gorm.io/gorm"
)

// auditRow is one link of the audit chain (see package audit). Seq is
// assigned by AppendAudit, not by the database, so that the hash — which
// covers it — can be computed before the insert.
type auditRow struct {
	Seq          int64  `gorm:"primaryKey;autoIncrement"`
	Key          string `gorm:"uniqueIndex;size:255"`
	Time         time.Time
	Actor        string `gorm:"index"`
	Action       string
	Subject      string
	PromotionID  string `gorm:"index"`
	Model        string `gorm:"index"`
	Target       string
	Decision     string
	Details      map[string]any `gorm:"serializer:json"`
	Version      string
	Policy       *modelplane.PolicyDecision `gorm:"serializer:json"`
	EvidenceHash string
	PrevHash     string
	Hash         string
}

func (auditRow) TableName() string { return "audit_records" }

func auditRowOf(r modelplane.AuditRecord) auditRow {
	return auditRow{Seq: r.Seq, Key: r.Key, Time: r.Time, Actor: r.Actor, Action: string(r.Action), Subject: r.Subject, PromotionID: r.PromotionID,
		Model: r.Model, Target: r.Target, Decision: r.Decision, Details: r.Details, Version: r.Version, Policy: r.Policy,
		EvidenceHash: r.EvidenceHash, PrevHash: r.PrevHash, Hash: r.Hash}
}

func (r auditRow) domain() modelplane.AuditRecord {
	return modelplane.AuditRecord{Seq: r.Seq, Key: r.Key, Time: r.Time.UTC(), Actor: r.Actor, Action: modelplane.AuditAction(r.Action), Subject: r.Subject, PromotionID: r.PromotionID,
		Model: r.Model, Target: r.Target, Decision: r.Decision, Details: r.Details, Version: r.Version, Policy: r.Policy,
		EvidenceHash: r.EvidenceHash, PrevHash: r.PrevHash, Hash: r.Hash}
}

// AppendAudit adds records to the end of the audit chain, in order. A record
// whose key exists is skipped, so a retried write is a no-op and does not
// extend the chain. Each new record gets the next seq, prev_hash = the hash
// of the record before it (audit.Genesis for the first) and its own hash;
// its time is kept at microsecond precision. Appends are serialized — an
// advisory lock on PostgreSQL, the write lock of BEGIN IMMEDIATE on SQLite —
// so concurrent writers, in one process or several, never fork the chain.
// Seq, PrevHash and Hash given by the caller are ignored.
func (s *Store) AppendAudit(ctx context.Context, recs ...modelplane.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := auditKeysPresent(recs); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return s.appendAudit(tx, recs) })
}

// auditKeysPresent refuses records without a key before any transaction
// opens: a key is what makes an append idempotent.
func auditKeysPresent(recs []modelplane.AuditRecord) error {
	for _, r := range recs {
		if r.Key == "" {
			return fmt.Errorf("audit record %q has no key", r.Action)
		}
	}
	return nil
}

// appendAudit is AppendAudit inside the caller's transaction, for records
// auditKeysPresent accepted.
func (s *Store) appendAudit(tx *gorm.DB, recs []modelplane.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	now := time.Now().UTC()
	if s.postgres {
		// Held to the end of the transaction: the next appender reads the
		// tip only after this one's records are committed.
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", auditLockKey).Error; err != nil {
			return err
		}
	}
	var existing []string
	if err := tx.Model(&auditRow{}).Where("key IN ?", keys).Pluck("key", &existing).Error; err != nil {
		return err
	}
	skip := make(map[string]bool, len(existing)+len(recs))
	for _, k := range existing {
		skip[k] = true
	}
	var tip struct {
		Seq  int64
		Hash *string
	}
	if err := tx.Raw("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").Scan(&tip).Error; err != nil {
		return err
	}
	prev := audit.Genesis
	if tip.Seq > 0 {
		prev = "" // an unsealed tip: the chain is already broken there, and Verify will say so
		if tip.Hash != nil {
			prev = *tip.Hash
		}
	}
	rows := make([]auditRow, 0, len(recs))
	for _, r := range recs {
		if skip[r.Key] {
			continue
		}
		skip[r.Key] = true // the same key twice in one call
		if r.Time.IsZero() {
			r.Time = now
		}
		r.Time = r.Time.UTC().Truncate(audit.TimePrecision)
		tip.Seq++
		r.Seq, r.PrevHash = tip.Seq, prev
		r.Hash = audit.Hash(r)
		prev = r.Hash
		rows = append(rows, auditRowOf(r))
	}
	if len(rows) == 0 {
		return nil
	}
	return tx.Create(&rows).Error
}

// AuditFilter narrows ListAudit and ExportAudit; empty fields match everything.
type AuditFilter struct {
	Model, PromotionID, Actor string
	// Version and Action match exactly.
	Version string
	Action  modelplane.AuditAction
	// Subject and Decision match exactly (a tool call's subject is
	// "server/tool", its decision the outcome); Agent matches the
	// details' agent, the OAuth client a tool call came through.
	Subject, Decision, Agent string
	// ExcludeActions leaves these actions out (the scorecard reads
	// lifecycle records without the flood of tool calls).
	ExcludeActions []modelplane.AuditAction
	// Since and Until bound the record's time: Since <= time < Until.
	Since, Until time.Time
	// AfterSeq and BeforeSeq bound the record's seq: AfterSeq < seq <
	// BeforeSeq; zero leaves that side open.
	AfterSeq, BeforeSeq int64
	// Newest makes ListAudit return the newest records first (seq
	// descending). Exports and scans of the chain keep seq order.
	Newest bool
	// Limit caps ListAudit (default 1000, at most 5000) and, when positive, ExportAudit.
	Limit int
}

// PageSize is how many records ListAudit returns at most for f: a page
// this long may have more after it.
func (f AuditFilter) PageSize() int {
	if f.Limit <= 0 || f.Limit > 5000 {
		return 1000
	}
	return f.Limit
}

func (s *Store) auditQuery(ctx context.Context, f AuditFilter) *gorm.DB {
	q := s.db.WithContext(ctx).Model(&auditRow{})
	if f.Model != "" {
		q = q.Where("model = ?", f.Model)
	}
	if f.PromotionID != "" {
		q = q.Where("promotion_id = ?", f.PromotionID)
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Version != "" {
		q = q.Where("version = ?", f.Version)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if len(f.ExcludeActions) > 0 {
		q = q.Where("action NOT IN ?", f.ExcludeActions)
	}
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.Decision != "" {
		q = q.Where("decision = ?", f.Decision)
	}
	if f.Agent != "" {
		// details is JSON text in both dialects.
		if s.postgres {
			q = q.Where("(details::jsonb)->>'agent' = ?", f.Agent)
		} else {
			q = q.Where("json_extract(details, '$.agent') = ?", f.Agent)
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("time >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("time < ?", f.Until.UTC())
	}
	if f.AfterSeq > 0 {
		q = q.Where("seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		q = q.Where("seq < ?", f.BeforeSeq)
	}
	return q
}

// ListAudit returns records in the order they were written (by seq; the
// newest first with f.Newest), with their chain fields.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]modelplane.AuditRecord, error) {
	order := "seq"
	if f.Newest {
		order = "seq DESC"
	}
	var rows []auditRow
	if err := s.auditQuery(ctx, f).Order(order).Limit(f.PageSize()).Find(&rows).Error; err != nil {
		return nil, err
	}
	return auditRecords(rows), nil
}

func auditRecords(rows []auditRow) []modelplane.AuditRecord {
	out := make([]modelplane.AuditRecord, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out
}

// AuditSince returns the records written after seq, in seq order, at most
// limit (default 500, at most 5000): what a live feed polls for.
func (s *Store) AuditSince(ctx context.Context, seq int64, limit int) ([]modelplane.AuditRecord, error) {
	if limit <= 0 {
		limit = 500
	}
	limit = min(limit, 5000)
	var rows []auditRow
	if err := s.db.WithContext(ctx).Where("seq > ?", seq).Order("seq").Limit(limit).Find(&rows).Error; err != nil {
		return nil, err
	}
	return auditRecords(rows), nil
}

// AuditHead is the seq of the newest record, 0 when there is none: a live
// feed starts there.
func (s *Store) AuditHead(ctx context.Context) (int64, error) {
	var head int64
	err := s.db.WithContext(ctx).Model(&auditRow{}).Select("COALESCE(MAX(seq), 0)").Row().Scan(&head)
	return head, err
}

// auditBatch is how many records a scan of the chain reads at a time.
const auditBatch = 500

// scanAudit calls fn with the records f matches, in seq order, in batches
// so memory stays flat however long the chain; fn returns false to stop.
func (s *Store) scanAudit(ctx context.Context, f AuditFilter, fn func(modelplane.AuditRecord) (bool, error)) error {
	after := int64(math.MinInt64)
	for {
		var rows []auditRow
		if err := s.auditQuery(ctx, f).Where("seq > ?", after).Order("seq").Limit(auditBatch).Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			more, err := fn(r.domain())
			if err != nil || !more {
				return err
			}
			after = r.Seq
		}
		if len(rows) < auditBatch {
			return nil
		}
	}
}

// VerifyAudit walks the whole chain in seq order and returns its first
// break (nil when intact) and the number of records read. It proves the
// stored records are the ones appended, unaltered and in order, up to the
// tip; a tail cut off or rewritten entirely needs the tip's hash, kept
// elsewhere, to show.
func (s *Store) VerifyAudit(ctx context.Context) (*audit.Break, int, error) {
	var v audit.Verifier
	err := s.scanAudit(ctx, AuditFilter{}, func(r modelplane.AuditRecord) (bool, error) { return !v.Add(r), nil })
	if err != nil {
		return nil, v.Count(), err
	}
	return v.Finish(), v.Count(), nil
}

// ExportAudit writes the records f matches as JSON Lines, one AuditRecord
// per line in seq order, with seq, prev_hash and hash. An export with an
// empty filter is the full chain, which audit.VerifyJSONL checks offline.
func (s *Store) ExportAudit(ctx context.Context, w io.Writer, f AuditFilter) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	err := s.scanAudit(ctx, f, func(r modelplane.AuditRecord) (bool, error) {
		if err := enc.Encode(r); err != nil {
			return false, err
		}
		n++
		return f.Limit <= 0 || n < f.Limit, nil
	})
	return n, err
}

// sealAuditChain (migration 0002) chains the records written before the
// audit trail was a chain: in seq order, renumbered 1, 2, 3 … (PostgreSQL's
// sequence left gaps on skipped duplicates, and a gap now means a deletion)
// and hashed. It reads the columns of 0002 explicitly, not through
// auditRow, which later migrations may change.
func sealAuditChain(ctx context.Context, tx *sql.Tx, d dialect) error {
	type legacy struct {
		oldSeq int64
		rec    modelplane.AuditRecord
	}
	prev, next, after := audit.Genesis, int64(1), int64(math.MinInt64)
	for {
		rows, err := tx.QueryContext(ctx, d.bind(`SELECT seq, key, time, actor, action, subject, promotion_id, model, target, decision, details
			FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`), after, auditBatch)
		if err != nil {
			return err
		}
		var batch []legacy
		for rows.Next() {
			var (
				l                                                 legacy
				key, actor, action, subject, pid, model, tgt, dec sql.NullString
				details                                           sql.NullString
				at                                                any
			)
			if err := rows.Scan(&l.oldSeq, &key, &at, &actor, &action, &subject, &pid, &model, &tgt, &dec, &details); err != nil {
				rows.Close()
				return err
			}
			t, err := asTime(at)
			if err != nil {
				rows.Close()
				return fmt.Errorf("audit record %d: %w", l.oldSeq, err)
			}
			l.rec = modelplane.AuditRecord{Key: key.String, Time: t, Actor: actor.String, Action: modelplane.AuditAction(action.String), Subject: subject.String,
				PromotionID: pid.String, Model: model.String, Target: tgt.String, Decision: dec.String}
			if details.Valid && details.String != "" {
				if err := json.Unmarshal([]byte(details.String), &l.rec.Details); err != nil {
					rows.Close()
					return fmt.Errorf("audit record %d: details: %w", l.oldSeq, err)
				}
			}
			batch = append(batch, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, l := range batch {
			// next <= oldSeq and rows go in ascending order, so the new
			// number is always free.
			l.rec.Seq, l.rec.PrevHash = next, prev
			h := audit.Hash(l.rec)
			if _, err := tx.ExecContext(ctx, d.bind("UPDATE audit_records SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?"), next, prev, h, l.oldSeq); err != nil {
				return err
			}
			prev, next, after = h, next+1, l.oldSeq
		}
		if len(batch) < auditBatch {
			return nil
		}
	}
}

// ToolCallCounts counts the gateway's tool-call records since a time: by
// outcome (modelplane.ToolOutcome), and how many an explicit policy rule
// decided.
func (s *Store) ToolCallCounts(ctx context.Context, since time.Time) (map[string]int, int, error) {
	var rows []struct {
		Decision string
		N        int
	}
	q := s.db.WithContext(ctx).Model(&auditRow{}).Where("action = ? AND time >= ?", modelplane.AuditToolCall, since.UTC())
	if err := q.Select("decision, COUNT(*) AS n").Group("decision").Scan(&rows).Error; err != nil {
		return nil, 0, err
	}
	by := map[string]int{}
	for _, r := range rows {
		by[r.Decision] = r.N
	}
	var explicit int64
	// The decision is stored as compact JSON, so the flag reads as one token.
	err := s.db.WithContext(ctx).Model(&auditRow{}).Where("action = ? AND time >= ? AND policy LIKE ?", modelplane.AuditToolCall, since.UTC(), `%"explicit":true%`).
		Count(&explicit).Error
	return by, int(explicit), err
}

// AuditActions returns the distinct actions on record.
func (s *Store) AuditActions(ctx context.Context) ([]modelplane.AuditAction, error) {
	var out []modelplane.AuditAction
	err := s.db.WithContext(ctx).Model(&auditRow{}).Distinct("action").Order("action").Pluck("action", &out).Error
	return out, err
}
