package mcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// toolName is the MCP tool-name rule (2025-11-25): 1–128 of A-Z a-z 0-9 _ - .
var toolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func checkTools(r *Report, tools []*sdk.Tool) {
	seen := map[string]int{}
	for _, st := range tools {
		t := Tool{Name: st.Name, Title: st.Title, Description: st.Description}
		in, inErr := canonical(st.InputSchema)
		out, outErr := canonical(st.OutputSchema)
		t.InputSchema, t.OutputSchema = in, out
		t.Fingerprint = Fingerprint(st.Name, st.Description, in, out)
		r.Tools = append(r.Tools, t)
		seen[st.Name]++
		if seen[st.Name] == 2 {
			r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckName, Message: "tool name listed more than once"})
		}
		if seen[st.Name] == 1 {
			r.Fingerprints[st.Name] = t.Fingerprint
		}

		if !toolName.MatchString(st.Name) {
			r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckName,
				Message: fmt.Sprintf("tool name %q must be 1-128 characters of A-Z, a-z, 0-9, '_', '-', '.'", st.Name)})
		}
		if strings.TrimSpace(st.Description) == "" {
			r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckDescription, Message: "tool has no description"})
		}
		if inErr != nil {
			r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckSchema, Message: "input schema is not JSON: " + inErr.Error()})
		} else {
			checkInputSchema(r, st.Name, in)
		}
		if outErr != nil {
			r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckSchema, Message: "output schema is not JSON: " + outErr.Error()})
		} else if len(out) > 0 {
			var o map[string]any
			if json.Unmarshal(out, &o) != nil || o["type"] != "object" {
				r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckSchema, Message: `output schema must be an object schema ({"type": "object"})`})
			}
		}

		texts := []struct{ where, text string }{{"description", st.Description}, {"title", st.Title}}
		for _, pd := range propertyDescriptions(in) {
			texts = append(texts, pd)
		}
		for _, tx := range texts {
			for _, m := range InjectionMarkers(tx.text) {
				r.add(Finding{Severity: SeverityError, Tool: st.Name, Check: CheckInjection,
					Message: fmt.Sprintf("%s contains instruction-like text %q (prompt-injection risk)", tx.where, m)})
			}
		}
	}
	sort.SliceStable(r.Tools, func(i, j int) bool { return r.Tools[i].Name < r.Tools[j].Name })
}

// checkInputSchema: an object schema whose required properties exist (and
// are documented).
func checkInputSchema(r *Report, tool string, raw json.RawMessage) {
	var s map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema, Message: "input schema is missing or not a JSON object"})
		return
	}
	if s["type"] != "object" {
		r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema,
			Message: fmt.Sprintf(`input schema must have "type": "object", has %v`, s["type"])})
	}
	props, _ := s["properties"].(map[string]any)
	if p, ok := s["properties"]; ok && props == nil {
		r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema, Message: fmt.Sprintf("input schema properties must be an object, is %T", p)})
	}
	req, ok := s["required"]
	if !ok {
		return
	}
	list, ok := req.([]any)
	if !ok {
		r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema, Message: "input schema required must be an array of property names"})
		return
	}
	for _, x := range list {
		name, ok := x.(string)
		if !ok {
			r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema, Message: fmt.Sprintf("input schema required lists a non-string %v", x)})
			continue
		}
		p, ok := props[name].(map[string]any)
		if !ok {
			r.add(Finding{Severity: SeverityError, Tool: tool, Check: CheckSchema,
				Message: fmt.Sprintf("required property %q is not defined in the input schema's properties", name)})
			continue
		}
		if d, _ := p["description"].(string); strings.TrimSpace(d) == "" {
			r.add(Finding{Severity: SeverityWarning, Tool: tool, Check: CheckDescription,
				Message: fmt.Sprintf("required property %q has no description", name)})
		}
	}
}

// propertyDescriptions returns the descriptions of an input schema's
// properties (top level), where poisoning also hides.
func propertyDescriptions(raw json.RawMessage) []struct{ where, text string } {
	var s struct {
		Properties map[string]struct {
			Description string `json:"description"`
		} `json:"properties"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	var out []struct{ where, text string }
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, struct{ where, text string }{fmt.Sprintf("description of property %q", n), s.Properties[n].Description})
	}
	return out
}

// canonical is v as JSON with sorted keys, no insignificant whitespace and
// no HTML escaping; nil for a nil value.
func canonical(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// Fingerprint is a tool's contract digest: sha256 over its name,
// description and canonical input and output schemas, NUL-separated.
func Fingerprint(name, description string, input, output json.RawMessage) string {
	h := sha256.New()
	for i, part := range [][]byte{[]byte(name), []byte(description), input, output} {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write(part)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// injectionPhrases are instruction-like phrases that have no business in a
// tool description (matched case-insensitively).
var injectionPhrases = []string{
	"ignore previous", "ignore all previous", "ignore the previous", "ignore the above", "ignore any previous",
	"disregard previous", "disregard all previous", "disregard the above", "forget previous instructions",
	"forget all previous", "override your instructions", "new instructions:",
	"do not tell the user", "don't tell the user", "do not inform the user", "don't inform the user",
	"without telling the user", "without informing the user", "do not mention", "don't mention",
	"hide this from the user", "the user must not know", "keep this secret",
	"<instructions>", "</instructions>", "<important>", "</important>", "<system>", "</system>",
	"system prompt", "you are now", "act as the system",
	"before using this tool, read", "before using this tool read", "~/.ssh", "id_rsa", ".aws/credentials",
}

// injectionCaseSensitive are markers only suspicious in capitals.
var injectionCaseSensitive = []string{"IMPORTANT:", "SYSTEM:", "ATTENTION AI", "NOTE TO AI"}

// InjectionMarkers returns the instruction-like fragments in text.
func InjectionMarkers(text string) []string {
	if text == "" {
		return nil
	}
	var found []string
	lower := strings.ToLower(text)
	for _, p := range injectionPhrases {
		if strings.Contains(lower, p) {
			found = append(found, p)
		}
	}
	for _, p := range injectionCaseSensitive {
		if strings.Contains(text, p) {
			found = append(found, p)
		}
	}
	for _, r := range text {
		if hidden(r) {
			found = append(found, fmt.Sprintf("invisible character U+%04X", r))
			break
		}
	}
	return found
}

// hidden: characters that render as nothing yet reach the model (zero-width
// characters, Unicode tag characters, bidi controls).
func hidden(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064, r == 0xFEFF:
		return true
	case r >= 0xE0000 && r <= 0xE007F:
		return true
	}
	return unicode.Is(unicode.Cf, r) && r != 0x00AD
}
