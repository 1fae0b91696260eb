package gateway

import (
	"regexp"
	"slices"
	"strings"

	pmcp "github.com/modelplane/modelplane/providers/mcp"
)

// Detectors. Each looks only where a match could be: a regex runs on short
// windows (a run of digits, the word around an '@') or only once its literal
// trigger is present, so prose costs a byte scan, not a regex pass per
// position.

var (
	reSSN   = regexp.MustCompile(`\d{3}([- ])\d{2}([- ])\d{4}`)
	reNINO  = regexp.MustCompile(`[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]`)
	reEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b`)
	rePhone = regexp.MustCompile(`\+[1-9](?:[ .-]?\d){7,14}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}`)
)

// Byte classes: the characters a match can contain (the window a regex
// runs on) and the ones a window needs enough of to be worth a look.
var (
	keyChars   = byteClass("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
	emailChars = byteClass("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-%+@")
	phoneChars = byteClass("0123456789 ()+.-")
	ninoChars  = byteClass("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
	digitChars = byteClass("0123456789")
	atChars    = byteClass("@")
)

// secretPatterns run when their literal trigger occurs (case-insensitively
// when fold). group is the submatch to redact, so "Bearer " stays readable;
// ok vets each match.
var secretPatterns = []struct {
	trigger string
	fold    bool
	group   int
	re      *regexp.Regexp
	ok      func(string, []int) bool
}{
	{"AKIA", false, 0, regexp.MustCompile(`AKIA[A-Z0-9]{16}`), wordBounded},
	{"ASIA", false, 0, regexp.MustCompile(`ASIA[A-Z0-9]{16}`), wordBounded},
	{"gh", false, 0, regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{30,255}`), wordBounded},
	{"github_pat_", false, 0, regexp.MustCompile(`github_pat_[A-Za-z0-9_]{30,255}`), wordBounded},
	{"xox", false, 0, regexp.MustCompile(`xox[abprs]-[A-Za-z0-9-]{10,}`), wordBounded},
	{"-----BEGIN ", false, 0, regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`), anywhere},
	{"eyJ", false, 0, regexp.MustCompile(`eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}`), wordBounded},
	{"://", false, 1, regexp.MustCompile(`://[^/\s:@]*:([^/\s@]+)@`), urlPassword},
	{"bearer", true, 1, regexp.MustCompile(`(?i)bearer\s+([A-Za-z0-9._~+/_-]{20,}=*)`), wordBounded},
}

// secretKeyWords end a key that names a credential ("db_password",
// "X-Api-Key", "aws_secret_access_key"); pagingTokenWords mark tokens that
// are cursors, not credentials ("next_page_token", "syncToken").
var (
	secretKeyWords   = []string{"password", "passwd", "secret", "secretkey", "apikey", "token", "accesskey"}
	pagingTokenWords = []string{"page", "cursor", "continuation", "next", "sync"}
)

type textFeatures struct {
	digits, upper int
	at, plus      bool
}

func featuresOf(t string) (f textFeatures) {
	for i := 0; i < len(t); i++ {
		switch b := t[i]; {
		case b >= '0' && b <= '9':
			f.digits++
		case b >= 'A' && b <= 'Z':
			f.upper++
		case b == '@':
			f.at = true
		case b == '+':
			f.plus = true
		}
	}
	return f
}

// detect appends detector d's spans in t, merged, and returns their count.
func detect(d int, t string, f *textFeatures, secretKey bool, sp [][2]int) ([][2]int, int) {
	switch d {
	case dSecret:
		sp = findSecrets(t, secretKey, sp)
	case dCard:
		if f.digits >= 13 {
			sp = findCards(t, sp)
		}
	case dNationalID:
		if f.digits >= 9 {
			sp = inRuns(sp, reSSN, t, &phoneChars, &digitChars, 9, ssnOK, true)
		}
		if f.digits >= 6 && f.upper >= 3 {
			sp = inRuns(sp, reNINO, t, &ninoChars, &digitChars, 6, ninoOK, true)
		}
	case dEmail:
		if f.at {
			sp = inRuns(sp, reEmail, t, &emailChars, &atChars, 1, emailOK, false)
		}
	case dPhone:
		if f.digits >= 10 || f.plus && f.digits >= 8 {
			sp = inRuns(sp, rePhone, t, &phoneChars, &digitChars, 8, numberBounded, true)
		}
	case dInjection:
		// Markers are reported, not located: redacting withholds the text.
		if n := len(pmcp.InjectionMarkers(t)); n > 0 {
			return append(sp, [2]int{0, len(t)}), n
		}
	}
	sp = mergeSpans(sp)
	return sp, len(sp)
}

func findSecrets(t string, secretKey bool, sp [][2]int) [][2]int {
	// The value of a credential-named JSON key (8+ non-space characters).
	if secretKey && len(t) >= 8 && countNonSpace(t) >= 8 && !isPlaceholder(t) {
		return append(sp, [2]int{0, len(t)})
	}
	if len(t) < 10 { // shorter than any pattern below
		return sp
	}
	for _, p := range secretPatterns {
		if p.fold && containsFold(t, p.trigger) || !p.fold && strings.Contains(t, p.trigger) {
			sp = findAll(sp, p.re, t, 0, len(t), p.group, p.ok, false)
		}
	}
	return keyValues(t, sp)
}

// keyValues finds key=value and key: value pairs whose key names a
// credential (see isSecretKey); the span is the value.
func keyValues(t string, sp [][2]int) [][2]int {
	for p := 0; p < len(t); p++ {
		if t[p] != ':' && t[p] != '=' {
			continue
		}
		e := p
		for e > 0 && isSpace(t[e-1]) {
			e--
		}
		if e > 0 && (t[e-1] == '"' || t[e-1] == '\'') {
			e--
		}
		s := e
		for s > 0 && keyChars[t[s-1]] {
			s--
		}
		if s == e || !isSecretKey(t[s:e]) {
			continue
		}
		v := p + 1
		for v < len(t) && isSpace(t[v]) {
			v++
		}
		if v < len(t) && (t[v] == '"' || t[v] == '\'') {
			v++
		}
		ve := v
		for ve < len(t) && !isSpace(t[ve]) && strings.IndexByte("\"'`,;", t[ve]) < 0 {
			ve++
		}
		if ve-v >= 8 && !isPlaceholder(t[v:ve]) {
			sp = append(sp, [2]int{v, ve})
			p = ve - 1
		}
	}
	return sp
}

// findCards finds runs of 13–19 digits (single spaces or dashes allowed
// between groups, the first group of four) that start like a card number
// (2–6) and pass Luhn. Digits glued to letters are an identifier, not a card.
func findCards(t string, sp [][2]int) [][2]int {
	for i := 0; i < len(t); {
		if !isDigit(t[i]) {
			i++
			continue
		}
		var g [8][2]int
		n, j := 0, i
		for {
			s := j
			for j < len(t) && isDigit(t[j]) {
				j++
			}
			g[n], n = [2]int{s, j}, n+1
			if n == len(g) || j+1 >= len(t) || t[j] != ' ' && t[j] != '-' || !isDigit(t[j+1]) {
				break // a longer run is taken up again from here
			}
			j++
		}
		sp = cardWindows(t, g[:n], i > 0 && isWord(t[i-1]), j < len(t) && isWord(t[j]), sp)
		i = j
	}
	return sp
}

// cardWindows takes, from each starting group, the longest run of groups
// that makes a valid card number. glued says the first group follows, or
// the last precedes, a letter.
func cardWindows(t string, g [][2]int, gluedStart, gluedEnd bool, sp [][2]int) [][2]int {
	for a := 0; a < len(g); a++ {
		best, digits := -1, 0
		for b := a; b < len(g) && !(a == 0 && gluedStart); b++ {
			l := g[b][1] - g[b][0]
			if b > a && (l < 3 || l > 7 || g[a][1]-g[a][0] != 4) {
				break
			}
			if digits += l; digits > 19 {
				break
			}
			if digits >= 13 && t[g[a][0]] >= '2' && t[g[a][0]] <= '6' && !(b == len(g)-1 && gluedEnd) && luhn(t[g[a][0]:g[b][1]]) {
				best = b
			}
		}
		if best >= 0 {
			sp = append(sp, [2]int{g[a][0], g[best][1]})
			a = best
		}
	}
	return sp
}

func luhn(s string) bool {
	sum, dbl := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		if !isDigit(s[i]) {
			continue
		}
		d := int(s[i] - '0')
		if dbl {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum, dbl = sum+d, !dbl
	}
	return sum%10 == 0
}

// ssnOK: one separator throughout and an issuable number (no 000, 666 or
// 9xx area, no 00 group, no 0000 serial).
func ssnOK(t string, m []int) bool {
	s := t[m[0]:m[1]]
	return numberBounded(t, m) && t[m[2]] == t[m[4]] && s[:3] != "000" && s[:3] != "666" && s[0] != '9' &&
		s[4:6] != "00" && s[7:] != "0000"
}

// ninoOK applies the UK NINO prefix rules: first letter not D F I Q U V,
// second not D F I O Q U V, and none of the unallocated pairs.
func ninoOK(t string, m []int) bool {
	s := t[m[0]:m[1]]
	return wordBounded(t, m) && !strings.ContainsRune("DFIQUV", rune(s[0])) && !strings.ContainsRune("DFIOQUV", rune(s[1])) &&
		!slices.Contains([]string{"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}, s[:2])
}

// emailOK drops git@host SSH remotes and retina assets (icon@2x.png).
func emailOK(t string, m []int) bool {
	s := t[m[0]:m[1]]
	tld := strings.ToLower(s[strings.LastIndexByte(s, '.')+1:])
	return !strings.HasPrefix(s, "git@") && !slices.Contains([]string{"png", "jpg", "jpeg", "gif", "svg", "webp"}, tld)
}

// numberBounded rejects a number that is part of a longer token: an id like
// ORD-555-123-4567, a version, a decimal.
func numberBounded(t string, m []int) bool {
	s, e := m[0], m[1]
	if s > 0 && (isWord(t[s-1]) || strings.IndexByte("+-.", t[s-1]) >= 0) {
		return false
	}
	return e == len(t) || !isWord(t[e]) && t[e] != '-' && !(t[e] == '.' && e+1 < len(t) && isDigit(t[e+1]))
}

func wordBounded(t string, m []int) bool {
	return (m[0] == 0 || !isWord(t[m[0]-1])) && (m[1] == len(t) || !isWord(t[m[1]]))
}

func anywhere(string, []int) bool { return true }

// urlPassword skips a password already redacted.
func urlPassword(t string, m []int) bool { return !isPlaceholder(t[m[2]:m[3]]) }

// inRuns runs findAll on each maximal run of in-class bytes that holds at
// least min bytes of need.
func inRuns(sp [][2]int, re *regexp.Regexp, t string, in, need *[256]bool, min int, ok func(string, []int) bool, overlap bool) [][2]int {
	for i := 0; i < len(t); {
		if !in[t[i]] {
			i++
			continue
		}
		j, n := i, 0
		for ; j < len(t) && in[t[j]]; j++ {
			if need[t[j]] {
				n++
			}
		}
		if n >= min {
			sp = findAll(sp, re, t, i, j, 0, ok, overlap)
		}
		i = j
	}
	return sp
}

// findAll appends the spans of re's group in t[lo:hi] that ok accepts (ok
// sees all of t, to check boundaries). With overlap, a rejected match is
// rescanned from its second byte, so a valid one inside it is still found
// ("AA 0000 00 AA000000A"); only for short patterns, as the rescans cost
// the match length each. Otherwise it is skipped whole.
func findAll(sp [][2]int, re *regexp.Regexp, t string, lo, hi, group int, ok func(string, []int) bool, overlap bool) [][2]int {
	for pos := lo; pos < hi; {
		m := re.FindStringSubmatchIndex(t[pos:hi])
		if m == nil {
			break
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
		switch {
		case m[2*group] >= 0 && ok(t, m):
			sp = append(sp, [2]int{m[2*group], m[2*group+1]})
		case overlap:
			pos = m[0] + 1
			continue
		}
		pos = max(m[1], m[0]+1)
	}
	return sp
}

// merge sorts spans and joins overlapping ones.
func mergeSpans(sp [][2]int) [][2]int {
	if len(sp) < 2 {
		return sp
	}
	slices.SortFunc(sp, func(a, b [2]int) int { return a[0] - b[0] })
	out := sp[:1]
	for _, s := range sp[1:] {
		if l := &out[len(out)-1]; s[0] < l[1] {
			l[1] = max(l[1], s[1])
		} else {
			out = append(out, s)
		}
	}
	return out
}

func replaceSpans(t string, sp [][2]int, label string) string {
	var b strings.Builder
	b.Grow(len(t))
	last := 0
	for _, s := range sp {
		b.WriteString(t[last:s[0]])
		b.WriteString(label)
		last = s[1]
	}
	b.WriteString(t[last:])
	return b.String()
}

// isSecretKey: the key, lowercased without punctuation, ends in a credential
// word and is not a paging token.
func isSecretKey(k string) bool {
	var buf [64]byte
	n := 0
	for i := max(0, len(k)-len(buf)); i < len(k); i++ {
		b := k[i]
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b >= 'a' && b <= 'z' || isDigit(b) {
			buf[n], n = b, n+1
		}
	}
	nk := string(buf[:n]) // does not escape: no allocation
	for _, w := range secretKeyWords {
		if strings.HasSuffix(nk, w) {
			if w == "token" {
				for _, x := range pagingTokenWords {
					if strings.Contains(nk, x) {
						return false
					}
				}
			}
			return true
		}
	}
	return false
}

// placeholder: values that stand for a secret without being one.
func isPlaceholder(v string) bool {
	for _, p := range []string{"[REDACTED", "${", "{{", "<"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return strings.Count(v, v[:1]) == len(v) // "********", "xxxxxxxx"
}

// containsFold reports whether t holds the lowercase ASCII word w in any case.
func containsFold(t, w string) bool {
	for i := 0; i+len(w) <= len(t); i++ {
		j := 0
		for j < len(w) && t[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

func countNonSpace(t string) (n int) {
	for i := 0; i < len(t); i++ {
		if !isSpace(t[i]) {
			n++
		}
	}
	return n
}

func byteClass(chars string) (c [256]bool) {
	for i := 0; i < len(chars); i++ {
		c[chars[i]] = true
	}
	return c
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isWord(b byte) bool { return b == '_' || isDigit(b) || b|0x20 >= 'a' && b|0x20 <= 'z' }
