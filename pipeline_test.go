package modelplane_test

import (
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
)

func validPipeline() modelplane.Pipeline {
	return modelplane.Pipeline{Name: "release", Team: "growth", Stages: []modelplane.PipelineStage{
		{Name: "dev", Strategy: modelplane.RolloutStrategy{Type: "direct"}, Waves: []modelplane.Wave{{Targets: []string{"dev"}}}},
		{Name: "prod", Upstream: []string{"dev"}, Soak: modelplane.Duration(time.Hour), Strategy: modelplane.RolloutStrategy{Type: "direct"},
			Windows: []modelplane.Window{{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}},
			Waves:   []modelplane.Wave{{Targets: []string{"eu", "us"}, MaxParallel: 1, OnFailure: modelplane.WaveRollback}}},
	}}
}

func TestPipelineValidateNamesTheField(t *testing.T) {
	if err := validPipeline().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(p *modelplane.Pipeline){
		"team":                            func(p *modelplane.Pipeline) { p.Team = "" },
		"stages[1].upstream[0]":           func(p *modelplane.Pipeline) { p.Stages[1].Upstream = []string{"qa"} },
		"stages[1].name":                  func(p *modelplane.Pipeline) { p.Stages[1].Name = "dev" },
		"stages[0].soak":                  func(p *modelplane.Pipeline) { p.Stages[0].Soak = modelplane.Duration(time.Minute) },
		"stages[1].require":               func(p *modelplane.Pipeline) { p.Stages[1].Require = "most" },
		"stages[1].windows[0].end":        func(p *modelplane.Pipeline) { p.Stages[1].Windows[0].End = "08:00" },
		"stages[1].windows[0].days[1]":    func(p *modelplane.Pipeline) { p.Stages[1].Windows[0].Days[1] = "tuesday" },
		"stages[1].waves[0].targets[1]":   func(p *modelplane.Pipeline) { p.Stages[1].Waves[0].Targets[1] = "eu" },
		"stages[1].waves[0].on_failure":   func(p *modelplane.Pipeline) { p.Stages[1].Waves[0].OnFailure = "retry" },
		"stages[0].strategy":              func(p *modelplane.Pipeline) { p.Stages[0].Strategy.Type = "yolo" },
		"stages: the upstream links form": func(p *modelplane.Pipeline) { p.Stages[0].Upstream = []string{"prod"} },
	}
	for field, breakIt := range cases {
		p := validPipeline()
		breakIt(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestWindowsNextOpen(t *testing.T) {
	ws := []modelplane.Window{{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}}
	sat := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC) // a Saturday
	at, ok := modelplane.NextOpen(ws, sat)
	if !ok || !at.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("next open after Saturday noon = %s %v, want Monday 09:00", at, ok)
	}
	mon := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	if at, ok := modelplane.NextOpen(ws, mon); !ok || !at.Equal(mon) {
		t.Fatalf("inside the window: %s %v", at, ok)
	}
	if at, ok := modelplane.NextOpen(nil, mon); !ok || !at.Equal(mon) {
		t.Fatalf("no windows: %s %v", at, ok)
	}
	late := time.Date(2026, 12, 8, 17, 0, 0, 0, time.UTC) // Tuesday at the end
	if at, _ := modelplane.NextOpen(ws, late); !at.Equal(time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("after Tuesday's window = %s, want next Monday 09:00", at)
	}
}
