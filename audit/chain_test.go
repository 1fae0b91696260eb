package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// chain seals n records the way the store does.
func chain(n int) []modelplane.AuditRecord {
	recs := make([]modelplane.AuditRecord, n)
	prev := audit.Genesis
	for i := range recs {
		r := modelplane.AuditRecord{
			Seq: int64(i + 1), Key: fmt.Sprintf("k/%d", i+1), Time: t0.Add(time.Duration(i) * time.Second),
			Actor: "alice", Action: "vote", Subject: "promotion p1", PromotionID: "p1", Model: "churn", Version: "3",
			Target: "prod", Decision: "approve", EvidenceHash: "e" + fmt.Sprint(i),
			Details: map[string]any{"n": i, "nested": map[string]any{"b": []any{1, "x"}, "a": true}},
			Policy:  &modelplane.PolicyDecision{ID: "d", Allow: true, PolicyVersion: "v1", Reasons: []string{"ok"}},
		}
		r.PrevHash = prev
		r.Hash = audit.Hash(r)
		prev = r.Hash
		recs[i] = r
	}
	return recs
}

func TestCanonicalGolden(t *testing.T) {
	r := modelplane.AuditRecord{Seq: 7, Key: "k", Time: time.Date(2026, 1, 2, 3, 4, 5, 6007008, time.FixedZone("x", 3600)),
		Actor: "a\"<é>\u2028", Action: "act", Details: map[string]any{"z": 1, "a": 1e21, "m": -0.0, "é": "x", "ä": 1e-7},
		Policy: &modelplane.PolicyDecision{ID: "d", Allow: true}, PrevHash: audit.Genesis}
	want := `["modelplane.audit/v1",7,"k","2026-01-02T02:04:05.006007Z","a\"<é>` + "\u2028" + `","act","","","","","","","",{"a":1e+21,"m":0,"z":1,"ä":1e-7,"é":"x"},{"allow":true,"id":"d"},"` + audit.Genesis + `"]`
	if got := string(audit.Canonical(r)); got != want {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
	// Pinned so an accidental change of the encoding cannot pass unnoticed:
	// every stored chain would stop verifying.
	if got := audit.Hash(r); got != "b555d84c30faccced389ef4a88d897e0061cdfd341bb57a09498b362dfa204a7" {
		t.Fatalf("hash = %s", got)
	}
}

func TestHashSurvivesStorageRoundTrip(t *testing.T) {
	type inner struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	r := modelplane.AuditRecord{Seq: 1, Key: "k", Time: time.Date(2026, 1, 2, 3, 4, 5, 999, time.Local),
		Details: map[string]any{"big": int64(1)<<60 + 1, "f32": float32(0.1), "s": inner{"x", 2}, "tags": map[string]string{"b": "1", "a": "2"}, "bad": "\xff\xfe"},
		Policy:  &modelplane.PolicyDecision{ID: "d", Reasons: []string{}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back modelplane.AuditRecord
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Time = back.Time.Truncate(time.Microsecond) // what PostgreSQL keeps
	if audit.Hash(r) != audit.Hash(back) {
		t.Fatalf("hash changed across a JSON round trip:\n%s\n%s", audit.Canonical(r), audit.Canonical(back))
	}
	// nil and empty details, and zero policy members, hash alike.
	a, c := r, r
	a.Details, c.Details = nil, map[string]any{}
	if audit.Hash(a) != audit.Hash(c) {
		t.Fatal("nil and empty details hash differently")
	}
	a.Policy, c.Policy = &modelplane.PolicyDecision{ID: "d"}, &modelplane.PolicyDecision{ID: "d", Reasons: nil, RequiredApprovals: 0}
	if audit.Hash(a) != audit.Hash(c) {
		t.Fatal("zero policy members changed the hash")
	}
	c.Policy = nil
	if audit.Hash(a) == audit.Hash(c) {
		t.Fatal("a missing policy hashes like a present one")
	}
}

func TestHashCoversEveryField(t *testing.T) {
	base := chain(1)[0]
	h := audit.Hash(base)
	muts := map[string]func(*modelplane.AuditRecord){
		"seq": func(r *modelplane.AuditRecord) { r.Seq++ }, "key": func(r *modelplane.AuditRecord) { r.Key += "x" },
		"time":    func(r *modelplane.AuditRecord) { r.Time = r.Time.Add(time.Microsecond) },
		"actor":   func(r *modelplane.AuditRecord) { r.Actor += "x" },
		"action":  func(r *modelplane.AuditRecord) { r.Action += "x" },
		"subject": func(r *modelplane.AuditRecord) { r.Subject += "x" },
		"promo":   func(r *modelplane.AuditRecord) { r.PromotionID += "x" },
		"model":   func(r *modelplane.AuditRecord) { r.Model += "x" },
		"version": func(r *modelplane.AuditRecord) { r.Version += "x" },
		"target":  func(r *modelplane.AuditRecord) { r.Target += "x" },
		"dec":     func(r *modelplane.AuditRecord) { r.Decision += "x" },
		"ev":      func(r *modelplane.AuditRecord) { r.EvidenceHash += "x" },
		"details": func(r *modelplane.AuditRecord) { r.Details = map[string]any{"n": 1} },
		"policy":  func(r *modelplane.AuditRecord) { r.Policy = &modelplane.PolicyDecision{ID: "d", Allow: false} },
		"prev":    func(r *modelplane.AuditRecord) { r.PrevHash = "x" },
		// Shifting text between fields must not collide.
		"shift": func(r *modelplane.AuditRecord) { r.Actor, r.Action = r.Actor+string(r.Action[:1]), r.Action[1:] },
	}
	for name, m := range muts {
		r := base
		r.Details = map[string]any{"n": 0}
		h0 := audit.Hash(r)
		m(&r)
		if audit.Hash(r) == h0 {
			t.Errorf("%s is not covered by the hash", name)
		}
	}
	base.Hash = "anything"
	if audit.Hash(base) != h {
		t.Error("the stored hash is covered by itself")
	}
}

func TestVerify(t *testing.T) {
	swap := func(recs []modelplane.AuditRecord, i, j int) {
		recs[i], recs[j] = recs[j], recs[i]
		recs[i].Seq, recs[j].Seq = recs[j].Seq, recs[i].Seq
	}
	cases := []struct {
		name   string
		tamper func([]modelplane.AuditRecord) []modelplane.AuditRecord
		kind   audit.Kind
		seq    int64
		key    string
		detail string
	}{
		{"intact", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { return r }, "", 0, "", ""},
		{"empty", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { return nil }, "", 0, "", ""},
		{"edited", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { r[4].Actor = "mallory"; return r },
			audit.Edited, 5, "k/5", "stored hash does not match its content"},
		{"edited details", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { r[4].Details["n"] = 99; return r },
			audit.Edited, 5, "k/5", "does not match"},
		{"edited and re-hashed", func(r []modelplane.AuditRecord) []modelplane.AuditRecord {
			r[4].Actor = "mallory"
			r[4].Hash = audit.Hash(r[4])
			return r
		}, audit.Edited, 5, "k/5", "re-hashed"},
		{"edited last and re-hashed", func(r []modelplane.AuditRecord) []modelplane.AuditRecord {
			// Undetectable without an anchor: a chain's tail can always be rewritten.
			r[9].Actor = "mallory"
			r[9].Hash = audit.Hash(r[9])
			return r
		}, "", 0, "", ""},
		{"deleted middle", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { return append(r[:4], r[5:]...) },
			audit.Deleted, 6, "k/6", "seq jumps from 4 to 6"},
		{"deleted first", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { return r[1:] },
			audit.Deleted, 2, "k/2", "first record"},
		{"deleted and renumbered", func(r []modelplane.AuditRecord) []modelplane.AuditRecord {
			r = append(r[:4], r[5:]...)
			for i := 4; i < len(r); i++ {
				r[i].Seq--
			}
			return r
		}, audit.Deleted, 5, "k/6", "renumbered"},
		{"swapped neighbours", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { swap(r, 3, 4); return r },
			audit.Reordered, 4, "k/5", "verifies at seq 5"},
		{"swapped far apart", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { swap(r, 2, 7); return r },
			audit.Reordered, 3, "k/8", "chained to record 7"},
		{"lines swapped, seqs kept", func(r []modelplane.AuditRecord) []modelplane.AuditRecord {
			r[3], r[4] = r[4], r[3]
			return r
		}, audit.Reordered, 5, "k/5", "stored after it"},
		{"repeated", func(r []modelplane.AuditRecord) []modelplane.AuditRecord {
			return append(r[:5:5], append([]modelplane.AuditRecord{r[3]}, r[5:]...)...)
		}, audit.Reordered, 4, "k/4", "repeats record 4"},
		{"first moved to the end", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { return append(r[1:], r[0]) },
			audit.Reordered, 2, "k/2", "stored after it"},
		{"renumbered in place", func(r []modelplane.AuditRecord) []modelplane.AuditRecord { r[4].Seq = 50; return r },
			audit.Reordered, 50, "k/5", "verifies at seq 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := audit.Verify(c.tamper(chain(10)))
			if c.kind == "" {
				if b != nil {
					t.Fatalf("unexpected break: %v", b)
				}
				return
			}
			if b == nil {
				t.Fatal("tampering not detected")
			}
			if b.Kind != c.kind || b.Seq != c.seq || b.Key != c.key || !strings.Contains(b.Detail, c.detail) {
				t.Fatalf("break = %v\nwant %s at %d (key %s) mentioning %q", b, c.kind, c.seq, c.key, c.detail)
			}
			if !strings.HasPrefix(b.Error(), fmt.Sprintf("record %d (key %s): %s — ", c.seq, c.key, c.kind)) {
				t.Fatalf("message = %q", b.Error())
			}
		})
	}
}

func TestVerifyJSONL(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range chain(20) {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	export := buf.String()
	b, n, err := audit.VerifyJSONL(strings.NewReader(export + "\n"))
	if b != nil || err != nil || n != 20 {
		t.Fatalf("intact export: %v, %d, %v", b, n, err)
	}
	lines := strings.Split(strings.TrimSuffix(export, "\n"), "\n")
	lines[6] = strings.Replace(lines[6], `"actor":"alice"`, `"actor":"bob"`, 1)
	b, _, err = audit.VerifyJSONL(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil || b == nil || b.Kind != audit.Edited || b.Seq != 7 {
		t.Fatalf("tampered line: %v, %v", b, err)
	}
	lines[6] = "{not json"
	if _, _, err := audit.VerifyJSONL(strings.NewReader(strings.Join(lines, "\n"))); err == nil || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("malformed line: %v", err)
	}
}

func BenchmarkHash(b *testing.B) {
	r := chain(1)[0]
	b.ReportAllocs()
	for b.Loop() {
		audit.Hash(r)
	}
}
