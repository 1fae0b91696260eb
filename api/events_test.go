package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/internal/testkit"
	"github.com/modelplane/modelplane/sinks"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func natsURL(t *testing.T) string {
	if u := os.Getenv("MODELPLANE_TEST_NATS_URL"); u != "" {
		return u
	}
	out, err := exec.Command("../hack/ensure-nats.sh").Output()
	if err != nil {
		t.Fatalf("no NATS server: %v", err)
	}
	return strings.TrimSpace(string(out))
}

type ceReceiver struct {
	mu       sync.Mutex
	failures int // answer 503 this many times first
	ids      map[string]int
	types    map[string]bool
	bad      int
}

func (r *ceReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	if testkit.Verify(req.Header.Get(sinks.SignatureHeader), body, []byte("events-secret")) != nil {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct{ ID, Type, SpecVersion string }
	_ = json.Unmarshal(body, &ev)
	r.ids[ev.ID]++
	r.types[ev.Type] = true
	w.WriteHeader(http.StatusAccepted)
}

func TestLifecycleEventsReachNATSAndASignedWebhook(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false)
	h.seed("low")
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	stream, prefix := "MPTEST_"+suffix, "mptest"+suffix+".events"
	ns, err := sinks.NewNATS(ctx, natsURL(t), stream, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	recv := &ceReceiver{failures: 2, ids: map[string]int{}, types: map[string]bool{}}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	h.kit.Activities.Sinks = []sinks.Sink{&sinks.HTTP{URL: hook.URL, Secret: []byte("events-secret")}, ns}
	h.startWorker()

	id := h.promote("alice", canaryBody("v2", []int{10, 100}, "30s"))
	h.waitFor("first step", 60*time.Second, func() bool { return h.kit.Traffic(t) == "v1=90,v2=10" })
	h.must(h.call("POST", "/v1/signals/drift", "alice", map[string]any{"model": "churn", "target": "prod", "metric": "psi", "score": 0.5}), 202)
	h.waitStatus(id, modelplane.StatusRolledBack, 30*time.Second)

	// A consumer on the stream sees the lifecycle, each event once (JetStream drops retried duplicates by id).
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	types := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(types) < 5 || !hasType(types, modelplane.EventRetrainRequested) || !hasType(types, modelplane.EventPromotionFinished) {
		if time.Now().After(deadline) {
			t.Fatalf("events on NATS: %v", types)
		}
		msgs, err := cons.Fetch(50, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range msgs.Messages() {
			var ev struct{ ID, Type string }
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Subject(), prefix+".") {
				t.Fatalf("subject %s", m.Subject())
			}
			seen[ev.ID]++
			types[ev.ID] = ev.Type
		}
	}
	for _, want := range []string{modelplane.EventPromotionStarted, modelplane.EventStageChanged, modelplane.EventRolledBack, modelplane.EventRetrainRequested, modelplane.EventPromotionFinished} {
		if !hasType(types, want) {
			t.Errorf("NATS lacks %s", want)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times on the stream", id, n)
		}
	}
	// The webhook failed twice and still receives everything, signed: the activity retries.
	h.waitFor("webhook deliveries", 30*time.Second, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for id := range seen {
			if recv.ids[id] == 0 {
				return false
			}
		}
		return true
	})
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.bad != 0 || !recv.types[modelplane.EventRolledBack] || !recv.types[modelplane.EventRetrainRequested] {
		t.Fatalf("webhook: bad=%d types=%v", recv.bad, recv.types)
	}
}

func hasType(types map[string]string, want string) bool {
	for _, t := range types {
		if t == want {
			return true
		}
	}
	return false
}
