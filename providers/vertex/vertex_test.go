package vertex_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/vertex"
	"github.com/modelplane/modelplane/providers/vertex/vertextest"
	"google.golang.org/grpc/codes"
)

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	got := modelplane.CapabilitiesOf(e.p)
	if got != (modelplane.Capabilities{Shadow: false, Native: false, Pipelines: true}) {
		t.Fatalf("capabilities = %+v", got)
	}
	_, err := e.p.StartShadow(ctx, e.t, model, modelplane.Shadow{Version: "v1", Percent: 10}, "s")
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "no shadow") {
		t.Fatalf("StartShadow = %v, want ErrInvalid saying there is no shadow traffic", err)
	}
}

func TestUploadIsPolledByNameAndReused(t *testing.T) {
	e := newEnv(t)
	e.s.SetPollsToFinish(3)
	op, err := e.p.RegisterVersion(ctx, e.t, modelplane.Version{Model: model, Version: "v1.0", ArtifactURI: "gs://m/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if !op.Pending() || !strings.Contains(op.ID, "/operations/") {
		t.Fatalf("op = %+v, want the upload operation's name", op)
	}
	if st, polls := e.settle(t, op); st.Failed || polls != 3 {
		t.Fatalf("upload: status %+v after %d polls, want done after 3", st, polls)
	}
	if n := e.s.Calls("GetOperation"); n != 3 {
		t.Fatalf("GetOperation calls = %d, want one per Poll (3)", n)
	}
	// Registering again finds the version: no second upload.
	op, err = e.p.RegisterVersion(ctx, e.t, modelplane.Version{Model: model, Version: "v1.0", ArtifactURI: "gs://m/v1"})
	if err != nil || op.Pending() {
		t.Fatalf("second RegisterVersion = %+v, %v; want the zero Op", op, err)
	}
	e.register(t, "v2")
	if n := e.s.Calls("UploadModel"); n != 2 {
		t.Fatalf("UploadModel calls = %d, want 2", n)
	}
	// Version numbers 1, 2 under one model; the first holds "default".
	v1, v2 := e.versionName(t, "v1.0"), e.versionName(t, "v2")
	if !strings.HasSuffix(v1, "@1") || !strings.HasSuffix(v2, "@2") || strings.Split(v1, "@")[0] != strings.Split(v2, "@")[0] {
		t.Fatalf("versions = %s, %s; want @1 and @2 of one model", v1, v2)
	}
	if got := e.s.Aliases(v1); !slices.Equal(got, []string{"default"}) {
		t.Fatalf("aliases of v1 = %v, want [default]", got)
	}
	if got := e.state(t).Versions; !slices.Equal(got, []string{"v1.0", "v2"}) {
		t.Fatalf("versions = %v", got)
	}
}

func TestRegisterRetriedWhileFirstUploadRuns(t *testing.T) {
	e := newEnv(t)
	e.s.LoseNextReply("UploadModel", 1)
	v := modelplane.Version{Model: model, Version: "v1", ArtifactURI: "gs://m/v1"}
	if _, err := e.p.RegisterVersion(ctx, e.t, v); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("lost reply: err = %v, want a retryable error", err)
	}
	// The retry sees the model id taken while the upload runs: retry later, never upload again.
	if _, err := e.p.RegisterVersion(ctx, e.t, v); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("retry during the upload: err = %v, want a retryable error", err)
	}
	if err := e.s.FinishAll(); err != nil {
		t.Fatal(err)
	}
	op, err := e.p.RegisterVersion(ctx, e.t, v)
	if err != nil || op.Pending() {
		t.Fatalf("retry after the upload: %+v, %v; want the zero Op", op, err)
	}
	if n := len(e.s.ModelVersions(strings.Split(e.versionName(t, "v1"), "@")[0])); n != 1 {
		t.Fatalf("%d versions uploaded, want 1", n)
	}
}

func TestFailedOperationIsReportedFailed(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1")
	e.s.FailNextOperation("DeployModel", "Machine type n1-standard-2 is out of quota in us-central1")
	op, err := e.p.SetTraffic(ctx, e.t, model, modelplane.TrafficSplit{"v1": 100}, "m1")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.settle(t, op)
	if !st.Done || !st.Failed || !strings.Contains(st.Reason, "out of quota") {
		t.Fatalf("status = %+v, want Failed with Vertex's message", st)
	}
	if got := e.state(t).Traffic; len(got) != 0 {
		t.Fatalf("traffic after a failed deployment = %s, want none", got)
	}
	// The workflow's next attempt (a new mutation id) deploys.
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m2")
	if got := e.state(t).Traffic.String(); got != "v1=100" {
		t.Fatalf("traffic = %s", got)
	}
}

func TestDeployRetriedAfterLostReplyDeploysOnce(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	e.s.LoseNextReply("DeployModel", 1)
	split := modelplane.TrafficSplit{"v1": 90, "v2": 10}
	if _, err := e.p.SetTraffic(ctx, e.t, model, split, "m2"); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("lost reply: err = %v, want a retryable error", err)
	}
	// Temporal retries while the deployment runs: refused as a duplicate, retryable.
	if _, err := e.p.SetTraffic(ctx, e.t, model, split, "m2"); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("retry during the deployment: err = %v, want a retryable error", err)
	}
	if err := e.s.FinishAll(); err != nil {
		t.Fatal(err)
	}
	e.setTraffic(t, split, "m2")
	if n := e.s.Calls("DeployModel"); n != 3 { // m1, m2 (lost), m2 retry (refused)
		t.Fatalf("DeployModel calls = %d, want 3", n)
	}
	ep := e.s.Endpoint(e.s.Endpoints()[0])
	if n := len(ep.GetDeployedModels()); n != 2 {
		t.Fatalf("%d deployed models, want 2 (v2 deployed once)", n)
	}
	if got := e.state(t).Traffic.String(); got != "v1=90,v2=10" {
		t.Fatalf("traffic = %s", got)
	}
	// Later steps are synchronous UpdateEndpoint calls: the zero Op.
	op, err := e.p.SetTraffic(ctx, e.t, model, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "m3")
	if err != nil || op.Pending() {
		t.Fatalf("weight step = %+v, %v; want the zero Op", op, err)
	}
	if got := e.state(t).Traffic.String(); got != "v1=50,v2=50" {
		t.Fatalf("traffic = %s", got)
	}
}

func TestSplitValidation(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2", "v3")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m1")
	before := e.s.Calls("UpdateEndpoint")
	for name, split := range map[string]modelplane.TrafficSplit{
		"sum 90":       {"v1": 80, "v2": 10},
		"unregistered": {"v1": 50, "v7": 50},
		"two deploys":  {"v1": 50, "v2": 25, "v3": 25},
	} {
		_, err := e.p.SetTraffic(ctx, e.t, model, split, "bad-"+name)
		if !errors.Is(err, modelplane.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if n := e.s.Calls("UpdateEndpoint") - before; n != 0 {
		t.Fatalf("%d UpdateEndpoint calls for refused splits", n)
	}
	// Vertex's own refusal (InvalidArgument) is permanent too, and names the endpoint.
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m2")
	e.s.FailNext("UpdateEndpoint", codes.InvalidArgument, 1)
	_, err := e.p.SetTraffic(ctx, e.t, model, modelplane.TrafficSplit{"v1": 50, "v2": 50}, "m3")
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "endpoints/") {
		t.Fatalf("InvalidArgument from Vertex: err = %v, want ErrInvalid naming the endpoint", err)
	}
}

func TestRetireRefusesServingVersion(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m0")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 80, "v2": 20}, "m1")
	_, err := e.p.Retire(ctx, e.t, model, "v2")
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "20%") {
		t.Fatalf("Retire(serving) = %v, want ErrInvalid with its share", err)
	}
	if n := e.s.Calls("UndeployModel"); n != 0 {
		t.Fatalf("UndeployModel called %d times for a serving version", n)
	}
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m2")
	op, err := e.p.Retire(ctx, e.t, model, "v2")
	if err != nil || !op.Pending() {
		t.Fatalf("Retire(idle) = %+v, %v; want the undeploy operation", op, err)
	}
	e.settle(t, op)
	st := e.state(t)
	if !slices.Equal(st.Versions, []string{"v1"}) || st.Traffic.String() != "v1=100" {
		t.Fatalf("state after retire = %+v", st)
	}
	// Retiring again is a no-op.
	if op, err := e.p.Retire(ctx, e.t, model, "v2"); err != nil || op.Pending() {
		t.Fatalf("second Retire = %+v, %v", op, err)
	}
}

func TestAliasesFollowTheLifecycle(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2")
	mark := func(version, stage, previous string) {
		t.Helper()
		err := e.p.MarkVersion(ctx, e.t, modelplane.StageChange{Model: model, Version: version, Stage: stage, Previous: previous, PromotionID: "p-" + version})
		if err != nil {
			t.Fatalf("MarkVersion(%s, %s): %v", version, stage, err)
		}
	}
	v1, v2 := e.versionName(t, "v1"), e.versionName(t, "v2")
	aliases := func() string {
		return strings.Join(e.s.Aliases(v1), ",") + " | " + strings.Join(e.s.Aliases(v2), ",")
	}
	mark("v1", modelplane.VersionChampion, "")
	mark("v2", modelplane.VersionApproved, "")
	mark("v2", modelplane.VersionChallenger, "")
	mark("v2", modelplane.VersionChallenger, "") // idempotent
	if got := aliases(); got != "champion,default | challenger" {
		t.Fatalf("during the canary: %s", got)
	}
	mark("v2", modelplane.VersionChampion, "v1")
	if got := aliases(); got != "default | champion" {
		t.Fatalf("after promotion: %s (the old champion must lose the alias)", got)
	}
	mark("v2", modelplane.VersionRolledBack, "v1")
	if got := aliases(); got != "champion,default | " {
		t.Fatalf("after rollback: %s", got)
	}
	calls := e.s.Calls("MergeVersionAliases")
	mark("v2", modelplane.VersionRolledBack, "v1")
	if n := e.s.Calls("MergeVersionAliases"); n != calls {
		t.Fatalf("repeating a mark sent %d alias merges", n-calls)
	}
	for _, m := range e.s.ModelVersions(strings.Split(v2, "@")[0]) {
		if m.GetVersionId() == "2" && m.GetLabels()["modelplane-stage"] != "rolled_back" {
			t.Fatalf("v2 labels = %v, want modelplane-stage=rolled_back", m.GetLabels())
		}
	}
	if err := e.p.MarkVersion(ctx, e.t, modelplane.StageChange{Model: model, Version: "v9", Stage: modelplane.VersionChampion}); !errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("MarkVersion(unknown) = %v, want ErrInvalid", err)
	}
}

func TestTransientErrorsAreRetryable(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1")
	for _, c := range []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.DeadlineExceeded, codes.Aborted} {
		e.s.FailNext("GetEndpoint", c, 1)
		_, err := e.p.SetTraffic(ctx, e.t, model, modelplane.TrafficSplit{"v1": 100}, "m1")
		if err == nil || errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), c.String()) {
			t.Errorf("%s: err = %v, want a retryable error naming the code", c, err)
		}
	}
	e.s.FailNext("GetOperation", codes.Unavailable, 1)
	op, err := e.p.SetTraffic(ctx, e.t, model, modelplane.TrafficSplit{"v1": 100}, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Poll(ctx, e.t, op); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("Poll during an outage = %v, want a retryable error", err)
	}
	e.settle(t, op)
	if got := e.state(t).Traffic.String(); got != "v1=100" {
		t.Fatalf("traffic = %s", got)
	}
}

func TestMutationRingIsBounded(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "first")
	for i := range vertex.RingSize + 5 {
		e.setTraffic(t, modelplane.TrafficSplit{"v1": 100 - i%50, "v2": i % 50}, "step-"+string(rune('a'+i)))
	}
	labels := e.s.Endpoint(e.s.Endpoints()[0]).GetLabels()
	entries := 0
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if strings.HasPrefix(k, "modelplane-mut") {
			entries += len(strings.Split(labels[k], "_"))
		}
	}
	if entries != vertex.RingSize {
		t.Fatalf("ring holds %d ids, want %d (labels %v)", entries, vertex.RingSize, labels)
	}
	// A recent id replayed late is still refused.
	last := "step-" + string(rune('a'+vertex.RingSize+4))
	before := e.state(t).Traffic.String()
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, last)
	if got := e.state(t).Traffic.String(); got != before {
		t.Fatalf("replay of %s moved traffic %s → %s", last, before, got)
	}
}

func TestHealthFromMonitoring(t *testing.T) {
	e := newEnv(t)
	e.register(t, "v1", "v2")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 100}, "m0")
	e.setTraffic(t, modelplane.TrafficSplit{"v1": 90, "v2": 10}, "m1")
	e.s.SetHealth(model, "v2", vertextest.Figures{Requests: 400, Errors5xx: 10, LatencyP99Ms: 230})
	h, err := e.p.Health(ctx, e.t, model, "v2", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if h.NoData || h.Requests != 400 || h.ErrorRate != 0.025 || h.LatencyP99Ms != 230 {
		t.Fatalf("health = %+v, want 400 requests, 2.5%% errors, p99 230 ms", h)
	}
	// v1 serves but Monitoring has no points for it: no data, never a pass.
	if h, err := e.p.Health(ctx, e.t, model, "v1", time.Minute); err != nil || !h.NoData {
		t.Fatalf("Health(v1) = %+v, %v; want NoData", h, err)
	}
	e.s.FailNext("ListTimeSeries", codes.Unavailable, 1)
	if _, err := e.p.Health(ctx, e.t, model, "v2", time.Minute); err == nil || errors.Is(err, modelplane.ErrInvalid) {
		t.Fatalf("Health during a Monitoring outage = %v, want a retryable error", err)
	}
}

func TestRetrainIsIdempotent(t *testing.T) {
	e := newEnv(t)
	req := modelplane.RetrainRequest{Model: model, Version: "v3", Reason: "drift 0.4 on amount", RequestID: "promo-7/retrain-1"}
	a, err := e.p.StartRetrain(ctx, e.t, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.p.StartRetrain(ctx, e.t, req)
	if err != nil || a != b {
		t.Fatalf("retried StartRetrain = %q, %v; want %q", b, err, a)
	}
	jobs := e.s.PipelineJobs()
	if len(jobs) != 1 || e.s.Calls("CreatePipelineJob") != 2 {
		t.Fatalf("%d jobs after %d calls, want 1 after 2", len(jobs), e.s.Calls("CreatePipelineJob"))
	}
	job := jobs[0]
	params := job.GetRuntimeConfig().GetParameterValues()
	if job.GetName() != a || job.GetTemplateUri() != e.t.Config[vertex.KeyPipelineTemplate] ||
		params["model"].GetStringValue() != model || params["version"].GetStringValue() != "v3" || params["reason"].GetStringValue() != req.Reason {
		t.Fatalf("job = %v", job)
	}
	req.RequestID = "promo-8/retrain-1"
	if c, err := e.p.StartRetrain(ctx, e.t, req); err != nil || c == a {
		t.Fatalf("another request = %q, %v; want a new job", c, err)
	}
	delete(e.t.Config, vertex.KeyPipelineTemplate)
	_, err = e.p.StartRetrain(ctx, e.t, req)
	if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "config.pipeline_template") {
		t.Fatalf("no template: err = %v, want ErrInvalid naming config.pipeline_template", err)
	}
}

func TestConfigValidationNamesKeys(t *testing.T) {
	e := newEnv(t)
	for key, value := range map[string]string{
		vertex.KeyProject:      "",
		vertex.KeyLocation:     "US Central",
		vertex.KeyEndpoint:     "Bad_Endpoint",
		vertex.KeyModelID:      "9lives",
		vertex.KeyMinReplicas:  "zero",
		vertex.KeyMaxReplicas:  "0",
		vertex.KeyPipelineRoot: "s3://bucket",
		vertex.KeyServingImage: "",
	} {
		target := e.t
		target.Config = maps.Clone(e.t.Config)
		target.Config[key] = value
		_, err := e.p.RegisterVersion(ctx, target, modelplane.Version{Model: model, Version: "v1", ArtifactURI: "gs://m/v1"})
		if !errors.Is(err, modelplane.ErrInvalid) || !strings.Contains(err.Error(), "config."+key) {
			t.Errorf("%s=%q: err = %v, want ErrInvalid naming config.%s", key, value, err, key)
		}
	}
	if n := e.s.Calls("UploadModel") + e.s.Calls("ListModelVersions"); n != 0 {
		t.Fatalf("%d calls reached Vertex with an invalid config", n)
	}
}
