package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Detector names what a rule looks for.
type Detector string

const (
	DetectSecret     Detector = "secret"      // cloud, GitHub, Slack, JWT, bearer and PEM keys; credential-named key=value
	DetectEmail      Detector = "email"       // addresses
	DetectPhone      Detector = "phone"       // E.164 and (555) 123-4567 / 555-123-4567 forms
	DetectCard       Detector = "card"        // 13–19 digits passing Luhn
	DetectNationalID Detector = "national_id" // US SSN, UK NINO
	DetectInjection  Detector = "injection"   // prompt-injection markers (results only)
)

// Where a rule looks.
type Where string

const (
	InArguments Where = "arguments"
	InResult    Where = "result"
)

// Action is what a rule does with a finding.
type Action string

const (
	ActBlock  Action = "block"
	ActRedact Action = "redact"
	ActFlag   Action = "flag"
)

// Rule applies one detector to one side of a tool call.
type Rule struct {
	Detector Detector `json:"detector" yaml:"detector"`
	Where    Where    `json:"where" yaml:"where"`
	Action   Action   `json:"action" yaml:"action"`
}

// Finding is one detector hit. It never holds the matched text.
type Finding struct {
	Detector Detector `json:"detector"`
	Where    Where    `json:"where"`
	Action   Action   `json:"action"`
	Path     string   `json:"path"`  // e.g. "arguments.items[2]", "result.content[0]"
	Count    int      `json:"count"` // matches at that path
}

// DefaultRules: secrets block in arguments and redact in results; card and
// national_id redact both ways; email and phone flag in arguments and redact
// in results; injection flag in results.
func DefaultRules() []Rule {
	return []Rule{
		{DetectSecret, InArguments, ActBlock}, {DetectSecret, InResult, ActRedact},
		{DetectCard, InArguments, ActRedact}, {DetectCard, InResult, ActRedact},
		{DetectNationalID, InArguments, ActRedact}, {DetectNationalID, InResult, ActRedact},
		{DetectEmail, InArguments, ActFlag}, {DetectEmail, InResult, ActRedact},
		{DetectPhone, InArguments, ActFlag}, {DetectPhone, InResult, ActRedact},
		{DetectInjection, InResult, ActFlag},
	}
}

// Detector indices, in the order rules run: secrets first so a key's digits
// are not reported again as a card or phone; email before phone so an
// address with a numeric local part stays one email.
const (
	dSecret = iota
	dCard
	dNationalID
	dEmail
	dPhone
	dInjection
	nDetectors
)

var detectorNames = [nDetectors]Detector{DetectSecret, DetectCard, DetectNationalID, DetectEmail, DetectPhone, DetectInjection}

var redactLabels = func() (l [nDetectors]string) {
	for i, d := range detectorNames {
		l[i] = "[REDACTED:" + string(d) + "]"
	}
	return l
}()

type scanRule struct {
	d      int
	action Action
}

// Scanner applies content rules to tool calls. It is immutable after
// NewScanner and safe for concurrent use; a nil Scanner checks nothing.
type Scanner struct{ args, res []scanRule }

// NewScanner validates rules; errors name the offending field.
func NewScanner(rules []Rule) (*Scanner, error) {
	s := &Scanner{}
	seen := map[Rule]int{}
	for i, r := range rules {
		d := slices.Index(detectorNames[:], r.Detector)
		switch {
		case d < 0:
			return nil, fmt.Errorf("content[%d].detector: must be secret, email, phone, card, national_id or injection, got %q", i, r.Detector)
		case r.Where != InArguments && r.Where != InResult:
			return nil, fmt.Errorf("content[%d].where: must be arguments or result, got %q", i, r.Where)
		case r.Action != ActBlock && r.Action != ActRedact && r.Action != ActFlag:
			return nil, fmt.Errorf("content[%d].action: must be block, redact or flag, got %q", i, r.Action)
		case d == dInjection && r.Where == InArguments:
			return nil, fmt.Errorf("content[%d].where: injection is only checked in result, got %q", i, r.Where)
		}
		k := Rule{Detector: r.Detector, Where: r.Where}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("content[%d]: %s in %s is already set by content[%d]", i, r.Detector, r.Where, j)
		}
		seen[k] = i
		if r.Where == InArguments {
			s.args = append(s.args, scanRule{d, r.Action})
		} else {
			s.res = append(s.res, scanRule{d, r.Action})
		}
	}
	byDetector := func(a, b scanRule) int { return a.d - b.d }
	slices.SortFunc(s.args, byDetector)
	slices.SortFunc(s.res, byDetector)
	return s, nil
}

// Arguments scans raw JSON arguments (an object, or empty or null). out is
// raw itself unless a redact rule matched; then it is a copy with each match
// replaced by "[REDACTED:<detector>]" and the rest byte for byte as sent.
// Findings are sorted by Path then Detector; blocked is true when a block
// rule matched. Invalid JSON is an error.
func (s *Scanner) Arguments(raw json.RawMessage) (out json.RawMessage, findings []Finding, blocked bool, err error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return raw, nil, false, nil
	}
	if !json.Valid(raw) {
		return nil, nil, false, fmt.Errorf("not valid JSON")
	}
	if s == nil || len(s.args) == 0 {
		return raw, nil, false, nil
	}
	c := newScan(s.args, InArguments)
	if out = c.walk(raw); out == nil {
		out = raw
	}
	return out, c.sorted(), c.blocked, nil
}

// Result scans every TextContent (and embedded text resource) and every
// string in StructuredContent, redacting in place. A StructuredContent that
// is neither map[string]any, []any, string nor json.RawMessage is scanned as
// its JSON and, if redacted, replaced by the redacted json.RawMessage.
func (s *Scanner) Result(res *sdk.CallToolResult) (findings []Finding, blocked bool) {
	if s == nil || res == nil || len(s.res) == 0 {
		return nil, false
	}
	c := newScan(s.res, InResult)
	root := len(c.path)
	for i, ct := range res.Content {
		c.path = append(strconv.AppendInt(append(c.path[:root], ".content["...), int64(i), 10), ']')
		switch v := ct.(type) {
		case *sdk.TextContent:
			v.Text = c.value(v.Text, false)
		case *sdk.EmbeddedResource:
			if v.Resource != nil && v.Resource.Text != "" {
				c.path = append(c.path, ".resource.text"...)
				v.Resource.Text = c.value(v.Resource.Text, false)
			}
		}
	}
	if res.StructuredContent != nil {
		c.path = append(c.path[:root], ".structured"...)
		res.StructuredContent = c.any(res.StructuredContent, false)
	}
	return c.sorted(), c.blocked
}

// contentScan is the state of one Arguments or Result call.
type contentScan struct {
	rules    []scanRule
	actions  [nDetectors]Action
	where    Where
	path     []byte // built in place; copied to a string only for a finding
	spans    [][2]int
	findings []Finding
	blocked  bool
}

func newScan(rules []scanRule, where Where) contentScan {
	c := contentScan{rules: rules, where: where, path: make([]byte, 0, 64)}
	for _, r := range rules {
		c.actions[r.d] = r.action
	}
	c.path = append(c.path, where...)
	return c
}

// value checks one string at the current path, records what it found and
// returns the string with redact-rule matches replaced.
func (c *contentScan) value(t string, secretKey bool) string {
	out, h, hit := c.check(t, secretKey, false)
	if hit {
		c.record(h)
	}
	return out
}

// check runs the rules over t, counting matches per detector. With force
// every match is replaced whatever the action: used to mask object keys
// before they go into a Path.
func (c *contentScan) check(t string, secretKey, force bool) (string, [nDetectors]int, bool) {
	var h [nDetectors]int
	if t == "" {
		return t, h, false
	}
	f := featuresOf(t)
	hit, sp := false, c.spans[:0]
	for _, r := range c.rules {
		var n int
		if sp, n = detect(r.d, t, &f, secretKey, sp[:0]); n == 0 {
			continue
		}
		h[r.d], hit = n, true
		if force || r.action == ActRedact {
			t = replaceSpans(t, sp, redactLabels[r.d])
			f = featuresOf(t)
		}
	}
	c.spans = sp // keep the buffer for the next string
	return t, h, hit
}

func (c *contentScan) record(h [nDetectors]int) {
	for d, n := range h {
		if n > 0 {
			a := c.actions[d]
			c.findings = append(c.findings, Finding{Detector: detectorNames[d], Where: c.where, Action: a, Path: string(c.path), Count: n})
			c.blocked = c.blocked || a == ActBlock
		}
	}
}

// sorted orders findings by Path then Detector, merging duplicates (keys
// masked to the same text share a path).
func (c *contentScan) sorted() []Finding {
	fs := c.findings
	slices.SortFunc(fs, func(a, b Finding) int {
		if a.Path != b.Path {
			return strings.Compare(a.Path, b.Path)
		}
		return strings.Compare(string(a.Detector), string(b.Detector))
	})
	out := fs[:0]
	for _, f := range fs {
		if l := len(out) - 1; l >= 0 && out[l].Path == f.Path && out[l].Detector == f.Detector {
			out[l].Count += f.Count
		} else {
			out = append(out, f)
		}
	}
	return out
}

// key handles an object key. Keys are scanned too (maps keyed by email are
// common); a hit is masked in the Path whatever its action, so findings never
// carry raw text. It returns the key to emit (rewritten only by redact
// rules; *renamed numbers rewrites so two keys cannot collapse into one) and
// whether the key names a credential.
func (c *contentScan) key(k string, renamed *int) (emit string, secretKey bool) {
	emit, seg := k, k
	masked, h, hit := c.check(k, false, true)
	if hit {
		seg = masked
		if out, _, _ := c.check(k, false, false); out != k {
			if *renamed++; *renamed > 1 {
				out += "#" + strconv.Itoa(*renamed)
			}
			emit = out
		}
	}
	c.path = appendKey(c.path, seg)
	if hit {
		c.record(h)
	}
	return emit, isSecretKey(k)
}

// any walks decoded structured content, replacing strings in place.
func (c *contentScan) any(v any, secretKey bool) any {
	n := len(c.path)
	defer func() { c.path = c.path[:n] }()
	switch x := v.(type) {
	case nil, bool:
		return v
	case string:
		return c.value(x, secretKey)
	case float64, json.Number:
		// A card number may arrive as a JSON number.
		s := fmt.Sprint(x)
		if f, ok := x.(float64); ok && f >= 1e12 && f < 1e19 && f == float64(int64(f)) {
			s = strconv.FormatInt(int64(f), 10)
		}
		if len(s) >= 13 {
			if out := c.value(s, false); out != s {
				return out
			}
		}
		return v
	case []any:
		for i := range x {
			c.path = append(strconv.AppendInt(append(c.path[:n], '['), int64(i), 10), ']')
			x[i] = c.any(x[i], false)
		}
		return v
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // stable rename suffixes
		renamed := 0
		for _, k := range keys {
			c.path = c.path[:n]
			emit, sk := c.key(k, &renamed)
			val := c.any(x[k], sk)
			if emit != k {
				delete(x, k)
			}
			x[emit] = val
		}
		return v
	case json.RawMessage:
		if out := c.raw(x); out != nil {
			return out
		}
		return v
	}
	// Anything else (a typed struct, map[string]string, ...): scan its JSON
	// form and substitute the redacted JSON only if something changed.
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	if out := c.raw(b); out != nil {
		return out
	}
	return v
}

// raw scans JSON text at the current path. It returns the redacted copy, or
// nil when nothing changed or the text is not JSON.
func (c *contentScan) raw(b []byte) json.RawMessage {
	if !json.Valid(b) {
		return nil
	}
	return c.walk(b)
}

// walk is raw for text already known to be valid JSON.
func (c *contentScan) walk(b []byte) json.RawMessage {
	w := jsonWalker{c: c, data: b}
	w.value(false)
	if w.out == nil {
		return nil
	}
	return append(w.out, b[w.copied:]...)
}

// jsonWalker scans JSON text that json.Valid accepted, so it needs no error
// handling. Edits are spliced into out lazily: clean input is never copied.
type jsonWalker struct {
	c      *contentScan
	data   []byte
	i      int
	out    []byte
	copied int // data[:copied] is already in out
}

func (w *jsonWalker) ws() {
	for w.i < len(w.data) && isSpace(w.data[w.i]) {
		w.i++
	}
}

func (w *jsonWalker) value(secretKey bool) {
	c, n := w.c, len(w.c.path)
	w.ws()
	switch w.data[w.i] {
	case '{', '[':
		obj := w.data[w.i] == '{'
		w.i++
		renamed := 0
		for idx := 0; ; idx++ {
			w.ws()
			if w.data[w.i] == '}' || w.data[w.i] == ']' {
				w.i++
				c.path = c.path[:n]
				return
			}
			if w.data[w.i] == ',' {
				w.i++
				w.ws()
			}
			sk := false
			if obj {
				ks, ke, k := w.str()
				var emit string
				if emit, sk = c.key(k, &renamed); emit != k {
					w.edit(ks, ke, emit)
				}
				w.ws()
				w.i++ // ':'
			} else {
				c.path = append(strconv.AppendInt(append(c.path[:n], '['), int64(idx), 10), ']')
			}
			w.value(sk)
			c.path = c.path[:n]
		}
	case '"':
		s, e, t := w.str()
		if out := c.value(t, secretKey); out != t {
			w.edit(s, e, out)
		}
	default: // number, true, false, null
		s := w.i
		for w.i < len(w.data) && !isSpace(w.data[w.i]) && w.data[w.i] != ',' && w.data[w.i] != '}' && w.data[w.i] != ']' {
			w.i++
		}
		// A card number sent as a JSON number is still a card number.
		if w.i-s >= 13 && w.data[s] != 't' && w.data[s] != 'f' && w.data[s] != 'n' {
			t := string(w.data[s:w.i])
			if out := c.value(t, false); out != t {
				w.edit(s, w.i, out)
			}
		}
	}
}

// str reads the string at w.i: its extent, quotes included, and its value.
func (w *jsonWalker) str() (start, end int, val string) {
	start, esc := w.i, false
	j := start + 1
	for ; w.data[j] != '"'; j++ {
		if w.data[j] == '\\' {
			esc = true
			j++
		}
	}
	w.i = j + 1
	if !esc {
		return start, w.i, string(w.data[start+1 : j])
	}
	var unq string
	_ = json.Unmarshal(w.data[start:w.i], &unq)
	return start, w.i, unq
}

func (w *jsonWalker) edit(start, end int, val string) {
	if w.out == nil {
		w.out = make([]byte, 0, len(w.data)+32)
	}
	q, _ := json.Marshal(val)
	w.out = append(append(w.out, w.data[w.copied:start]...), q...)
	w.copied = end
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// appendKey adds ".key", or ["key"] when the key is not identifier-like.
func appendKey(p []byte, k string) []byte {
	simple := k != ""
	for i := 0; i < len(k) && simple; i++ {
		b := k[i]
		simple = b == '_' || b|0x20 >= 'a' && b|0x20 <= 'z' || i > 0 && (b == '-' || b >= '0' && b <= '9')
	}
	if simple {
		return append(append(p, '.'), k...)
	}
	return append(strconv.AppendQuote(append(p, '['), k), ']')
}
