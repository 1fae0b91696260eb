package modelplane

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pipeline moves a model version through stages (dev → staging → prod),
// each stage a set of targets rolled out in waves. Every target is an
// ordinary promotion, so its strategy, analysis, approvals, rollback and
// audit apply unchanged; the pipeline decides when each may start.
type Pipeline struct {
	Name string `json:"name"`
	// Team owns the pipeline: its members run it and change it.
	Team   string          `json:"team"`
	Stages []PipelineStage `json:"stages"`
	// UpdatedAt is set by the store.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// PipelineStage is one step of a pipeline.
type PipelineStage struct {
	Name string `json:"name"`
	// Upstream stages must have verified the version first: all of them
	// (Require "all", the default) or any one ("one").
	Upstream []string    `json:"upstream,omitempty"`
	Require  UpstreamReq `json:"require,omitempty"`
	// Soak: the version must have served every upstream target
	// continuously for this long before this stage starts.
	Soak Duration `json:"soak,omitempty"`
	// Auto starts the stage once its gates pass, where the policy allows
	// auto-promotion into its environment; otherwise a person promotes it.
	Auto bool `json:"auto,omitempty"`
	// Windows, if any, are the only times the stage may start (UTC).
	Windows  []Window        `json:"windows,omitempty"`
	Strategy RolloutStrategy `json:"strategy"`
	Waves    []Wave          `json:"waves"`
}

// UpstreamReq says how many upstream stages must have verified a version.
type UpstreamReq string

// The upstream requirements.
const (
	RequireAll UpstreamReq = "all"
	RequireOne UpstreamReq = "one"
)

// Wave is a group of targets (regions, clouds) promoted together.
type Wave struct {
	Name    string   `json:"name,omitempty"`
	Targets []string `json:"targets"`
	// MaxParallel targets at once; 0 means all of them.
	MaxParallel int `json:"max_parallel,omitempty"`
	// OnFailure: halt (default) leaves the targets already changed as they
	// are; rollback returns them to their previous version.
	OnFailure WaveFailure `json:"on_failure,omitempty"`
}

// WaveFailure is what a wave does when one of its promotions fails.
type WaveFailure string

// The wave failure policies.
const (
	WaveHalt     WaveFailure = "halt"
	WaveRollback WaveFailure = "rollback"
)

// Window is a recurring time a stage may start: on the given weekdays
// (none means every day), from Start to End ("09:00", "17:30"; UTC).
type Window struct {
	Days  []string `json:"days,omitempty"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func clock(s string) (time.Duration, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
}

// Open reports whether t falls in the window.
func (w Window) Open(t time.Time) bool {
	t = t.UTC()
	if len(w.Days) > 0 && !slices.ContainsFunc(w.Days, func(d string) bool { return weekdays[strings.ToLower(d)] == t.Weekday() }) {
		return false
	}
	start, _ := clock(w.Start)
	end, _ := clock(w.End)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return !t.Before(day.Add(start)) && t.Before(day.Add(end))
}

// NextOpen is the earliest time at or after t inside one of the windows
// (t itself with no windows); false when none ever opens.
func NextOpen(ws []Window, t time.Time) (time.Time, bool) {
	if len(ws) == 0 {
		return t, true
	}
	t = t.UTC()
	// Windows start on the minute: look minute by minute at the starts of
	// the next eight days rather than scanning every minute.
	for _, w := range ws {
		if w.Open(t) {
			return t, true
		}
	}
	var best time.Time
	for d := 0; d <= 8; d++ {
		day := time.Date(t.Year(), t.Month(), t.Day()+d, 0, 0, 0, 0, time.UTC)
		for _, w := range ws {
			start, _ := clock(w.Start)
			at := day.Add(start)
			if at.After(t) && w.Open(at) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
	}
	return best, !best.IsZero()
}

// Validate checks a pipeline: names, the stage graph (known upstreams, no
// cycle), waves and windows. Errors name the field.
func (p Pipeline) Validate() error {
	if err := checkName("name", p.Name); err != nil {
		return err
	}
	if strings.TrimSpace(p.Team) == "" {
		return FieldError("team", "is required")
	}
	if len(p.Stages) == 0 {
		return FieldError("stages", "needs at least one stage")
	}
	index := map[string]int{}
	for i, s := range p.Stages {
		f := fmt.Sprintf("stages[%d].", i)
		if err := checkName(f+"name", s.Name); err != nil {
			return err
		}
		if _, dup := index[s.Name]; dup {
			return FieldError(f+"name", "%q names two stages", s.Name)
		}
		index[s.Name] = i
	}
	for i, s := range p.Stages {
		f := fmt.Sprintf("stages[%d].", i)
		for j, u := range s.Upstream {
			if _, ok := index[u]; !ok || u == s.Name {
				return FieldError(fmt.Sprintf("%supstream[%d]", f, j), "%q is not another stage of the pipeline", u)
			}
		}
		switch s.Require {
		case "", RequireAll, RequireOne:
		default:
			return FieldError(f+"require", "must be all or one, got %q", s.Require)
		}
		if s.Soak < 0 {
			return FieldError(f+"soak", "must not be negative")
		}
		if s.Soak > 0 && len(s.Upstream) == 0 {
			return FieldError(f+"soak", "needs an upstream stage to soak in")
		}
		if _, err := s.Strategy.Normalize(); err != nil {
			return FieldError(f+"strategy", "%v", err)
		}
		for j, w := range s.Windows {
			wf := fmt.Sprintf("%swindows[%d].", f, j)
			st, ok1 := clock(w.Start)
			en, ok2 := clock(w.End)
			if !ok1 {
				return FieldError(wf+"start", "must be HH:MM (UTC), got %q", w.Start)
			}
			if !ok2 || en <= st {
				return FieldError(wf+"end", "must be HH:MM (UTC) after start, got %q", w.End)
			}
			for k, d := range w.Days {
				if _, ok := weekdays[strings.ToLower(d)]; !ok {
					return FieldError(fmt.Sprintf("%sdays[%d]", wf, k), "must be mon, tue, wed, thu, fri, sat or sun, got %q", d)
				}
			}
		}
		if len(s.Waves) == 0 {
			return FieldError(f+"waves", "needs at least one wave of targets")
		}
		seen := map[string]bool{}
		for j, w := range s.Waves {
			wf := fmt.Sprintf("%swaves[%d].", f, j)
			if len(w.Targets) == 0 {
				return FieldError(wf+"targets", "needs at least one target")
			}
			for k, t := range w.Targets {
				if strings.TrimSpace(t) == "" || seen[t] {
					return FieldError(fmt.Sprintf("%stargets[%d]", wf, k), "%q is empty or appears twice in the stage", t)
				}
				seen[t] = true
			}
			if w.MaxParallel < 0 {
				return FieldError(wf+"max_parallel", "must not be negative")
			}
			switch w.OnFailure {
			case "", WaveHalt, WaveRollback:
			default:
				return FieldError(wf+"on_failure", "must be halt or rollback, got %q", w.OnFailure)
			}
		}
	}
	if cyc := p.cycle(index); cyc != "" {
		return FieldError("stages", "the upstream links form a cycle through %s", cyc)
	}
	return nil
}

func (p Pipeline) cycle(index map[string]int) string {
	state := make([]int, len(p.Stages)) // 0 new, 1 on the path, 2 done
	var visit func(i int) string
	visit = func(i int) string {
		if state[i] == 1 {
			return p.Stages[i].Name
		}
		if state[i] == 2 {
			return ""
		}
		state[i] = 1
		for _, u := range p.Stages[i].Upstream {
			if c := visit(index[u]); c != "" {
				return c
			}
		}
		state[i] = 2
		return ""
	}
	for i := range p.Stages {
		if c := visit(i); c != "" {
			return c
		}
	}
	return ""
}

// StageStatus is where a version is in one stage of a pipeline run.
type StageStatus string

// The stage statuses.
const (
	PipelineWaiting   StageStatus = "waiting"   // for its upstream stages
	PipelineGated     StageStatus = "gated"     // upstream verified; a freeze, window, soak or a person holds it
	PipelinePromoting StageStatus = "promoting" // its waves run
	PipelineVerified  StageStatus = "verified"  // every target serves the version
	PipelineFailed    StageStatus = "failed"    // a promotion failed; later stages do not run
	PipelineSkipped   StageStatus = "skipped"   // an upstream stage failed
)
