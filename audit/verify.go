package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/modelplane/modelplane"
)

// Kind classifies a break in the chain.
type Kind string

const (
	// Edited: a record's content no longer matches its hash (or the hash
	// was recomputed after a change, so its successor no longer links to it).
	Edited Kind = "edited"
	// Deleted: the record a record is chained to is missing.
	Deleted Kind = "deleted"
	// Reordered: a genuine record sits at a position its chain link
	// contradicts — moved, renumbered, duplicated or forked.
	Reordered Kind = "reordered"
)

// Break is the first place a chain stops verifying.
type Break struct {
	Seq    int64  `json:"seq"`
	Key    string `json:"key"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("record %d (key %s): %s — %s", b.Seq, b.Key, b.Kind, b.Detail)
}

// recentLinks is how many of the latest hashes a Verifier remembers, to
// tell a record chained to an earlier one (a fork, a repeat) from a deletion.
const recentLinks = 1024

// seqWindow bounds the positions tried when a record's hash fails at its own
// seq, to tell a moved record (reordered) from a changed one (edited).
const seqWindow = 1024

// Verifier checks records pushed in stored (seq) order. The zero value is
// ready and expects the chain to start at seq 1 with prev_hash Genesis.
//
// At the first anomaly the Verifier may need to read on — possibly to the
// end — before it can classify it: a record whose predecessor is missing at
// its place was deleted unless that predecessor shows up later (reordered).
type Verifier struct {
	n       int
	last    *link
	recent  map[string]link // hash → record, for the last recentLinks records
	ring    []string        // those hashes, oldest at ringPos once full
	ringPos int
	pending *suspect
	result  *Break
}

type link struct {
	seq  int64
	key  string
	hash string
}

// suspect is the first record that did not follow from the one before it.
type suspect struct {
	rec       modelplane.AuditRecord
	prev      *link // the record stored before it, nil at the start
	expSeq    int64
	selfOK    bool  // its hash matches its content at its stored seq
	hashedAt  int64 // the seq its hash verifies at, 0 if none found yet
	predLater *link // the record it is chained to, found after it
}

// Add checks the next record and reports whether the outcome is decided (a
// break was found; further records need not be added).
func (v *Verifier) Add(rec modelplane.AuditRecord) bool {
	if v.result != nil {
		return true
	}
	v.n++
	if v.pending != nil {
		v.lookahead(rec)
		return v.result != nil
	}
	expSeq, expPrev := int64(1), Genesis
	if v.last != nil {
		expSeq, expPrev = v.last.seq+1, v.last.hash
	}
	selfOK := Hash(rec) == rec.Hash
	linkOK := rec.PrevHash == expPrev
	seqOK := rec.Seq == expSeq
	switch {
	case selfOK && linkOK && seqOK:
		v.remember(rec)
		return false
	case !selfOK && linkOK && seqOK:
		v.result = &Break{Seq: rec.Seq, Key: rec.Key, Kind: Edited, Detail: "stored hash does not match its content"}
		return true
	}

	p := &suspect{rec: rec, prev: v.last, expSeq: expSeq, selfOK: selfOK}
	if selfOK {
		p.hashedAt = rec.Seq
	} else {
		p.hashedAt = seqHashedAt(rec, expSeq)
	}
	if linkOK {
		// In its place in the chain, but numbered differently than hashed
		// (or than the previous record implies).
		v.result = p.renumbered()
		return true
	}
	if rec.PrevHash == Genesis || v.recent[rec.PrevHash].hash != "" {
		v.result = v.chainedEarlier(p)
		return true
	}
	v.pending = p
	return false
}

// Finish returns the first break, or nil when every record added verified.
func (v *Verifier) Finish() *Break {
	if v.result == nil && v.pending != nil {
		v.result = v.pending.decide()
	}
	return v.result
}

// Count is the number of records added (including any read past a break to classify it).
func (v *Verifier) Count() int { return v.n }

func (v *Verifier) remember(rec modelplane.AuditRecord) {
	l := link{seq: rec.Seq, key: rec.Key, hash: rec.Hash}
	v.last = &l
	if v.recent == nil {
		v.recent = make(map[string]link, recentLinks)
		v.ring = make([]string, 0, recentLinks)
	}
	if len(v.ring) < recentLinks {
		v.ring = append(v.ring, rec.Hash)
	} else {
		delete(v.recent, v.ring[v.ringPos])
		v.ring[v.ringPos] = rec.Hash
		v.ringPos = (v.ringPos + 1) % recentLinks
	}
	v.recent[rec.Hash] = l
}

// lookahead scans the records after a suspect for the one it is chained to.
func (v *Verifier) lookahead(rec modelplane.AuditRecord) {
	p := v.pending
	if p.rec.PrevHash == "" || rec.Hash != p.rec.PrevHash {
		return
	}
	p.predLater = &link{seq: rec.Seq, key: rec.Key, hash: rec.Hash}
	if p.hashedAt == 0 && Hash(withSeq(p.rec, rec.Seq+1)) == p.rec.Hash {
		p.hashedAt = rec.Seq + 1
	}
	v.result = p.decide()
}

// chainedEarlier classifies a suspect chained to the genesis value or to a
// record already seen that is not the one just before it.
func (v *Verifier) chainedEarlier(p *suspect) *Break {
	rec := p.rec
	if p.hashedAt == 0 {
		if rec.PrevHash == Genesis {
			if Hash(withSeq(rec, 1)) == rec.Hash {
				p.hashedAt = 1
			}
		} else if Hash(withSeq(rec, v.recent[rec.PrevHash].seq+1)) == rec.Hash {
			p.hashedAt = v.recent[rec.PrevHash].seq + 1
		}
	}
	if p.hashedAt == 0 {
		return p.edited()
	}
	b := &Break{Seq: rec.Seq, Key: rec.Key, Kind: Reordered}
	if dup, ok := v.recent[rec.Hash]; ok {
		b.Detail = fmt.Sprintf("it repeats record %d (key %s), which is already in the chain", dup.seq, dup.key)
		return b
	}
	if rec.PrevHash == Genesis {
		b.Detail = fmt.Sprintf("it is chained to the genesis value as the chain's first record, but is stored after record %d (key %s)", p.prev.seq, p.prev.key)
		return b
	}
	pred := v.recent[rec.PrevHash]
	b.Detail = fmt.Sprintf("it is chained to record %d (key %s), which is already followed by another record: records were moved or the chain forks", pred.seq, pred.key)
	return b
}

// decide classifies a suspect once it is known whether the record it is
// chained to appears later.
func (p *suspect) decide() *Break {
	rec := p.rec
	if p.hashedAt == 0 {
		return p.edited()
	}
	if p.predLater != nil {
		d := fmt.Sprintf("it is chained to record %d (key %s), which is stored after it", p.predLater.seq, p.predLater.key)
		if p.hashedAt != rec.Seq {
			d = fmt.Sprintf("its hash verifies at seq %d, not at %d, and %s", p.hashedAt, rec.Seq, d)
		}
		return &Break{Seq: rec.Seq, Key: rec.Key, Kind: Reordered, Detail: d}
	}
	// The record it is chained to is nowhere. With no gap in the numbering
	// and its own hash intact, the record before it was replaced or edited
	// and re-hashed: that one is the first record at fault.
	if p.selfOK && rec.Seq == p.expSeq && p.prev != nil {
		return &Break{Seq: p.prev.seq, Key: p.prev.key, Kind: Edited,
			Detail: fmt.Sprintf("its hash %s is not the one record %d (key %s) is chained to: it was changed and re-hashed, or replaced", short(p.prev.hash), rec.Seq, rec.Key)}
	}
	var d string
	if p.prev == nil {
		d = fmt.Sprintf("it is the first record but is chained to %s, not the genesis value: the records before it are missing", short(rec.PrevHash))
	} else {
		d = fmt.Sprintf("the record it is chained to (hash %s) is missing", short(rec.PrevHash))
	}
	if gap := rec.Seq - p.expSeq; gap > 0 {
		d += fmt.Sprintf("; seq jumps from %d to %d (%d record(s) gone)", p.expSeq-1, rec.Seq, gap)
	}
	if p.hashedAt != rec.Seq {
		d += fmt.Sprintf("; its hash verifies at seq %d, so the records after the gap were renumbered", p.hashedAt)
	}
	return &Break{Seq: rec.Seq, Key: rec.Key, Kind: Deleted, Detail: d}
}

// renumbered classifies a suspect linked to the record before it but
// numbered inconsistently.
func (p *suspect) renumbered() *Break {
	rec := p.rec
	if p.hashedAt == 0 {
		return p.edited()
	}
	if p.hashedAt != rec.Seq {
		return &Break{Seq: rec.Seq, Key: rec.Key, Kind: Reordered,
			Detail: fmt.Sprintf("it is stored at seq %d but its hash verifies at seq %d: records were renumbered", rec.Seq, p.hashedAt)}
	}
	// Hashed with this seq and linked to its predecessor, yet numbers are
	// skipped: whatever held them was removed before the chain was sealed.
	return &Break{Seq: rec.Seq, Key: rec.Key, Kind: Deleted,
		Detail: fmt.Sprintf("seq jumps from %d to %d although it is chained to record %d", p.expSeq-1, rec.Seq, p.expSeq-1)}
}

func (p *suspect) edited() *Break {
	d := "stored hash does not match its content"
	if p.prev != nil && p.rec.PrevHash != p.prev.hash {
		d += fmt.Sprintf(", and it is not chained to record %d before it", p.prev.seq)
	}
	return &Break{Seq: p.rec.Seq, Key: p.rec.Key, Kind: Edited, Detail: d}
}

// seqHashedAt finds the seq rec's hash verifies at near its stored one, 0 if none.
func seqHashedAt(rec modelplane.AuditRecord, expSeq int64) int64 {
	if expSeq != rec.Seq && Hash(withSeq(rec, expSeq)) == rec.Hash {
		return expSeq
	}
	for d := int64(1); d <= seqWindow; d++ {
		for _, s := range [2]int64{rec.Seq + d, rec.Seq - d} {
			if s > 0 && s != expSeq && Hash(withSeq(rec, s)) == rec.Hash {
				return s
			}
		}
	}
	return 0
}

func withSeq(rec modelplane.AuditRecord, seq int64) modelplane.AuditRecord {
	rec.Seq = seq
	return rec
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}

// Verify checks a whole chain held in memory, in stored order.
func Verify(recs []modelplane.AuditRecord) *Break {
	var v Verifier
	for _, r := range recs {
		if v.Add(r) {
			break
		}
	}
	return v.Finish()
}

// VerifySeq checks a chain read from recs, stopping at the first read error.
// n counts the records read.
func VerifySeq(recs iter.Seq2[modelplane.AuditRecord, error]) (b *Break, n int, err error) {
	var v Verifier
	for r, err := range recs {
		if err != nil {
			return nil, v.Count(), err
		}
		if v.Add(r) {
			break
		}
	}
	return v.Finish(), v.Count(), nil
}

// VerifyJSONL checks an export of the full chain: one JSON AuditRecord per
// line in seq order, blank lines ignored. A line that is not a record is an
// error naming the line.
func VerifyJSONL(r io.Reader) (*Break, int, error) {
	return VerifySeq(ReadJSONL(r))
}

// ReadJSONL yields the records of a JSON Lines export.
func ReadJSONL(r io.Reader) iter.Seq2[modelplane.AuditRecord, error] {
	return func(yield func(modelplane.AuditRecord, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		for line := 1; ; line++ {
			b, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(b)) > 0 {
				var rec modelplane.AuditRecord
				if derr := json.Unmarshal(b, &rec); derr != nil {
					yield(rec, fmt.Errorf("line %d: %w", line, derr))
					return
				}
				if !yield(rec, nil) {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(modelplane.AuditRecord{}, fmt.Errorf("line %d: %w", line, err))
				return
			}
		}
	}
}
