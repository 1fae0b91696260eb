//go:build reliability

package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/store"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
)

// loadSize is how many promotions TestLoad submits: MODELPLANE_RELIABILITY_LOAD, default 2000.
func loadSize(t *testing.T) int {
	v := os.Getenv("MODELPLANE_RELIABILITY_LOAD")
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 20 {
		t.Fatalf("MODELPLANE_RELIABILITY_LOAD=%q: want a number of promotions, at least 20", v)
	}
	return n
}

// notStarted is the reason the API gives a promotion whose workflow it could not start.
const notStarted = "workflow could not be started"

// TestLoad submits thousands of promotions at once — one per model and
// target, 10 production targets, from 200 concurrent HTTP clients, every
// tenth sent twice at the same moment with the same Idempotency-Key, and
// any 5xx resent with the same key, as a pipeline retries — against the
// in-process stack (API, worker, store; Temporal in a process of its own).
// Then bob approves 5% and carol rejects 5%, while the rest wait.
//
// Every promotion is accounted for: exactly one per model and target (the
// duplicates got the original back); the store and Temporal agree (a
// promotion recorded as not started has no workflow running); the approved
// ones succeeded, the rejected ones were rejected, the others wait at
// awaiting_approval. And the audit agrees exactly with the promotions: one
// "promotion_requested" record per started promotion, one "finished" per
// ended one, one "vote" per vote, and one "stage" record per entry of each
// promotion's history — a transition is a stage change, which the workflow
// writes to the history and the audit together, under a deterministic key —
// with the hash chain intact after all the concurrent appends.
func TestLoad(t *testing.T) {
	n := loadSize(t)
	const targets, clients = 10, 200
	// MODELPLANE_RELIABILITY_TEMPORAL=inprocess keeps Temporal in the test
	// process, under the race detector: slower, enough to time starts out.
	s := newStack(t, stackConfig{conns: clients, externalTemporal: os.Getenv("MODELPLANE_RELIABILITY_TEMPORAL") != "inprocess"})
	ctx := context.Background()
	for j := 0; j < targets; j++ {
		s.api.createTarget(t, fmt.Sprintf("load-%d", j), "production")
	}
	setup := time.Now()
	nModels := (n + targets - 1) / targets
	type job struct{ model, target string }
	jobs := make([]job, 0, n)
	for i := 0; i < nModels; i++ {
		m := fmt.Sprintf("load-%04d", i)
		// Registered one by one through the API: setting up is not what is measured.
		s.api.must(t, http.StatusCreated, "POST", "/v1/models", "alice",
			map[string]any{"name": m, "owner": "ml-" + team + "@example.com", "team": team, "risk_tier": modelplane.RiskMedium}, nil)
		s.api.must(t, http.StatusCreated, "POST", "/v1/models/"+m+"/versions", "alice",
			map[string]any{"version": "v1", "artifact_uri": "s3://models/" + m + "/v1", "metrics": map[string]float64{"auc": 0.91}}, nil)
		for j := 0; j < targets && len(jobs) < n; j++ {
			jobs = append(jobs, job{m, fmt.Sprintf("load-%d", j)})
		}
	}
	t.Logf("store %s; %d promotions of %d models to %d targets from %d clients (models registered in %s)",
		s.dbKind, n, nModels, targets, clients, time.Since(setup).Round(time.Millisecond))

	// Submit.
	ids := make([]string, n)
	var failures []string
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var retried atomic.Int64
	submit := func(j job, key string) string {
		body := map[string]any{"model": j.model, "version": "v1", "target": j.target,
			"strategy": map[string]any{"type": modelplane.StrategyDirect, "monitor_window": "1s"}}
		var last string
		for attempt := 0; attempt < 5; attempt++ {
			if attempt > 0 {
				retried.Add(1)
				time.Sleep(time.Duration(attempt) * 200 * time.Millisecond) // the client's backoff
			}
			r, err := s.api.call("POST", "/v1/promotions", "alice", body, "Idempotency-Key", key)
			if err != nil {
				last = err.Error()
				continue
			}
			if r.status >= 500 {
				last = r.String()
				continue
			}
			var acc struct{ ID string }
			if r.status != http.StatusAccepted || r.decode(&acc) != nil || acc.ID == "" {
				fail("%s → %s: %s", j.model, j.target, r)
				return ""
			}
			return acc.ID
		}
		fail("%s → %s: still failing after 5 attempts: %s", j.model, j.target, last)
		return ""
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				j := jobs[i]
				key := "load/" + j.model + "/" + j.target
				if i%10 != 0 {
					ids[i] = submit(j, key)
					continue
				}
				// A client that resends while its first request is in flight.
				var dup string
				var dw sync.WaitGroup
				dw.Add(1)
				go func() { defer dw.Done(); dup = submit(j, key) }()
				ids[i] = submit(j, key)
				dw.Wait()
				if dup != ids[i] {
					fail("%s → %s: the same Idempotency-Key gave promotions %q and %q", j.model, j.target, ids[i], dup)
				}
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(began)
	if len(failures) > 0 {
		t.Fatalf("%d of %d submissions failed, e.g.:\n%s", len(failures), n, strings.Join(failures[:min(10, len(failures))], "\n"))
	}
	t.Logf("submitted %d promotions (+%d duplicates, %d resent after a 5xx or a lost answer) in %s: %.0f/s",
		n, (n+9)/10, retried.Load(), submitted.Round(time.Millisecond), float64(n)/submitted.Seconds())

	all := func() []modelplane.Promotion {
		var out []modelplane.Promotion
		for i := 0; i < nModels; i++ {
			ps, err := s.store.ListPromotions(ctx, store.PromotionFilter{Model: fmt.Sprintf("load-%04d", i), Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ps...)
		}
		return out
	}
	// Exactly one promotion per model and target; those the API could not
	// start must not run behind its back.
	stored := all()
	if len(stored) != n {
		t.Fatalf("%d promotions stored, want %d (one per model and target)", len(stored), n)
	}
	unstarted := map[string]bool{}
	var ghosts []string
	for _, p := range stored {
		if p.Status != modelplane.StatusFailed || !strings.Contains(p.Reason, notStarted) {
			continue
		}
		unstarted[p.ID] = true
		d, err := s.temporal.DescribeWorkflowExecution(ctx, p.WorkflowID, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			t.Fatal(err)
		case d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			ghosts = append(ghosts, p.ID)
		}
	}
	if len(ghosts) > 0 {
		t.Errorf("%d promotions are recorded as failed (%q) while their workflows run, e.g. %v", len(ghosts), notStarted, ghosts[:min(5, len(ghosts))])
	}
	if len(unstarted) > 0 {
		t.Logf("%d promotions could not be started (the API answered 5xx; the retry returned the failed promotion)", len(unstarted))
	}

	// Wait until every started promotion waits for approval.
	count := func(pred func(modelplane.Promotion) bool) (int, string) {
		k, other := 0, ""
		for _, p := range all() {
			if pred(p) {
				k++
			} else if other == "" {
				other = fmt.Sprintf("%s %s/%s %s", p.ID, p.Stage, p.Status, p.Reason)
			}
		}
		return k, other
	}
	// Each check reads every promotion: poll slowly, not to load the system measured.
	eventuallyEvery(t, "every promotion at awaiting_approval", 20*time.Minute, 2*time.Second, func() (bool, string) {
		k, other := count(func(p modelplane.Promotion) bool {
			return unstarted[p.ID] || p.Stage == modelplane.StageAwaitingApproval
		})
		return k == n, fmt.Sprintf("%d of %d; e.g. %s", k, n, other)
	})
	t.Logf("all %d at awaiting_approval %s after the first submission", n-len(unstarted), time.Since(began).Round(time.Millisecond))

	// 5% approved, 5% rejected (each batch concurrently).
	var approve, reject []string
	want := map[string]string{}
	for i, id := range ids {
		if unstarted[id] {
			continue
		}
		switch i % 20 {
		case 1:
			approve, want[id] = append(approve, id), modelplane.StatusSucceeded
		case 2:
			reject, want[id] = append(reject, id), modelplane.StatusRejected
		}
	}
	s.api.votes(t, approve, "bob", "approve")
	s.api.votes(t, reject, "carol", "reject")
	settled := func(p modelplane.Promotion) bool {
		if w, ok := want[p.ID]; ok {
			return p.Status == w
		}
		return unstarted[p.ID] || (p.Status == modelplane.StatusRunning && p.Stage == modelplane.StageAwaitingApproval)
	}
	eventuallyEvery(t, "votes to take effect", 10*time.Minute, 2*time.Second, func() (bool, string) {
		k, other := count(settled)
		return k == n, fmt.Sprintf("%d of %d as expected; e.g. %s", k, n, other)
	})
	t.Logf("votes settled %s after the first submission", time.Since(began).Round(time.Millisecond))

	// The audit against the promotions.
	var buf bytes.Buffer
	if _, err := s.store.ExportAudit(ctx, &buf, store.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	perPromotion := map[string]map[modelplane.AuditAction]int{} // promotion → action → records
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	records := 0
	for sc.Scan() {
		var r modelplane.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		records++
		if r.PromotionID == "" {
			continue
		}
		if perPromotion[r.PromotionID] == nil {
			perPromotion[r.PromotionID] = map[modelplane.AuditAction]int{}
		}
		perPromotion[r.PromotionID][r.Action]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var transitions, stageRecords, mismatched int
	for _, p := range all() {
		a := perPromotion[p.ID]
		transitions += len(p.History)
		stageRecords += a[modelplane.AuditStage]
		requested, finished := 1, map[bool]int{true: 1}[modelplane.Terminal(p.Status)]
		if unstarted[p.ID] {
			// No workflow: the API's failure answer is all there is.
			requested, finished = 0, 0
		}
		if a[modelplane.AuditStage] != len(p.History) || a[modelplane.AuditPromotionRequested] != requested || a[modelplane.AuditVote] != len(p.Approvals) || a[modelplane.AuditFinished] != finished {
			mismatched++
			if mismatched <= 5 {
				t.Errorf("promotion %s (%s): audit %v; history %d entries, %d votes, want requested %d finished %d",
					p.ID, p.Status, a, len(p.History), len(p.Approvals), requested, finished)
			}
		}
	}
	if mismatched > 0 || stageRecords != transitions {
		t.Fatalf("%d promotions disagree with their audit; %d stage records for %d transitions", mismatched, stageRecords, transitions)
	}
	brk, verified, err := s.store.VerifyAudit(ctx)
	if err != nil || brk != nil || verified < records {
		t.Fatalf("audit chain: break %+v after %d of %d records (%v)", brk, verified, records, err)
	}
	if verified > records {
		// Appended between the export and the check: name them, so that a
		// late record of a kind counted above cannot hide here.
		buf.Reset()
		if _, err := s.store.ExportAudit(ctx, &buf, store.AuditFilter{}); err != nil {
			t.Fatal(err)
		}
		late := map[modelplane.AuditAction]int{}
		sc := bufio.NewScanner(&buf)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for i := 0; sc.Scan(); i++ {
			if i < records {
				continue
			}
			var r modelplane.AuditRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			late[r.Action]++
		}
		t.Logf("%d audit records appended after the count: %v", verified-records, late)
		for _, a := range []modelplane.AuditAction{modelplane.AuditStage, modelplane.AuditPromotionRequested, modelplane.AuditVote, modelplane.AuditFinished} {
			if late[a] > 0 {
				t.Errorf("%d %q records appended after every promotion had settled", late[a], a)
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d transitions = %d stage audit records; %d audit records in an intact chain", transitions, stageRecords, records)
	t.Logf("test process (API, worker, store; not Temporal): peak RSS %s, Go heap in use %d MiB, CPU %s over %s wall",
		peakRSS(), ms.HeapInuse>>20, cpuTime(), time.Since(began).Round(time.Second))
	if s.temporald != nil {
		t.Logf("temporald: %s", s.temporald.resources())
	}
}

// peakRSS is the process's high-water resident set (Linux), or "n/a".
func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}
