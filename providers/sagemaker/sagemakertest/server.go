// Package sagemakertest is an in-process stand-in for the SageMaker and
// CloudWatch APIs, spoken through the real AWS SDK: AWS JSON 1.1 for
// SageMaker, Smithy RPC v2 CBOR for CloudWatch GetMetricData. It keeps the
// behaviour a rollout depends on: endpoint statuses that move over
// successive DescribeEndpoint calls, immutable endpoint configs, the
// service's validation errors, inference experiment lifecycles, alarm-driven
// rollbacks. Knobs inject faults, lost replies and metric figures, and count
// the calls that changed something.
package sagemakertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Region and Account are what the stand-in's ARNs name.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// Fault is an error the stand-in can answer with instead of doing the call.
type Fault string

const (
	// Throttle answers 400 ThrottlingException.
	Throttle Fault = "ThrottlingException"
	// Internal answers 500 InternalFailure.
	Internal Fault = "InternalFailure"
	// Unavailable answers 503 ServiceUnavailable.
	Unavailable Fault = "ServiceUnavailable"
)

// Metrics are one variant's CloudWatch figures over any window asked for.
type Metrics struct {
	Invocations  float64
	Errors5XX    float64
	LatencyP99Ms float64
}

// DefaultMetrics are reported for a variant that receives requests (live
// weight or shadow sampling) until SetMetrics says otherwise.
var DefaultMetrics = Metrics{Invocations: 6000, Errors5XX: 0, LatencyP99Ms: 42}

// Execution is one pipeline execution started.
type Execution struct {
	ARN, Pipeline, Token string
	Parameters           map[string]string
}

// Server is the stand-in. Its zero value is not usable: call NewServer.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	settle   int
	faults   map[string][]Fault
	lose     map[string]int
	loseAt   map[string]int
	requests map[string]int
	calls    map[string]int

	groups      map[string]*group
	packages    map[string]*modelPackage // by ARN
	tokens      map[string]string        // client token → package ARN
	models      map[string]*model
	configs     map[string]*endpointConfig
	endpoints   map[string]*endpoint
	experiments map[string]*experiment
	executions  []Execution
	metrics     map[string]Metrics // endpoint/variant
	firing      map[string]string  // alarm name → reason, fires during a native update naming it
	failRB      bool
}

// NewServer starts a stand-in; it is closed when the test ends if t is
// given through Provider, otherwise call Close.
func NewServer() *Server {
	s := &Server{
		settle:      2,
		faults:      map[string][]Fault{},
		lose:        map[string]int{},
		loseAt:      map[string]int{},
		requests:    map[string]int{},
		calls:       map[string]int{},
		groups:      map[string]*group{},
		packages:    map[string]*modelPackage{},
		tokens:      map[string]string{},
		models:      map[string]*model{},
		configs:     map[string]*endpointConfig{},
		endpoints:   map[string]*endpoint{},
		experiments: map[string]*experiment{},
		metrics:     map[string]Metrics{},
		firing:      map[string]string{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SettleAfter sets how many Describe calls an endpoint or experiment change
// takes to finish (default 2; 1 means the next Describe shows it done).
func (s *Server) SettleAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle = max(n, 1)
}

// FailNext makes the next n calls of op ("" = any operation) answer with f.
func (s *Server) FailNext(op string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], f)
	}
}

// LoseReply makes the next n calls of op take effect and then answer 500, as
// if the reply was lost on the way back.
func (s *Server) LoseReply(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[op] += n
}

// LoseReplyOn makes the nth next call of op (1 = the next one) take effect
// and answer 500: for operations a mutation makes more than once.
func (s *Server) LoseReplyOn(op string, nth int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseAt[op] = nth
}

// Calls counts the calls of op that took effect (lost replies included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Requests counts every request for op, faults included.
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// SetMetrics sets a variant's CloudWatch figures.
func (s *Server) SetMetrics(endpoint, variant string, m Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics[endpoint+"/"+variant] = m
}

// FireAlarm makes the CloudWatch alarm fire during any native (blue/green)
// update that lists it for auto-rollback: the endpoint goes RollingBack and
// then InService on its old config with a FailureReason.
func (s *Server) FireAlarm(alarm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firing[alarm] = fmt.Sprintf("CloudWatch alarm %s went into ALARM state", alarm)
}

// FailRollbacks makes auto-rollbacks end in UpdateRollbackFailed.
func (s *Server) FailRollbacks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRB = true
}

// Executions lists the pipeline executions started.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Execution(nil), s.executions...)
}

// EndpointStatus reports an endpoint's status and config without moving it
// along (unlike DescribeEndpoint); "" if absent.
func (s *Server) EndpointStatus(name string) (status, config string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.endpoints[name]; e != nil {
		return e.Status, e.Config
	}
	return "", ""
}

// apiError is an error answer in the service's words.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) *apiError {
	return &apiError{400, "ValidationException", fmt.Sprintf(format, args...)}
}

func notFound(kind, name string) *apiError {
	return validation("Could not find %s %q.", kind, name)
}

func (s *Server) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", Region, Account, kind, strings.ToLower(name))
}

const cborPrefix = "/service/GraniteServiceVersion20100801/operation/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if op, ok := strings.CutPrefix(r.URL.Path, cborPrefix); ok {
		s.serveCBOR(w, op, body)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "SageMaker.")
	if !ok {
		writeJSONError(w, &apiError{400, "UnknownOperationException", "unknown target " + target})
		return
	}
	out, err := s.call(op, func() (any, *apiError) { return s.dispatch(op, body) })
	if err != nil {
		writeJSONError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if out == nil {
		out = struct{}{}
	}
	json.NewEncoder(w).Encode(out)
}

// call applies fault injection and counting around one operation.
func (s *Server) call(op string, fn func() (any, *apiError)) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[op]++
	for _, key := range []string{op, ""} {
		if q := s.faults[key]; len(q) > 0 {
			s.faults[key] = q[1:]
			return nil, faultError(q[0])
		}
	}
	out, err := fn()
	if err != nil {
		return nil, err
	}
	s.calls[op]++
	if n := s.loseAt[op]; n > 0 {
		s.loseAt[op] = n - 1
		if n == 1 {
			return nil, &apiError{500, "InternalFailure", "the reply was lost (injected)"}
		}
	}
	if s.lose[op] > 0 {
		s.lose[op]--
		return nil, &apiError{500, "InternalFailure", "the reply was lost (injected)"}
	}
	return out, nil
}

func faultError(f Fault) *apiError {
	switch f {
	case Throttle:
		return &apiError{400, "ThrottlingException", "Rate exceeded"}
	case Unavailable:
		return &apiError{503, "ServiceUnavailable", "Service is unavailable"}
	}
	return &apiError{500, "InternalFailure", "An internal error occurred"}
}

func writeJSONError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func decode[T any](body []byte) (T, *apiError) {
	var v T
	if len(body) > 0 {
		if err := json.Unmarshal(body, &v); err != nil {
			return v, &apiError{400, "SerializationException", err.Error()}
		}
	}
	return v, nil
}

func (s *Server) dispatch(op string, body []byte) (any, *apiError) {
	switch op {
	case "CreateModelPackageGroup":
		return handle(body, s.createGroup)
	case "CreateModelPackage":
		return handle(body, s.createPackage)
	case "ListModelPackages":
		return handle(body, s.listPackages)
	case "DescribeModelPackage":
		return handle(body, s.describePackage)
	case "UpdateModelPackage":
		return handle(body, s.updatePackage)
	case "CreateModel":
		return handle(body, s.createModel)
	case "DescribeModel":
		return handle(body, s.describeModel)
	case "DeleteModel":
		return handle(body, s.deleteModel)
	case "ListModels":
		return handle(body, s.listModels)
	case "CreateEndpointConfig":
		return handle(body, s.createConfig)
	case "DescribeEndpointConfig":
		return handle(body, s.describeConfig)
	case "CreateEndpoint":
		return handle(body, s.createEndpoint)
	case "DescribeEndpoint":
		return handle(body, s.describeEndpoint)
	case "UpdateEndpoint":
		return handle(body, s.updateEndpoint)
	case "UpdateEndpointWeightsAndCapacities":
		return handle(body, s.updateWeights)
	case "AddTags":
		return handle(body, s.addTags)
	case "ListTags":
		return handle(body, s.listTags)
	case "DeleteTags":
		return handle(body, s.deleteTags)
	case "CreateInferenceExperiment":
		return handle(body, s.createExperiment)
	case "DescribeInferenceExperiment":
		return handle(body, s.describeExperiment)
	case "StopInferenceExperiment":
		return handle(body, s.stopExperiment)
	case "StartPipelineExecution":
		return handle(body, s.startPipeline)
	}
	return nil, &apiError{400, "UnknownOperationException", "the stand-in does not implement " + op}
}

func handle[T any](body []byte, fn func(T) (any, *apiError)) (any, *apiError) {
	in, err := decode[T](body)
	if err != nil {
		return nil, err
	}
	return fn(in)
}
