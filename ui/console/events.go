package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/modelplane/modelplane"
)

// EventSource is the audit trail as the live stream reads it: every
// transition a workflow makes is written there first, under a growing seq.
type EventSource interface {
	AuditSince(ctx context.Context, seq int64, limit int) ([]modelplane.AuditRecord, error)
	AuditHead(ctx context.Context) (int64, error)
}

// event is what a page hears: which promotion changed, not what changed —
// the page reads that through the API, under the viewer's own policy.
type event struct {
	Seq       int64                  `json:"seq"`
	Name      string                 `json:"-"`
	Model     string                 `json:"-"`
	Promotion string                 `json:"promotion,omitempty"`
	Action    modelplane.AuditAction `json:"action"`
}

// ringSize is how many recent events a reconnecting tab can resume from;
// further behind, it is told to reload.
const ringSize = 4096

// hub polls the audit trail once for the whole process and fans new
// records out to every open stream.
type hub struct {
	src   EventSource
	log   *slog.Logger
	mu    sync.Mutex
	ring  []event
	head  int64
	ready bool
	wake  chan struct{} // closed and replaced whenever events arrive
	stop  context.CancelFunc
	done  chan struct{}
	poll  time.Duration
}

func newHub(src EventSource, poll time.Duration, log *slog.Logger) *hub {
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{src: src, log: log, wake: make(chan struct{}), stop: cancel, done: make(chan struct{}), poll: poll}
	go h.run(ctx)
	return h
}

func (h *hub) close() {
	h.stop()
	<-h.done
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.poll)
	defer t.Stop()
	for {
		if err := h.read(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("console live stream: reading the audit trail", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *hub) read(ctx context.Context) error {
	if !h.ready {
		head, err := h.src.AuditHead(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.head, h.ready = head, true
		h.mu.Unlock()
		return nil
	}
	for {
		recs, err := h.src.AuditSince(ctx, h.head, 500)
		if err != nil || len(recs) == 0 {
			return err
		}
		h.mu.Lock()
		for _, r := range recs {
			h.ring = append(h.ring, toEvent(r))
			h.head = r.Seq
		}
		if len(h.ring) > ringSize {
			h.ring = append([]event(nil), h.ring[len(h.ring)-ringSize:]...)
		}
		close(h.wake)
		h.wake = make(chan struct{})
		h.mu.Unlock()
		if len(recs) < 500 {
			return nil
		}
	}
}

func toEvent(r modelplane.AuditRecord) event {
	e := event{Seq: r.Seq, Model: r.Model, Promotion: r.PromotionID, Action: r.Action, Name: "audit"}
	switch {
	case r.Action == modelplane.AuditTraffic:
		e.Name = "traffic"
	case r.PromotionID != "":
		e.Name = "promotion"
	}
	return e
}

// since returns the events after seq, whether seq is too old to resume
// from, and a channel closed when more arrive.
func (h *hub) since(seq int64) (out []event, gap bool, wake <-chan struct{}, head int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) > 0 && seq < h.ring[0].Seq-1 {
		gap = true
	}
	for _, e := range h.ring {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out, gap, h.wake, h.head
}

// events is the page's one Server-Sent Events stream: named events with
// the audit seq as id, so a reconnect resumes with Last-Event-ID; when the
// tab is too far behind, a "reload" event tells it to read afresh.
func (r *req) events() error {
	h := r.c.hub
	if h == nil {
		http.Error(r.w, "live updates are off", http.StatusNotFound)
		return nil
	}
	fl, ok := r.w.(http.Flusher)
	if !ok {
		http.Error(r.w, "streaming unsupported", http.StatusInternalServerError)
		return nil
	}
	hd := r.w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	last := int64(-1)
	// after= is the seq the page was rendered at, so nothing between the
	// render and the connection is missed; Last-Event-ID wins on reconnects.
	if n, err := strconv.ParseInt(r.r.URL.Query().Get("after"), 10, 64); err == nil && n >= 0 {
		last = n
	}
	if v := r.r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			last = n
		}
	}
	_, _, _, head := h.since(0)
	if last < 0 {
		last = head
	}
	r.w.WriteHeader(http.StatusOK)
	fmt.Fprintf(r.w, "retry: 1000\nevent: hello\nid: %d\ndata: {\"seq\":%d}\n\n", last, last)
	fl.Flush()
	see := &sight{r: r, known: map[string]sightEntry{}}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		evs, gap, wake, head := h.since(last)
		if gap {
			fmt.Fprintf(r.w, "event: reload\nid: %d\ndata: {\"seq\":%d}\n\n", head, head)
			fl.Flush()
			last = head
			continue
		}
		for _, e := range evs {
			if !see.may(e.Model) {
				// Someone else's model: the tab learns that something
				// happened (its seq), not what or to which promotion.
				e = event{Seq: e.Seq, Name: "audit"}
			}
			b, _ := json.Marshal(e)
			fmt.Fprintf(r.w, "event: %s\nid: %d\ndata: %s\n\n", e.Name, e.Seq, b)
			last = e.Seq
		}
		if len(evs) > 0 {
			fl.Flush()
		}
		select {
		case <-r.ctx().Done():
			return nil
		case <-wake:
		case <-heartbeat.C:
			fmt.Fprint(r.w, ": ping\n\n")
			fl.Flush()
		}
	}
}

// head is the newest seq the hub has read (0 before the first read).
func (h *hub) current() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// sight remembers, per stream, which models' events the viewer may see:
// those whose audit records the API lets them read, asked once a minute
// per model.
type sight struct {
	r     *req
	known map[string]sightEntry
}

type sightEntry struct {
	ok bool
	at time.Time
}

func (s *sight) may(model string) bool {
	if model == "" {
		return false
	}
	if k, ok := s.known[model]; ok && time.Since(k.at) < time.Minute {
		return k.ok
	}
	err := s.r.call(http.MethodGet, "/v1/audit", url.Values{"model": {model}, "limit": {"1"}}, nil, nil)
	s.known[model] = sightEntry{ok: err == nil, at: time.Now()}
	return err == nil
}
