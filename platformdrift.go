package modelplane

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SyncStatus says how what a platform serves compares with what modelplane
// last applied there. Someone who edits an endpoint in a cloud console makes
// it drift; modelplane's own promotions never do.
type SyncStatus string

// The sync statuses.
const (
	InSync  SyncStatus = "in_sync" // the platform serves what was applied
	Drifted SyncStatus = "drifted" // it serves something else (Diffs say what)
	// Missing: nothing serves the model (the endpoint was deleted, or its traffic).
	Missing SyncStatus = "missing"
	// SyncUnknown: the platform could not be read; the last known status stands.
	SyncUnknown SyncStatus = "unknown"
)

// DriftMode says what the deployment guardian does about a drifted target.
type DriftMode string

// The drift modes.
const (
	// DriftWarn reports drift (audit record, CloudEvent, metric) and leaves it.
	DriftWarn DriftMode = "warn"
	// DriftCorrect also restores what was applied, unless a promotion holds the target.
	DriftCorrect DriftMode = "correct"
)

// Outcomes of a drift correction.
const (
	CorrectionApplied = "corrected"
	// CorrectionVetoed: a promotion holds the target, so the drift is only reported.
	CorrectionVetoed = "vetoed"
	CorrectionFailed = "failed"
)

// DriftPolicy is a target's answer to drift.
type DriftPolicy struct {
	// Mode defaults to warn.
	Mode DriftMode `json:"mode,omitempty"`
	// Ignore names fields never reported: "traffic" (every weight),
	// "traffic.<version>", "shadow", "versions" or "versions.<version>".
	Ignore []string `json:"ignore,omitempty"`
}

// Validate checks the policy; prefix names it in errors ("drift.").
func (p DriftPolicy) Validate(prefix string) error {
	switch p.Mode {
	case "", DriftWarn, DriftCorrect:
	default:
		return FieldError(prefix+"mode", "must be warn or correct, got %q", p.Mode)
	}
	for i, f := range p.Ignore {
		head, _, _ := strings.Cut(f, ".")
		if head != "traffic" && head != "shadow" && head != "versions" || strings.HasSuffix(f, ".") || head == "shadow" && f != head {
			return FieldError(fmt.Sprintf("%signore[%d]", prefix, i), "must be traffic, traffic.<version>, shadow, versions or versions.<version>, got %q", f)
		}
	}
	return nil
}

// EffectiveMode is the mode with its default.
func (p DriftPolicy) EffectiveMode() DriftMode {
	if p.Mode == "" {
		return DriftWarn
	}
	return p.Mode
}

func (p DriftPolicy) ignores(field string) bool {
	for _, f := range p.Ignore {
		if field == f || strings.HasPrefix(field, f+".") {
			return true
		}
	}
	return false
}

// FieldDiff is one field where the platform differs from what was applied.
type FieldDiff struct {
	Field   string `json:"field"`
	Applied string `json:"applied"`
	Actual  string `json:"actual"`
}

func (d FieldDiff) String() string { return d.Field + ": " + d.Applied + " → " + d.Actual }

// PlatformSync is the deployment guardian's last comparison of a model on a
// target with what was applied there.
type PlatformSync struct {
	Status SyncStatus  `json:"status"`
	Diffs  []FieldDiff `json:"diffs,omitempty"`
	// FirstSeen is when this drift was first seen; it stays while the
	// target remains drifted, whatever else changes by hand meanwhile.
	FirstSeen *time.Time `json:"first_seen,omitempty"`
	CheckedAt time.Time  `json:"checked_at"`
	// Reason says why the status is unknown.
	Reason string `json:"reason,omitempty"`
}

// CompareServed compares what a platform serves for a model with the
// deployment modelplane last applied, field by field, in a stable order.
// Versions deployed without traffic are not compared (previous versions are
// kept warm for rollback, and platforms keep others), but a version that
// should serve and is not deployed is.
func CompareServed(applied Deployment, actual EndpointState, p DriftPolicy) (SyncStatus, []FieldDiff) {
	if actual.Traffic.total() == 0 && applied.Traffic.total() > 0 {
		if p.ignores("traffic") {
			return InSync, nil
		}
		return Missing, []FieldDiff{{Field: "endpoint", Applied: applied.Traffic.String(), Actual: "absent"}}
	}
	var diffs []FieldDiff
	add := func(field, want, got string) {
		if !p.ignores(field) {
			diffs = append(diffs, FieldDiff{Field: field, Applied: want, Actual: got})
		}
	}
	versions := map[string]bool{}
	for v, w := range applied.Traffic {
		if w > 0 {
			versions[v] = true
		}
	}
	for v, w := range actual.Traffic {
		if w > 0 {
			versions[v] = true
		}
	}
	names := make([]string, 0, len(versions))
	for v := range versions {
		names = append(names, v)
	}
	slices.Sort(names)
	for _, v := range names {
		if want, got := applied.Traffic[v], actual.Traffic[v]; want != got {
			add("traffic."+v, strconv.Itoa(want)+"%", strconv.Itoa(got)+"%")
		}
	}
	for _, v := range names {
		if applied.Traffic[v] > 0 && len(actual.Versions) > 0 && !slices.Contains(actual.Versions, v) {
			add("versions."+v, "deployed", "absent")
		}
	}
	if actual.Shadow != nil {
		add("shadow", "none", fmt.Sprintf("%s at %d%%", actual.Shadow.Version, actual.Shadow.Percent))
	}
	if len(diffs) == 0 {
		return InSync, nil
	}
	return Drifted, diffs
}

func (s TrafficSplit) total() int {
	n := 0
	for _, w := range s {
		n += w
	}
	return n
}

// DiffKey identifies a drift: the same status and differences give the same key.
func DiffKey(s SyncStatus, diffs []FieldDiff) string {
	var b strings.Builder
	b.WriteString(string(s))
	for _, d := range diffs {
		b.WriteString("|" + d.String())
	}
	return b.String()
}
