package bench

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelplane/modelplane/internal/testkit"
)

// readyLine is what `modelplane dev` prints once the API (which starts last) listens.
const readyLine = "modelplane dev is ready in "

// devRun is one start of the binary until its ready line.
type devRun struct {
	wall  time.Duration // exec to ready line, as a user waits
	self  time.Duration // what the binary reports (from main to ready)
	rssMB float64       // the process's VmRSS once ready
}

// startDev runs `modelplane dev` on dir and ports from base, waits for the
// ready line, then interrupts it and waits for a clean exit.
func startDev(b *testing.B, bin, dir string, base int) devRun {
	b.Helper()
	args, _ := testkit.DevArgs(dir, base)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped { // a failed wait must not leave the server running
			_ = cmd.Process.Kill()
		}
	}()
	exited := make(chan error, 1)
	ready := make(chan devRun, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), readyLine); ok {
				r := devRun{wall: time.Since(t0), rssMB: rssMB(strconv.Itoa(cmd.Process.Pid))}
				r.self, _ = time.ParseDuration(strings.TrimSpace(rest))
				ready <- r
			}
		}
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	var r devRun
	select {
	case r = <-ready:
	case err := <-exited:
		stopped = true
		b.Fatalf("modelplane dev exited before ready (%v):\n%s", err, stderr.String())
	case <-time.After(3 * time.Minute):
		b.Fatalf("modelplane dev not ready after 3m:\n%s", stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			b.Fatalf("modelplane dev did not stop cleanly (%v):\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		b.Fatalf("modelplane dev did not stop on SIGINT:\n%s", stderr.String())
	}
	return r
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// BenchmarkDevStart: `modelplane dev` from exec to its ready line, on a new
// data directory (cold: schemas, namespace, tokens, seed) and again on the
// same directory (warm). The binary is built once, outside the figures.
// MODELPLANE_BENCH_DEV_STARTS cold+warm pairs per round (default 3).
func BenchmarkDevStart(b *testing.B) {
	loadNote(b)
	pairs := envInt(b, "MODELPLANE_BENCH_DEV_STARTS", 3)
	bin, err := testkit.BuildBinary("..", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var cold, warm, coldSelf, warmSelf []time.Duration
	var rss float64
	for b.Loop() {
		for range pairs {
			dir := filepath.Join(b.TempDir(), "data")
			// The same ports for both starts: a restarted Temporal finds its own membership.
			base := testkit.FreePorts(b, testkit.DevPorts)
			c := startDev(b, bin, dir, base)
			w := startDev(b, bin, dir, base)
			cold, coldSelf = append(cold, c.wall), append(coldSelf, c.self)
			warm, warmSelf = append(warm, w.wall), append(warmSelf, w.self)
			rss = max(rss, c.rssMB, w.rssMB)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(cold)), "pairs")
	b.ReportMetric(ms(pct(cold, .5)), "cold-p50-ms")
	b.ReportMetric(ms(pct(cold, 1)), "cold-max-ms")
	b.ReportMetric(ms(pct(warm, .5)), "warm-p50-ms")
	b.ReportMetric(ms(pct(warm, 1)), "warm-max-ms")
	b.ReportMetric(float64(pct(warm, .5))/float64(pct(cold, .5)), "warm/cold")
	b.ReportMetric(ms(pct(coldSelf, .5)), "cold-self-p50-ms")
	b.ReportMetric(ms(pct(warmSelf, .5)), "warm-self-p50-ms")
	b.ReportMetric(rss, "ready-rss-max-MB")
}
