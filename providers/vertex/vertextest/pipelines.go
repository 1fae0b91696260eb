package vertextest

import (
	"context"
	"regexp"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var pipelineJobIDRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,127}$`)

type pipelineService struct {
	aiplatformpb.UnimplementedPipelineServiceServer
	s *Server
}

// CreatePipelineJob is synchronous; the job stays pending (nothing runs).
func (p *pipelineService) CreatePipelineJob(ctx context.Context, req *aiplatformpb.CreatePipelineJobRequest) (*aiplatformpb.PipelineJob, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !parentRe.MatchString(req.GetParent()) {
		return nil, errf(codes.InvalidArgument, "invalid parent %q", req.GetParent())
	}
	in := req.GetPipelineJob()
	if in.GetTemplateUri() == "" && in.GetPipelineSpec() == nil {
		return nil, errf(codes.InvalidArgument, "pipeline_job needs a template_uri or a pipeline_spec")
	}
	if err := validLabels(in.GetLabels()); err != nil {
		return nil, err
	}
	id := req.GetPipelineJobId()
	if id == "" {
		id = "job-" + s.nextID()
	} else if !pipelineJobIDRe.MatchString(id) {
		return nil, errf(codes.InvalidArgument, "invalid pipeline_job_id %q", id)
	}
	name := req.GetParent() + "/pipelineJobs/" + id
	if _, ok := s.jobs[name]; ok {
		return nil, errf(codes.AlreadyExists, "pipeline job %q already exists", name)
	}
	job := proto.Clone(in).(*aiplatformpb.PipelineJob)
	job.Name, job.State, job.CreateTime = name, aiplatformpb.PipelineState_PIPELINE_STATE_PENDING, timestamppb.Now()
	s.jobs[name] = job
	return proto.Clone(job).(*aiplatformpb.PipelineJob), nil
}

func (p *pipelineService) GetPipelineJob(ctx context.Context, req *aiplatformpb.GetPipelineJobRequest) (*aiplatformpb.PipelineJob, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[req.GetName()]
	if !ok {
		return nil, errf(codes.NotFound, "pipeline job %q not found", req.GetName())
	}
	return proto.Clone(job).(*aiplatformpb.PipelineJob), nil
}

// PipelineJobs lists the jobs created (clones), for tests.
func (s *Server) PipelineJobs() []*aiplatformpb.PipelineJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*aiplatformpb.PipelineJob
	for _, j := range s.jobs {
		out = append(out, proto.Clone(j).(*aiplatformpb.PipelineJob))
	}
	return out
}
