package sagemaker

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// StartRetrain starts the target's SageMaker Pipeline with parameters
// model, version and reason (the pipeline must declare them). The client
// request token is derived from the request id, so a retried call returns
// the first execution instead of starting another.
func (p *Provider) StartRetrain(ctx context.Context, t modelplane.Target, r modelplane.RetrainRequest) (string, error) {
	s, err := p.session(ctx, t, r.Model)
	if err != nil {
		return "", err
	}
	if s.cfg.Pipeline == "" {
		return "", field(KeyPipeline, "required to retrain through SageMaker Pipelines")
	}
	if r.RequestID == "" {
		return "", invalidf("sagemaker: retrain request for %s has no request id", r.Model)
	}
	reason := r.Reason
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	out, err := s.sm.StartPipelineExecution(ctx, &sm.StartPipelineExecutionInput{
		PipelineName: aws.String(s.cfg.Pipeline),
		// SageMaker wants 32 to 128 characters; request ids may be shorter or longer.
		ClientRequestToken:           aws.String("modelplane-" + digest(40, s.cfg.Pipeline, r.RequestID)),
		PipelineExecutionDisplayName: aws.String(sanitize("retrain-"+r.Model+"-"+r.Version, 82)),
		PipelineExecutionDescription: aws.String("modelplane retrain of " + r.Model + " " + r.Version + ": " + reason),
		PipelineParameters: []types.Parameter{
			{Name: aws.String("model"), Value: aws.String(r.Model)},
			{Name: aws.String("version"), Value: aws.String(r.Version)},
			{Name: aws.String("reason"), Value: aws.String(reason)},
		},
	})
	if err != nil {
		return "", wrap(err, "StartPipelineExecution", s.cfg.Pipeline)
	}
	return aws.ToString(out.PipelineExecutionArn), nil
}
