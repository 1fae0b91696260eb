package vertex

import (
	"context"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"github.com/modelplane/modelplane"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// StartRetrain creates a PipelineJob from the target's pipeline_template
// with parameters model, version and reason. The job id is derived from the
// request id, so a retried call finds the job an earlier attempt created.
// It returns the job's resource name.
func (p *Provider) StartRetrain(ctx context.Context, t modelplane.Target, r modelplane.RetrainRequest) (string, error) {
	c, cl, err := p.setup(ctx, t)
	if err != nil {
		return "", err
	}
	if c.pipelineTemplate == "" {
		return "", configError(KeyPipelineTemplate, "is required to start retraining (a pipeline template URI)")
	}
	if r.RequestID == "" || r.Model == "" {
		return "", invalid("retrain request needs a model and a request id")
	}
	id := pipelineJobID(r.Model, r.RequestID)
	name := c.parent() + "/pipelineJobs/" + id
	job := &aiplatformpb.PipelineJob{
		DisplayName:    truncate("retrain "+r.Model, 128),
		TemplateUri:    c.pipelineTemplate,
		ServiceAccount: c.serviceAccount,
		Labels:         map[string]string{labelModel: labelValue(r.Model), "modelplane-request": labelValue(r.RequestID)},
		RuntimeConfig: &aiplatformpb.PipelineJob_RuntimeConfig{
			GcsOutputDirectory: c.pipelineRoot,
			ParameterValues: map[string]*structpb.Value{
				"model":   structpb.NewStringValue(r.Model),
				"version": structpb.NewStringValue(r.Version),
				"reason":  structpb.NewStringValue(r.Reason),
			},
		},
	}
	created, err := cl.pipeline.CreatePipelineJob(ctx, &aiplatformpb.CreatePipelineJobRequest{Parent: c.parent(), PipelineJob: job, PipelineJobId: id})
	if code(err) == codes.AlreadyExists {
		return name, nil // an earlier attempt created it: same request id, same run
	}
	if err != nil {
		return "", wrap(err, "create pipeline job %s from %s", name, c.pipelineTemplate)
	}
	if created.GetName() != "" {
		return created.GetName(), nil
	}
	return name, nil
}
