package gateway

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modelplane/modelplane"
)

type metrics struct {
	calls    *prometheus.CounterVec
	findings *prometheus.CounterVec
	overhead *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modelplane_mcp_tool_calls_total",
			Help: "Tool calls through the MCP gateway by server, tool and outcome (allowed, denied, blocked, failed)."},
			[]string{"server", "tool", "outcome"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modelplane_mcp_content_findings_total",
			Help: "Content-check findings by server, detector, where and action."},
			[]string{"server", "detector", "where", "action"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "modelplane_mcp_gateway_overhead_seconds",
			Help:    "Time the gateway adds to a tool call (everything but the upstream).",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05}},
			[]string{"server"}),
	}
	if reg == nil {
		return m, nil
	}
	// A second gateway on the same registry (tests, a restart in-process)
	// counts into the collectors already there.
	var err error
	if m.calls, err = register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.findings, err = register(reg, m.findings); err != nil {
		return nil, err
	}
	if m.overhead, err = register(reg, m.overhead); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) call(server, tool string, outcome modelplane.ToolOutcome, overhead time.Duration, fs []Finding) {
	m.calls.WithLabelValues(server, tool, string(outcome)).Inc()
	m.overhead.WithLabelValues(server).Observe(overhead.Seconds())
	for _, f := range fs {
		m.findings.WithLabelValues(server, string(f.Detector), string(f.Where), string(f.Action)).Add(float64(f.Count))
	}
}
