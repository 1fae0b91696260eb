package mcp

import "sort"

// Kinds of Change.
const (
	ToolAdded   = "added"
	ToolRemoved = "removed"
	ToolChanged = "changed"
)

// Change is one difference between the approved tool contract and a live one.
type Change struct {
	Kind     string `json:"kind"`
	Tool     string `json:"tool"`
	Approved string `json:"approved,omitempty"` // fingerprint approved (removed, changed)
	Live     string `json:"live,omitempty"`     // fingerprint served now (added, changed)
}

// Drift lists how live's tools differ from the approved fingerprints (tool
// name → fingerprint, as in Report.Fingerprints), by tool name. None means
// the server still serves exactly what was approved.
func Drift(approved map[string]string, live Report) []Change {
	var out []Change
	for name, fp := range live.Fingerprints {
		was, ok := approved[name]
		switch {
		case !ok:
			out = append(out, Change{Kind: ToolAdded, Tool: name, Live: fp})
		case was != fp:
			out = append(out, Change{Kind: ToolChanged, Tool: name, Approved: was, Live: fp})
		}
	}
	for name, fp := range approved {
		if _, ok := live.Fingerprints[name]; !ok {
			out = append(out, Change{Kind: ToolRemoved, Tool: name, Approved: fp})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tool != out[j].Tool {
			return out[i].Tool < out[j].Tool
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}
