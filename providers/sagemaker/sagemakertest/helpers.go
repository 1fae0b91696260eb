package sagemakertest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/providers/sagemaker"
)

// Options returns provider options pointed at the stand-in with static
// credentials, one attempt per call (faults reach the caller, as they would
// reach Temporal) and no backoff.
func Options(srv *Server) sagemaker.Options {
	return sagemaker.Options{
		BaseEndpoint: srv.URL,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTANDIN", "standin-secret", ""),
		MaxAttempts:  1,
		NoBackoff:    true,
	}
}

// Provider starts a stand-in (closed when the test ends) and returns it with
// a provider talking to it. Pass srv to reuse one.
func Provider(t testing.TB, srv ...*Server) (*sagemaker.Provider, *Server) {
	t.Helper()
	var s *Server
	if len(srv) > 0 && srv[0] != nil {
		s = srv[0]
	} else {
		s = NewServer()
		t.Cleanup(s.Close)
	}
	return sagemaker.New(Options(s)), s
}

// Target returns a valid SageMaker target; extra are key/value pairs that
// override or add config keys, e.g. Target("prod", "rollout", "native").
func Target(name string, extra ...string) modelplane.Target {
	cfg := map[string]string{
		sagemaker.KeyRegion:  Region,
		sagemaker.KeyRoleARN: "arn:aws:iam::" + Account + ":role/modelplane-sagemaker",
		sagemaker.KeyImage:   Account + ".dkr.ecr." + Region + ".amazonaws.com/inference:latest",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	return modelplane.Target{Name: name, Provider: sagemaker.Name, Environment: "test", Config: cfg}
}
