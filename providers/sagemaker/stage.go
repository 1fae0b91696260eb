package sagemaker

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// CustomerMetadataProperties keys on model packages.
const (
	metaModel     = "modelplane.model"
	metaVersion   = "modelplane.version"
	metaStage     = "modelplane.stage"
	metaPrevious  = "modelplane.previous"
	metaPromotion = "modelplane.promotion"
)

// stageSuperseded is what a champion becomes when another version takes the title.
const stageSuperseded = "superseded"

// MarkVersion mirrors a lifecycle stage into the model registry: approval
// stages set ModelApprovalStatus (what SageMaker's own deploy automation
// keys on); rollout stages are recorded in the package's metadata. A write
// that changes nothing is skipped, so repeats are free.
func (p *Provider) MarkVersion(ctx context.Context, t modelplane.Target, c modelplane.StageChange) error {
	s, err := p.session(ctx, t, c.Model)
	if err != nil {
		return err
	}
	var approval types.ModelApprovalStatus
	switch c.Stage {
	case modelplane.VersionApproved:
		approval = types.ModelApprovalStatusApproved
	case modelplane.VersionRejected:
		approval = types.ModelApprovalStatusRejected
	case modelplane.VersionPendingApproval:
		approval = types.ModelApprovalStatusPendingManualApproval
	case modelplane.VersionChallenger, modelplane.VersionChampion, modelplane.VersionRolledBack:
	default:
		return invalidf("sagemaker: unknown stage %q for %s %s", c.Stage, c.Model, c.Version)
	}
	if err := s.markPackage(ctx, c.Version, approval, c.Stage, c); err != nil {
		return err
	}
	if c.Previous == "" || c.Previous == c.Version {
		return nil
	}
	switch c.Stage {
	case modelplane.VersionChampion:
		return s.markPackage(ctx, c.Previous, "", stageSuperseded, modelplane.StageChange{PromotionID: c.PromotionID})
	case modelplane.VersionRolledBack:
		return s.markPackage(ctx, c.Previous, "", modelplane.VersionChampion, modelplane.StageChange{PromotionID: c.PromotionID})
	}
	return nil
}

func (s *session) markPackage(ctx context.Context, version string, approval types.ModelApprovalStatus, stage string, c modelplane.StageChange) error {
	m, ok, err := s.findPackage(ctx, version)
	if err != nil {
		return err
	}
	if !ok {
		return invalidf("sagemaker: version %s of %s has no model package in group %s", version, s.model, s.cfg.PackageGroup)
	}
	arn := aws.ToString(m.ModelPackageArn)
	cur, err := s.sm.DescribeModelPackage(ctx, &sm.DescribeModelPackageInput{ModelPackageName: aws.String(arn)})
	if err != nil {
		return wrap(err, "DescribeModelPackage", arn)
	}
	meta := map[string]string{metaStage: stage}
	if c.Previous != "" {
		meta[metaPrevious] = c.Previous
	}
	if c.PromotionID != "" {
		meta[metaPromotion] = c.PromotionID
	}
	in := &sm.UpdateModelPackageInput{ModelPackageArn: aws.String(arn)}
	changed := false
	for k, v := range meta {
		if cur.CustomerMetadataProperties[k] != v {
			changed = true
		}
	}
	if changed {
		in.CustomerMetadataProperties = meta
	}
	if approval != "" && cur.ModelApprovalStatus != approval {
		changed = true
		in.ModelApprovalStatus = approval
		in.ApprovalDescription = aws.String(approvalDescription(c))
	}
	if !changed {
		return nil
	}
	if _, err := s.sm.UpdateModelPackage(ctx, in); err != nil {
		return wrap(err, "UpdateModelPackage", arn)
	}
	return nil
}

// approvalDescription fits SageMaker's 1024-character limit.
func approvalDescription(c modelplane.StageChange) string {
	parts := []string{"modelplane " + c.Stage}
	if c.PromotionID != "" {
		parts = append(parts, "promotion "+c.PromotionID)
	}
	if c.Note != "" {
		parts = append(parts, c.Note)
	}
	d := strings.Join(parts, "; ")
	if len(d) > 1024 {
		d = d[:1024]
	}
	return d
}
