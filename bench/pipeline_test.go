package bench

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/workflows"
	"go.temporal.io/sdk/client"
)

// BenchmarkPipelineOverhead: a pipeline of 3 stages × 4 targets (each stage
// one wave of four, promoting itself) against the same 12 promotions
// started one by one through the API, each waited for before the next, on
// the same stack. Both move one version to the same 12 simulated targets
// with a direct strategy; the figure is the process CPU of each side.
// MODELPLANE_BENCH_PIPELINE_ROUNDS rounds (default 3), alternating sides.
func BenchmarkPipelineOverhead(b *testing.B) {
	loadNote(b)
	rounds := envInt(b, "MODELPLANE_BENCH_PIPELINE_ROUNDS", 3)
	s := newStack(b, true, nil)
	ctx := context.Background()
	var targets []string
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("t%02d", i)
		s.target(name, "staging")
		targets = append(targets, name)
	}
	s.model("churn", "v0")
	for _, t := range targets {
		s.serve("churn", t, "v0")
	}
	direct := modelplane.RolloutStrategy{Type: modelplane.StrategyDirect, MonitorWindow: modelplane.Duration(time.Second)}
	pipe := modelplane.Pipeline{Name: "bench", Team: team}
	for st := 0; st < 3; st++ {
		stage := modelplane.PipelineStage{Name: fmt.Sprintf("s%d", st), Auto: true, Strategy: direct,
			Waves: []modelplane.Wave{{Targets: targets[st*4 : st*4+4]}}}
		if st > 0 {
			stage.Upstream = []string{fmt.Sprintf("s%d", st-1)}
		}
		pipe.Stages = append(pipe.Stages, stage)
	}
	if err := pipe.Validate(); err != nil {
		b.Fatal(err)
	}

	version := 0
	oneByOne := func() time.Duration {
		version++
		v := fmt.Sprintf("v%d", version)
		s.version("churn", v)
		c0 := cpu()
		for _, t := range targets {
			var acc api.PromotionAccepted
			if err := s.call("POST", "/v1/promotions", alice, map[string]any{"model": "churn", "version": v, "target": t,
				"strategy": map[string]any{"type": "direct", "monitor_window": "1s"}}, &acc, http.StatusAccepted); err != nil {
				b.Fatal(err)
			}
			var p modelplane.Promotion
			if err := s.c.GetWorkflow(ctx, acc.WorkflowID, "").Get(ctx, &p); err != nil || p.Status != modelplane.StatusSucceeded {
				b.Fatalf("promotion %s: %s %v", acc.ID, p.Status, err)
			}
		}
		return cpu() - c0
	}
	throughPipeline := func() time.Duration {
		version++
		v := fmt.Sprintf("v%d", version)
		s.version("churn", v)
		c0 := cpu()
		id := workflows.PipelineRunID(pipe.Name, "churn", v)
		run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.PipelineWorkflow,
			workflows.PipelineRunInput{Pipeline: pipe, Model: "churn", Version: v, RequestedBy: "alice"})
		if err != nil {
			b.Fatal(err)
		}
		var view workflows.PipelineRunView
		if err := run.Get(ctx, &view); err != nil {
			b.Fatal(err)
		}
		for _, st := range view.Stages {
			if st.Status != modelplane.PipelineVerified {
				b.Fatalf("stage %s: %s (%s)", st.Name, st.Status, st.Note)
			}
		}
		return cpu() - c0
	}

	oneByOne() // warm both paths
	throughPipeline()
	var direct12, piped []time.Duration
	for b.Loop() {
		for i := 0; i < rounds; i++ {
			direct12 = append(direct12, oneByOne())
			piped = append(piped, throughPipeline())
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(mean(direct12)), "one-by-one-cpu-ms")
	b.ReportMetric(ms(mean(piped)), "pipeline-cpu-ms")
	b.ReportMetric(float64(mean(piped))/float64(mean(direct12)), "cpu-ratio")
}
