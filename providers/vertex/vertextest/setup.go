package vertextest

import (
	"testing"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/vertex"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options points a vertex provider at the stand-in, without credentials.
func (s *Server) Options() vertex.Options {
	return vertex.Options{
		ClientOptions: []option.ClientOption{
			option.WithEndpoint(s.Addr),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		},
		MonitoringOptions: []option.ClientOption{
			option.WithEndpoint(s.MonitoringURL + "/"),
			option.WithoutAuthentication(),
		},
	}
}

// Target is a valid Vertex AI target named name, with every key set that
// registering, deploying and retraining need.
func Target(name string) modelplane.Target {
	return modelplane.Target{
		Name: name, Provider: vertex.Name, Environment: "test",
		Config: map[string]string{
			vertex.KeyProject:          "modelplane-test",
			vertex.KeyLocation:         "us-central1",
			vertex.KeyServingImage:     "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest",
			vertex.KeyMachineType:      "n1-standard-2",
			vertex.KeyMinReplicas:      "1",
			vertex.KeyMaxReplicas:      "2",
			vertex.KeyPipelineTemplate: "https://us-central1-kfp.pkg.dev/modelplane-test/pipelines/retrain/v1",
			vertex.KeyPipelineRoot:     "gs://modelplane-test/pipelines",
		},
	}
}

// Setup starts a fresh stand-in and returns it with a provider and a valid
// target pointed at it; everything is closed when the test ends.
func Setup(t testing.TB) (*Server, *vertex.Provider, modelplane.Target) {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatalf("vertextest: %v", err)
	}
	p := vertex.New(s.Options())
	t.Cleanup(func() {
		p.Close()
		s.Close()
	})
	return s, p, Target("vertex-" + sanitize(t.Name()))
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}
