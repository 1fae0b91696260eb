package modelplane

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Kind is the kind of a resource declared as code (modelplane apply).
type Kind string

// The kinds apply knows.
const (
	KindModel    Kind = "Model"
	KindTarget   Kind = "Target"
	KindPipeline Kind = "Pipeline"
)

// Resource is one declared object: its kind and its fields as the API
// takes them. Source says where it was declared ("release.yaml:12"), for
// messages.
type Resource struct {
	Kind   Kind            `json:"kind"`
	Spec   json.RawMessage `json:"spec"`
	Source string          `json:"source,omitempty"`
}

// PlanAction is what applying does to one resource.
type PlanAction string

// The plan actions.
const (
	PlanCreate    PlanAction = "create"
	PlanChange    PlanAction = "change"
	PlanDelete    PlanAction = "delete"
	PlanUnchanged PlanAction = "unchanged"
)

// FieldChange is one field a change sets: From is "" for a field that was
// not set, To is "" for one that is removed.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// PlannedChange is one resource's line of a plan.
type PlannedChange struct {
	Kind   Kind          `json:"kind"`
	Name   string        `json:"name"`
	Action PlanAction    `json:"action"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// Plan is what an apply does (or, dry, would do).
type Plan struct {
	Changes []PlannedChange `json:"changes"`
	DryRun  bool            `json:"dry_run"`
}

// Summary is the plan's last line: "1 to create, 2 to change, 0 to delete, 3 unchanged".
func (p Plan) Summary() string {
	n := map[PlanAction]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	return fmt.Sprintf("%d to create, %d to change, %d to delete, %d unchanged", n[PlanCreate], n[PlanChange], n[PlanDelete], n[PlanUnchanged])
}

// DiffFields compares two values field by field, as their JSON has them,
// in path order ("stages[1].soak"). Fields named in skip (top level) are
// left out: timestamps the store sets.
func DiffFields(from, to any, skip ...string) []FieldChange {
	a, b := flatten(from, skip), flatten(to, skip)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	paths := make([]string, 0, len(keys))
	for k := range keys {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	var out []FieldChange
	for _, k := range paths {
		if a[k] != b[k] {
			out = append(out, FieldChange{Field: k, From: a[k], To: b[k]})
		}
	}
	return out
}

func flatten(v any, skip []string) map[string]string {
	out := map[string]string{}
	if v == nil {
		return out
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return out
	}
	var tree any
	if json.Unmarshal(raw, &tree) != nil {
		return out
	}
	if m, ok := tree.(map[string]any); ok {
		for _, s := range skip {
			delete(m, s)
		}
	}
	var walk func(prefix string, x any)
	walk = func(prefix string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, v)
			}
		case []any:
			for i, v := range t {
				walk(fmt.Sprintf("%s[%d]", prefix, i), v)
			}
		case nil:
		default:
			b, _ := json.Marshal(t)
			s := string(b)
			if str, ok := t.(string); ok {
				s = str
			}
			// Zero values read as unset: omitempty and absence agree.
			if s != "" && s != "0" && s != "false" {
				out[prefix] = s
			}
		}
	}
	walk("", tree)
	return out
}

// FieldLine finds the line of a field path ("stages[0].waves[1].targets")
// in a resource's source, given a lookup the file reader built; it falls
// back to the resource's own line.
func FieldLine(lines map[string]int, field string) (int, bool) {
	for f := field; f != ""; {
		if n, ok := lines[f]; ok {
			return n, true
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	n, ok := lines[""]
	return n, ok
}
