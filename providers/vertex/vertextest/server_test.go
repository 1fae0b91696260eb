package vertextest_test

import (
	"context"
	"testing"

	aiplatform "cloud.google.com/go/aiplatform/apiv1"
	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/modelplane/modelplane/providers/vertex/vertextest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

const parent = "projects/p/locations/us-central1"

func codeOf(err error) codes.Code { s, _ := status.FromError(err); return s.Code() }

// TestRefusesLikeTheService drives the stand-in through the real clients and
// checks it refuses what Vertex AI refuses, with the same codes.
func TestRefusesLikeTheService(t *testing.T) {
	ctx := context.Background()
	s, err := vertextest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetPollsToFinish(0)
	opts := s.Options().ClientOptions
	mc, err := aiplatform.NewModelClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ec, err := aiplatform.NewEndpointClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()

	upload := func(req *aiplatformpb.UploadModelRequest) {
		t.Helper()
		req.Parent = parent
		req.Model = &aiplatformpb.Model{DisplayName: "m", ContainerSpec: &aiplatformpb.ModelContainerSpec{ImageUri: "img"}}
		if _, err := mc.UploadModel(ctx, req); err != nil {
			t.Fatalf("UploadModel: %v", err)
		}
	}
	upload(&aiplatformpb.UploadModelRequest{ModelId: "m"})
	upload(&aiplatformpb.UploadModelRequest{ParentModel: parent + "/models/m"})
	if _, err := mc.UploadModel(ctx, &aiplatformpb.UploadModelRequest{Parent: parent, ModelId: "m", Model: &aiplatformpb.Model{DisplayName: "m", ContainerSpec: &aiplatformpb.ModelContainerSpec{ImageUri: "img"}}}); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("duplicate model id: %v, want AlreadyExists", err)
	}

	// Aliases move; "default" stays on some version.
	if _, err := mc.MergeVersionAliases(ctx, &aiplatformpb.MergeVersionAliasesRequest{Name: parent + "/models/m@2", VersionAliases: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Aliases(parent + "/models/m@1"); len(got) != 0 {
		t.Fatalf("v1 aliases after moving default = %v", got)
	}
	if _, err := mc.MergeVersionAliases(ctx, &aiplatformpb.MergeVersionAliasesRequest{Name: parent + "/models/m@2", VersionAliases: []string{"-default"}}); codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("removing default: %v, want FailedPrecondition", err)
	}
	if _, err := mc.MergeVersionAliases(ctx, &aiplatformpb.MergeVersionAliasesRequest{Name: parent + "/models/m@2", VersionAliases: []string{"123"}}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("numeric alias: %v, want InvalidArgument", err)
	}

	if _, err := ec.CreateEndpoint(ctx, &aiplatformpb.CreateEndpointRequest{Parent: parent, EndpointId: "ep", Endpoint: &aiplatformpb.Endpoint{DisplayName: "ep"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.CreateEndpoint(ctx, &aiplatformpb.CreateEndpointRequest{Parent: parent, EndpointId: "ep", Endpoint: &aiplatformpb.Endpoint{DisplayName: "ep"}}); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("duplicate endpoint: %v, want AlreadyExists", err)
	}
	ep := parent + "/endpoints/ep"
	deploy := func(version, id string, split map[string]int32) error {
		_, err := ec.DeployModel(ctx, &aiplatformpb.DeployModelRequest{Endpoint: ep, TrafficSplit: split, DeployedModel: &aiplatformpb.DeployedModel{
			Id: id, Model: parent + "/models/m@" + version,
			PredictionResources: &aiplatformpb.DeployedModel_DedicatedResources{DedicatedResources: &aiplatformpb.DedicatedResources{
				MachineSpec: &aiplatformpb.MachineSpec{MachineType: "n1-standard-2"}, MinReplicaCount: 1}},
		}})
		return err
	}
	if err := deploy("1", "11", map[string]int32{"0": 90}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("split summing to 90: %v, want InvalidArgument", err)
	}
	if err := deploy("1", "11", map[string]int32{"0": 100}); err != nil {
		t.Fatal(err)
	}
	if err := deploy("2", "11", map[string]int32{"11": 100}); codeOf(err) != codes.AlreadyExists {
		t.Fatalf("duplicate deployed model id: %v, want AlreadyExists", err)
	}
	if err := deploy("9", "12", map[string]int32{"11": 100}); codeOf(err) != codes.NotFound {
		t.Fatalf("unknown model version: %v, want NotFound", err)
	}
	if err := deploy("2", "12", map[string]int32{"11": 100}); err != nil {
		t.Fatal(err)
	}
	update := func(split map[string]int32) error {
		_, err := ec.UpdateEndpoint(ctx, &aiplatformpb.UpdateEndpointRequest{
			Endpoint: &aiplatformpb.Endpoint{Name: ep, TrafficSplit: split}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic_split"}}})
		return err
	}
	if err := update(map[string]int32{"11": 50, "99": 50}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("unknown deployed model in split: %v, want InvalidArgument", err)
	}
	if err := update(map[string]int32{"11": 50, "12": 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.UndeployModel(ctx, &aiplatformpb.UndeployModelRequest{Endpoint: ep, DeployedModelId: "12"}); codeOf(err) != codes.FailedPrecondition {
		t.Fatalf("undeploy with traffic: %v, want FailedPrecondition", err)
	}
	if _, err := ec.GetEndpoint(ctx, &aiplatformpb.GetEndpointRequest{Name: parent + "/endpoints/nope"}); codeOf(err) != codes.NotFound {
		t.Fatalf("unknown endpoint: %v, want NotFound", err)
	}
	if got := s.Calls("UpdateEndpoint"); got != 2 {
		t.Fatalf("UpdateEndpoint calls = %d, want 2", got)
	}
}
