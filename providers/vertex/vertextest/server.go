// Package vertextest is an in-process stand-in for Vertex AI: the Model,
// Endpoint, Pipeline and long-running Operations gRPC services plus Cloud
// Monitoring's timeSeries.list over HTTP, spoken through the real client
// libraries. Long-running operations finish after a configurable number of
// GetOperation polls (nothing sleeps). Knobs inject faults (status codes,
// lost replies, failed operations), set per-version monitoring figures and
// count calls per method.
//
// Behaviour the real service is not documented to have is marked "assumed"
// where it is modelled; see the provider's README.
package vertextest

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"path"
	"sync"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Figures are what Cloud Monitoring reports for one deployed version.
type Figures struct {
	Requests     int64
	Errors5xx    int64
	LatencyP99Ms float64
}

// Server is a running stand-in. Its zero value is not usable: call Start.
type Server struct {
	// Addr is the gRPC address (host:port) for option.WithEndpoint.
	Addr string
	// MonitoringURL is the base URL of the Cloud Monitoring stand-in.
	MonitoringURL string

	grpc *grpc.Server
	http *httptest.Server
	lis  net.Listener

	mu         sync.Mutex
	polls      int // GetOperation polls before an operation finishes
	models     map[string]*vmodel
	endpoints  map[string]*vendpoint
	ops        map[string]*lro
	jobs       map[string]*aiplatformpb.PipelineJob
	faults     map[string][]codes.Code
	lose       map[string]int
	failOp     map[string]string
	calls      map[string]int
	figures    map[[2]string]Figures      // (model display name, version description)
	deployedAs map[[2]string]deployedFrom // (endpoint id, deployed model id) → model version, kept after undeploy
	seq        int
}

type deployedFrom struct{ displayName, description string }

// Start listens on 127.0.0.1:0 (gRPC and HTTP); operations finish after 2 polls.
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr: lis.Addr().String(), lis: lis, polls: 2,
		models: map[string]*vmodel{}, endpoints: map[string]*vendpoint{}, ops: map[string]*lro{},
		jobs: map[string]*aiplatformpb.PipelineJob{}, faults: map[string][]codes.Code{},
		lose: map[string]int{}, failOp: map[string]string{}, calls: map[string]int{},
		figures: map[[2]string]Figures{}, deployedAs: map[[2]string]deployedFrom{},
	}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	aiplatformpb.RegisterModelServiceServer(s.grpc, &modelService{s: s})
	aiplatformpb.RegisterEndpointServiceServer(s.grpc, &endpointService{s: s})
	aiplatformpb.RegisterPipelineServiceServer(s.grpc, &pipelineService{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, &operationsService{s: s})
	go s.grpc.Serve(lis)
	s.http = httptest.NewServer(s.monitoringHandler())
	s.MonitoringURL = s.http.URL
	return s, nil
}

// Close stops both servers.
func (s *Server) Close() {
	s.grpc.Stop()
	s.http.Close()
}

// SetPollsToFinish makes every later operation finish on its n-th
// GetOperation (0: operations are done when started).
func (s *Server) SetPollsToFinish(n int) { s.mu.Lock(); s.polls = n; s.mu.Unlock() }

// FailNext makes the next n calls of a method (e.g. "DeployModel",
// "GetOperation", "ListTimeSeries") fail with code before doing anything.
func (s *Server) FailNext(method string, c codes.Code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], c)
	}
}

// LoseNextReply makes the next n calls of a method take effect and then
// answer Unavailable, as when a reply is lost on the way back.
func (s *Server) LoseNextReply(method string, n int) { s.mu.Lock(); s.lose[method] += n; s.mu.Unlock() }

// FailNextOperation makes the next operation of a kind ("UploadModel",
// "DeployModel", "UndeployModel", "CreateEndpoint") end with an error
// carrying message, without effect.
func (s *Server) FailNextOperation(kind, message string) {
	s.mu.Lock()
	s.failOp[kind] = message
	s.mu.Unlock()
}

// Calls reports how many calls of a method reached the stand-in.
func (s *Server) Calls(method string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[method] }

// SetHealth sets what Cloud Monitoring reports for a model version, matched
// by the model's display name and the version description (how the vertex
// provider names them), on every endpoint it is or was deployed to.
func (s *Server) SetHealth(displayName, versionDescription string, f Figures) {
	s.mu.Lock()
	s.figures[[2]string{displayName, versionDescription}] = f
	s.mu.Unlock()
}

// intercept counts calls and injects faults for every gRPC method.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := path.Base(info.FullMethod)
	if err := s.enter(method); err != nil {
		return nil, err
	}
	resp, err := handler(ctx, req)
	if err == nil && s.lost(method) {
		return nil, status.Errorf(codes.Unavailable, "vertextest: reply to %s lost after it took effect", method)
	}
	return resp, err
}

func (s *Server) enter(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	if q := s.faults[method]; len(q) > 0 {
		s.faults[method] = q[1:]
		return status.Errorf(q[0], "vertextest: injected %s for %s", q[0], method)
	}
	return nil
}

func (s *Server) lost(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lose[method] > 0 {
		s.lose[method]--
		return true
	}
	return false
}

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("%d", 1000+s.seq)
}

func errf(c codes.Code, format string, args ...any) error { return status.Errorf(c, format, args...) }
