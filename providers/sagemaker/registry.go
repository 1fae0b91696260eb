package sagemaker

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/modelplane/modelplane"
)

// Tags on SageMaker Models say which version they hold: names are hashed
// and cannot be read back.
const (
	tagVersion = "modelplane:version"
	tagModel   = "modelplane:model"
	tagTarget  = "modelplane:target"
)

// RegisterVersion puts the version in the model registry (model package
// group + package, pending approval) and creates the SageMaker Model the
// endpoint configs refer to. Both are synchronous, so the Op is zero. A
// registered version is deployable: SetTraffic puts it on the endpoint with
// a blue/green update.
func (p *Provider) RegisterVersion(ctx context.Context, t modelplane.Target, v modelplane.Version) (modelplane.Op, error) {
	s, err := p.session(ctx, t, v.Model)
	if err != nil {
		return modelplane.Op{}, err
	}
	if v.Version == "" {
		return modelplane.Op{}, invalidf("sagemaker: version name is empty")
	}
	if !strings.HasPrefix(v.ArtifactURI, "s3://") && !strings.HasPrefix(v.ArtifactURI, "https://") {
		return modelplane.Op{}, invalidf("sagemaker: version %s artifact %q must be an s3:// (or https://) URI SageMaker can read", v.Version, v.ArtifactURI)
	}
	pkg, err := s.ensurePackage(ctx, v)
	if err != nil {
		return modelplane.Op{}, err
	}
	if err := s.ensureModel(ctx, v.Version, pkg); err != nil {
		return modelplane.Op{}, err
	}
	return modelplane.Op{}, nil
}

func (s *session) ensureGroup(ctx context.Context) error {
	_, err := s.sm.CreateModelPackageGroup(ctx, &sm.CreateModelPackageGroupInput{
		ModelPackageGroupName:        aws.String(s.cfg.PackageGroup),
		ModelPackageGroupDescription: aws.String("modelplane model " + s.model),
	})
	if err != nil && !isAlreadyExists(err) {
		return wrap(err, "CreateModelPackageGroup", s.cfg.PackageGroup)
	}
	return nil
}

// findPackage returns the model package of a version ("" if none). The
// package's description names the version exactly, so a list finds it.
func (s *session) findPackage(ctx context.Context, version string) (types.ModelPackageSummary, bool, error) {
	want := packageDescription(s.model, version)
	pager := sm.NewListModelPackagesPaginator(s.sm, &sm.ListModelPackagesInput{ModelPackageGroupName: aws.String(s.cfg.PackageGroup)})
	for pager.HasMorePages() {
		out, err := pager.NextPage(ctx)
		if err != nil {
			if isNotFound(err) {
				return types.ModelPackageSummary{}, false, nil
			}
			return types.ModelPackageSummary{}, false, wrap(err, "ListModelPackages", s.cfg.PackageGroup)
		}
		for _, m := range out.ModelPackageSummaryList {
			if aws.ToString(m.ModelPackageDescription) == want {
				return m, true, nil
			}
		}
	}
	return types.ModelPackageSummary{}, false, nil
}

func (s *session) ensurePackage(ctx context.Context, v modelplane.Version) (string, error) {
	if err := s.ensureGroup(ctx); err != nil {
		return "", err
	}
	if m, ok, err := s.findPackage(ctx, v.Version); err != nil || ok {
		if ok && m.ModelPackageStatus != "" && m.ModelPackageStatus != types.ModelPackageStatusCompleted {
			return "", packageNotReady(m)
		}
		return aws.ToString(m.ModelPackageArn), err
	}
	out, err := s.sm.CreateModelPackage(ctx, &sm.CreateModelPackageInput{
		ModelPackageGroupName:   aws.String(s.cfg.PackageGroup),
		ModelPackageDescription: aws.String(packageDescription(s.model, v.Version)),
		// The token makes a create retried after a lost reply return the
		// first package instead of registering a duplicate.
		ClientToken:         aws.String(digest(32, "package", s.cfg.PackageGroup, v.Model, v.Version, v.ArtifactURI)),
		ModelApprovalStatus: types.ModelApprovalStatusPendingManualApproval,
		InferenceSpecification: &types.InferenceSpecification{
			Containers:                              []types.ModelPackageContainerDefinition{{Image: aws.String(s.cfg.Image), ModelDataUrl: aws.String(v.ArtifactURI)}},
			SupportedContentTypes:                   []string{"application/json"},
			SupportedResponseMIMETypes:              []string{"application/json"},
			SupportedRealtimeInferenceInstanceTypes: []types.ProductionVariantInstanceType{types.ProductionVariantInstanceType(s.cfg.InstanceType)},
		},
		CustomerMetadataProperties: map[string]string{
			metaModel:   v.Model,
			metaVersion: v.Version,
			metaStage:   modelplane.VersionPendingApproval,
		},
	})
	if err != nil {
		return "", wrap(err, "CreateModelPackage", s.cfg.PackageGroup+"/"+v.Version)
	}
	return aws.ToString(out.ModelPackageArn), nil
}

func packageNotReady(m types.ModelPackageSummary) error {
	if m.ModelPackageStatus == types.ModelPackageStatusFailed {
		return invalidf("sagemaker: model package %s failed", aws.ToString(m.ModelPackageArn))
	}
	// Transient: the activity is retried until the package is ready.
	return fmt.Errorf("sagemaker: model package %s is %s", aws.ToString(m.ModelPackageArn), m.ModelPackageStatus)
}

// ensureModel creates the version's SageMaker Model from its package.
func (s *session) ensureModel(ctx context.Context, version, packageARN string) error {
	name := modelName(s.target.Name, s.model, version)
	_, err := s.sm.DescribeModel(ctx, &sm.DescribeModelInput{ModelName: aws.String(name)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return wrap(err, "DescribeModel", name)
	}
	_, err = s.sm.CreateModel(ctx, &sm.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String(s.cfg.RoleARN),
		PrimaryContainer: &types.ContainerDefinition{ModelPackageName: aws.String(packageARN)},
		Tags: []types.Tag{
			{Key: aws.String(tagVersion), Value: aws.String(tagValue(version))},
			{Key: aws.String(tagModel), Value: aws.String(tagValue(s.model))},
			{Key: aws.String(tagTarget), Value: aws.String(tagValue(s.target.Name))},
		},
	})
	if err != nil && !isAlreadyExists(err) {
		return wrap(err, "CreateModel", name)
	}
	return nil
}

// requireModels makes sure each version has a SageMaker Model, recreating
// it from the registry if a Retire deleted it; a version never registered is
// refused for good. It returns version → model name.
func (s *session) requireModels(ctx context.Context, versions []string) (map[string]string, error) {
	names := map[string]string{}
	for _, v := range versions {
		name := modelName(s.target.Name, s.model, v)
		names[v] = name
		_, err := s.sm.DescribeModel(ctx, &sm.DescribeModelInput{ModelName: aws.String(name)})
		if err == nil {
			continue
		}
		if !isNotFound(err) {
			return nil, wrap(err, "DescribeModel", name)
		}
		m, ok, err := s.findPackage(ctx, v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalidf("sagemaker: version %s of %s is not registered in model package group %s", v, s.model, s.cfg.PackageGroup)
		}
		if m.ModelPackageStatus != "" && m.ModelPackageStatus != types.ModelPackageStatusCompleted {
			return nil, packageNotReady(m)
		}
		if err := s.ensureModel(ctx, v, aws.ToString(m.ModelPackageArn)); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// registeredVersions lists the versions that have a SageMaker Model on this target.
func (s *session) registeredVersions(ctx context.Context) ([]string, error) {
	prefix := modelPrefix(s.target.Name, s.model) + "-"
	var out []string
	pager := sm.NewListModelsPaginator(s.sm, &sm.ListModelsInput{NameContains: aws.String(prefix)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "ListModels", prefix+"*")
		}
		for _, m := range page.Models {
			if !strings.HasPrefix(aws.ToString(m.ModelName), prefix) {
				continue
			}
			tags, err := s.sm.ListTags(ctx, &sm.ListTagsInput{ResourceArn: m.ModelArn})
			if err != nil {
				if isNotFound(err) {
					continue // deleted meanwhile
				}
				return nil, wrap(err, "ListTags", aws.ToString(m.ModelName))
			}
			for _, tg := range tags.Tags {
				if aws.ToString(tg.Key) == tagVersion {
					out = append(out, fromTagValue(aws.ToString(tg.Value)))
				}
			}
		}
	}
	return out, nil
}
