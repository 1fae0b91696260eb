// Package testkit builds the real parts tests share: a store, the simulated
// provider, activities over them, seed data and a webhook sink that checks
// retrain signatures.
package testkit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/activities"
	"github.com/modelplane/modelplane/promotions"
	"github.com/modelplane/modelplane/providers/sim"
	"github.com/modelplane/modelplane/store"
)

// RetrainSecretEnv names the env var holding the test webhook secret.
const RetrainSecretEnv = "MP_TEST_RETRAIN_SECRET"

// RetrainSecret is the test webhook secret.
const RetrainSecret = "s3cr3t-for-tests-only"

// Kit is a store, a simulator and activities over them.
type Kit struct {
	Store      *store.Store
	Sim        *sim.Provider
	Activities *activities.Activities
	Sink       *Sink
}

// OpenStore opens the store at dsn (a SQLite path, ":memory:" or a
// postgres:// URL), closed when the test ends, and the simulator's view of it.
func OpenStore(t testing.TB, dsn string) (*store.Store, *sim.Provider) {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() { checkAuditActions(t, st) })
	sp, err := sim.New(st.DB(), st)
	if err != nil {
		t.Fatal(err)
	}
	return st, sp
}

// New opens a store at path (":memory:" for a throwaway one).
func New(t testing.TB, path string) *Kit {
	t.Helper()
	st, sp := OpenStore(t, path)
	sink := NewSink(t)
	a := &activities.Activities{
		Store:     st,
		Providers: modelplane.ProviderSet{sim.Name: sp},
		Getenv: func(k string) string {
			if k == RetrainSecretEnv {
				return RetrainSecret
			}
			return ""
		},
	}
	a.Promotions = kitPromotions{a}
	return &Kit{Store: st, Sim: sp, Activities: a, Sink: sink}
}

func f(v float64) *float64 { return &v }

// Seed creates model "churn" (tier), target "prod" with thresholds and the retrain sink, and versions.
func (k *Kit) Seed(t testing.TB, tier modelplane.RiskTier, versions ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := k.Store.CreateModel(ctx, modelplane.Model{Name: "churn", Owner: "ml-team@example.com", Team: "growth", RiskTier: tier}); err != nil {
		t.Fatal(err)
	}
	tg := modelplane.Target{Name: "prod", Provider: sim.Name, Environment: "production",
		Analysis:       modelplane.Analysis{Thresholds: modelplane.Thresholds{MaxErrorRate: f(0.05), MaxLatencyP99Ms: f(500), MaxDrift: f(0.3)}},
		Metrics:        modelplane.MetricBounds{Min: map[string]float64{"auc": 0.8}},
		GuardInterval:  modelplane.Duration(5e9),
		RetrainWebhook: k.Sink.URL, RetrainSecretEnv: RetrainSecretEnv}
	if _, err := k.Store.CreateTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		k.AddVersion(t, v, 0.9)
	}
}

// AddVersion stores a version of "churn" with an auc metric.
func (k *Kit) AddVersion(t testing.TB, v string, auc float64) {
	t.Helper()
	if _, err := k.Store.CreateVersion(context.Background(), modelplane.Version{Model: "churn", Version: v, ArtifactURI: "s3://models/churn/" + v, Metrics: map[string]float64{"auc": auc}, CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
}

// Serve makes version v the stable version of churn on prod, as a finished promotion would.
func (k *Kit) Serve(t testing.TB, v, previous string) {
	t.Helper()
	ctx := context.Background()
	tg, _ := k.Store.GetTarget(ctx, "prod")
	for _, ver := range []string{previous, v} {
		if ver == "" {
			continue
		}
		mv, err := k.Store.GetVersion(ctx, "churn", ver)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Sim.RegisterVersion(ctx, tg, mv); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.Sim.SetTraffic(ctx, tg, "churn", modelplane.TrafficSplit{v: 100}, "seed/"+v); err != nil {
		t.Fatal(err)
	}
	if err := k.Store.PutDeployment(ctx, modelplane.Deployment{Model: "churn", Target: "prod", Stable: v, PreviousStable: previous, Traffic: modelplane.TrafficSplit{v: 100}}); err != nil {
		t.Fatal(err)
	}
}

// TrafficMutations counts traffic changes applied to churn on prod.
func (k *Kit) TrafficMutations(t testing.TB) []sim.Mutation {
	t.Helper()
	muts, err := k.Sim.Mutations(context.Background(), "prod", "churn")
	if err != nil {
		t.Fatal(err)
	}
	var out []sim.Mutation
	for _, m := range muts {
		if m.Kind == "traffic" && !strings.HasPrefix(m.ID, "seed/") {
			out = append(out, m)
		}
	}
	return out
}

// Traffic is what the simulator serves for churn on prod.
func (k *Kit) Traffic(t testing.TB) string {
	t.Helper()
	st, err := k.Sim.State(context.Background(), modelplane.Target{Name: "prod"}, "churn")
	if err != nil {
		t.Fatal(err)
	}
	return st.Traffic.String()
}

// Sink is an HTTP server that receives retrain requests and checks their signature.
type Sink struct {
	URL    string
	path   string
	mu     sync.Mutex
	events []activities.RetrainEvent
	bad    []string
}

// NewSink starts a sink for the test's lifetime. Its URL carries a random
// path: tests run beside real Prometheus, Alertmanager and other tests'
// clients, and a port freed by one of them may be handed to this sink; only
// a request to the path we configured is ours to judge.
func NewSink(t testing.TB) *Sink {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := &Sink{path: "/retrain/" + hex.EncodeToString(b)}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + s.path
	return s
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.path || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := Verify(r.Header.Get(activities.SignatureHeader), body, []byte(RetrainSecret)); err != nil {
		s.mu.Lock()
		s.bad = append(s.bad, err.Error())
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev activities.RetrainEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// Events returns the verified events received.
func (s *Sink) Events() []activities.RetrainEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]activities.RetrainEvent(nil), s.events...)
}

// Rejected returns signature failures seen.
func (s *Sink) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// Verify checks a signature header the way a receiver should.
func Verify(header string, body, secret []byte) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return fmt.Errorf("missing signature")
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("bad timestamp")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

// kitPromotions is the promotion service over the kit's activities as they
// are when it is called: tests swap the providers, the MLflow client and the
// Temporal client after New.
type kitPromotions struct{ a *activities.Activities }

func (k kitPromotions) svc() *promotions.Service {
	return &promotions.Service{Store: k.a.Store, Providers: k.a.Providers, Temporal: k.a.Temporal, MLflow: k.a.MLflow}
}

func (k kitPromotions) Resolve(ctx context.Context, r modelplane.PromotionRequest) (modelplane.PromotionRequest, error) {
	return k.svc().Resolve(ctx, r)
}

func (k kitPromotions) Prepare(ctx context.Context, r modelplane.PromotionRequest, by, key string) (modelplane.Promotion, bool, error) {
	return k.svc().Prepare(ctx, r, by, key)
}

func (k kitPromotions) PrepareMCP(ctx context.Context, r modelplane.MCPPromotionRequest, by, key string) (modelplane.Promotion, bool, error) {
	return k.svc().PrepareMCP(ctx, r, by, key)
}

func (k kitPromotions) AutoPromote(ctx context.Context, model, version, alias string) ([]modelplane.Promotion, []string, error) {
	return k.svc().AutoPromote(ctx, model, version, alias)
}

func (k kitPromotions) Start(ctx context.Context, p modelplane.Promotion) error {
	return k.svc().Start(ctx, p)
}

// checkAuditActions fails the test when anything wrote an audit record whose
// action is not one of modelplane.AuditActions: every test that runs on a kit
// store checks the actions the code paths it drove emitted.
func checkAuditActions(t testing.TB, st *store.Store) {
	acts, err := st.AuditActions(context.Background())
	if err != nil {
		return // the test closed the store itself; it read what it needed
	}
	for _, a := range acts {
		if !a.Known() {
			t.Errorf("an audit record has action %q, which is not in modelplane.AuditActions", a)
		}
	}
}
