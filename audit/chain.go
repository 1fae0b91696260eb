// Package audit seals modelplane's audit trail into a hash chain and checks
// it, whether the records come from the store or from an exported JSON Lines
// file: each record's hash covers its content, its position (seq) and the
// hash of the record before it, so an edit, a deletion or a reordering shows.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/modelplane/modelplane"
)

// Genesis is the prev_hash of the first record in a chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// scheme names the encoding below; it is hashed too so that a future
// encoding can never produce the same digest for different content.
const scheme = "modelplane.audit/v1"

// TimePrecision is the resolution of a record's time in its hash:
// PostgreSQL keeps microseconds, so a finer clock would not survive a round trip.
const TimePrecision = time.Microsecond

// Hash returns the hex SHA-256 that seals rec: it covers the canonical
// encoding of the JSON array
//
//	["modelplane.audit/v1", seq, key, time, actor, action, subject,
//	 promotion_id, model, version, target, decision, evidence_hash,
//	 details, policy, prev_hash]
//
// where time is UTC RFC 3339 with microseconds at most, details and policy
// are canonical JSON (RFC 8785 style: sorted keys, minimal escaping, ES6
// numbers), empty details are {} and a missing policy is null. Members of
// policy that hold their zero value are left out, so that adding a field to
// PolicyDecision does not change the hashes of records written before it.
// rec.Hash itself is not covered.
func Hash(rec modelplane.AuditRecord) string {
	sum := sha256.Sum256(Canonical(rec))
	return hex.EncodeToString(sum[:])
}

// Canonical returns the bytes Hash digests, for verifiers written elsewhere.
func Canonical(rec modelplane.AuditRecord) []byte {
	var e encoder
	e.buf.Grow(512)
	e.buf.WriteByte('[')
	e.str(scheme)
	e.buf.WriteByte(',')
	e.buf.WriteString(strconv.FormatInt(rec.Seq, 10))
	for _, s := range []string{
		rec.Key,
		rec.Time.UTC().Truncate(TimePrecision).Format(time.RFC3339Nano),
		rec.Actor, string(rec.Action), rec.Subject, rec.PromotionID, rec.Model,
		rec.Version, rec.Target, rec.Decision, rec.EvidenceHash,
	} {
		e.buf.WriteByte(',')
		e.str(s)
	}
	e.buf.WriteByte(',')
	if len(rec.Details) == 0 {
		e.buf.WriteString("{}")
	} else {
		e.value(map[string]any(rec.Details), false)
	}
	e.buf.WriteByte(',')
	if rec.Policy == nil {
		e.buf.WriteString("null")
	} else {
		e.value(jsonTree(rec.Policy), true)
	}
	e.buf.WriteByte(',')
	e.str(rec.PrevHash)
	e.buf.WriteByte(']')
	return e.buf.Bytes()
}

// encoder writes canonical JSON.
type encoder struct{ buf bytes.Buffer }

// jsonTree turns v into what decoding its JSON yields (maps, slices,
// float64 ...): the hash must be the same before a record is stored and
// after it is read back, whatever Go types the writer used.
func jsonTree(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		// Such a value cannot be stored either; hash the failure so the
		// result is still deterministic.
		return map[string]any{"!unencodable": err.Error()}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]any{"!unencodable": err.Error()}
	}
	return out
}

// value writes v; the common JSON-shaped types are walked directly (no
// marshal/unmarshal round trip), anything else goes through jsonTree.
// dropZero leaves out object members whose value is a JSON zero.
func (e *encoder) value(v any, dropZero bool) {
	switch x := v.(type) {
	case nil:
		e.buf.WriteString("null")
	case bool:
		e.buf.WriteString(strconv.FormatBool(x))
	case string:
		e.str(x)
	case float64:
		e.num(x)
	case int:
		e.num(float64(x))
	case int64:
		e.num(float64(x))
	case int32:
		e.num(float64(x))
	case uint:
		e.num(float64(x))
	case uint64:
		e.num(float64(x))
	case uint32:
		e.num(float64(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			e.str(string(x))
			return
		}
		e.num(f)
	// encoding/json stores a nil map or slice as null, so it hashes as null.
	case map[string]any:
		encodeMap(e, x, dropZero)
	case map[string]string:
		encodeMap(e, x, dropZero)
	case map[string]float64:
		encodeMap(e, x, dropZero)
	case []any:
		encodeSlice(e, x, dropZero)
	case []string:
		encodeSlice(e, x, dropZero)
	default:
		e.value(jsonTree(v), dropZero)
	}
}

func encodeMap[V any](e *encoder, m map[string]V, dropZero bool) {
	if m == nil {
		e.buf.WriteString("null")
		return
	}
	e.object(len(m), func(yield func(string, any)) {
		for k, v := range m {
			yield(k, v)
		}
	}, dropZero)
}

func encodeSlice[V any](e *encoder, s []V, dropZero bool) {
	if s == nil {
		e.buf.WriteString("null")
		return
	}
	e.array(len(s), func(i int) any { return s[i] }, dropZero)
}

func (e *encoder) array(n int, at func(int) any, dropZero bool) {
	e.buf.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		e.value(at(i), dropZero)
	}
	e.buf.WriteByte(']')
}

type member struct {
	key   string // as written: invalid UTF-8 already replaced
	units []uint16
	val   any
}

func (e *encoder) object(n int, each func(func(string, any)), dropZero bool) {
	ms := make([]member, 0, n)
	each(func(k string, v any) {
		if dropZero && isZero(v) {
			return
		}
		k = validUTF8(k)
		ms = append(ms, member{key: k, units: utf16.Encode([]rune(k)), val: v})
	})
	// RFC 8785 orders members by their names' UTF-16 code units.
	slices.SortFunc(ms, func(a, b member) int { return slices.Compare(a.units, b.units) })
	e.buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		e.str(m.key)
		e.buf.WriteByte(':')
		e.value(m.val, dropZero)
	}
	e.buf.WriteByte('}')
}

// isZero reports a JSON zero: what omitempty would leave out.
func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case float64:
		return x == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// num writes f as ECMAScript's Number.prototype.toString does (as
// encoding/json does for float64), with -0 as 0.
func (e *encoder) num(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.buf.WriteString("null") // not representable in JSON, so never stored
		return
	}
	if f == 0 {
		e.buf.WriteByte('0')
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b := strconv.AppendFloat(e.buf.AvailableBuffer(), f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as ECMAScript writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	e.buf.Write(b)
}

// str writes s as a JSON string escaping only what JSON requires. Each byte
// of invalid UTF-8 becomes U+FFFD, as encoding/json (and so the export) does.
func (e *encoder) str(s string) {
	const hexDigits = "0123456789abcdef"
	e.buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				e.buf.WriteByte('\\')
				e.buf.WriteByte(c)
			case c == '\b':
				e.buf.WriteString(`\b`)
			case c == '\f':
				e.buf.WriteString(`\f`)
			case c == '\n':
				e.buf.WriteString(`\n`)
			case c == '\r':
				e.buf.WriteString(`\r`)
			case c == '\t':
				e.buf.WriteString(`\t`)
			case c < 0x20:
				e.buf.WriteString(`\u00`)
				e.buf.WriteByte(hexDigits[c>>4])
				e.buf.WriteByte(hexDigits[c&0xf])
			default:
				e.buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.buf.WriteString("\uFFFD")
		} else {
			e.buf.WriteString(s[i : i+size])
		}
		i += size
	}
	e.buf.WriteByte('"')
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}
