package vertex

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/modelplane/modelplane"
)

// Target configuration keys (Target.Config).
const (
	KeyProject          = "project"           // required: GCP project id or number
	KeyLocation         = "location"          // required: region, e.g. us-central1
	KeyEndpoint         = "endpoint"          // endpoint id; default derived from model+target
	KeyModelID          = "model_id"          // Vertex model id; default derived from the model name
	KeyServingImage     = "serving_image"     // container image for UploadModel (required to register)
	KeyMachineType      = "machine_type"      // default n1-standard-4
	KeyMinReplicas      = "min_replicas"      // default 1
	KeyMaxReplicas      = "max_replicas"      // default min_replicas
	KeyPipelineTemplate = "pipeline_template" // template URI for retraining
	KeyPipelineRoot     = "pipeline_root"     // gs:// output root for pipeline runs
	KeyServiceAccount   = "service_account"   // runs deployed models and pipeline jobs
)

const defaultMachineType = "n1-standard-4"

var (
	projectRe  = regexp.MustCompile(`^([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$`)
	locationRe = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	// An endpoint id is either a number of up to 9 digits or a lowercase name (CreateEndpoint's rules).
	endpointIDRe = regexp.MustCompile(`^([1-9][0-9]{0,18}|[a-z]([a-z0-9-]{0,61}[a-z0-9])?)$`)
	modelIDRe    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,62}$|^[0-9]{1,20}$`)
)

// config is a validated Target.Config.
type config struct {
	project, location         string
	endpointID, modelID       string // explicit ids, empty when derived
	servingImage, machineType string
	minReplicas, maxReplicas  int32
	pipelineTemplate          string
	pipelineRoot              string
	serviceAccount            string
}

// configError names the offending key; retrying cannot help.
func configError(key, format string, args ...any) error {
	return errors.Join(modelplane.FieldError("config."+key, format, args...), modelplane.ErrInvalid)
}

func parseConfig(t modelplane.Target) (config, error) {
	get := func(k string) string { return t.Config[k] }
	c := config{
		project: get(KeyProject), location: get(KeyLocation),
		endpointID: get(KeyEndpoint), modelID: get(KeyModelID),
		servingImage: get(KeyServingImage), machineType: get(KeyMachineType),
		pipelineTemplate: get(KeyPipelineTemplate), pipelineRoot: get(KeyPipelineRoot),
		serviceAccount: get(KeyServiceAccount),
	}
	switch {
	case c.project == "":
		return c, configError(KeyProject, "is required (the GCP project id)")
	case !projectRe.MatchString(c.project):
		return c, configError(KeyProject, "%q is not a GCP project id or number", c.project)
	case c.location == "":
		return c, configError(KeyLocation, "is required (a Vertex AI region such as us-central1)")
	case !locationRe.MatchString(c.location):
		return c, configError(KeyLocation, "%q is not a Vertex AI region such as us-central1", c.location)
	case c.endpointID != "" && !endpointIDRe.MatchString(c.endpointID):
		return c, configError(KeyEndpoint, "%q is not an endpoint id (a number, or [a-z0-9-] starting with a letter)", c.endpointID)
	case c.modelID != "" && !modelIDRe.MatchString(c.modelID):
		return c, configError(KeyModelID, "%q is not a model id ([a-z0-9_-], not starting with a digit or hyphen, ≤63)", c.modelID)
	}
	if c.machineType == "" {
		c.machineType = defaultMachineType
	}
	var err error
	if c.minReplicas, err = replicas(t, KeyMinReplicas, 1); err != nil {
		return c, err
	}
	if c.maxReplicas, err = replicas(t, KeyMaxReplicas, c.minReplicas); err != nil {
		return c, err
	}
	if c.maxReplicas < c.minReplicas {
		return c, configError(KeyMaxReplicas, "%d is below min_replicas %d", c.maxReplicas, c.minReplicas)
	}
	if c.pipelineRoot != "" && !regexp.MustCompile(`^gs://[^/]+`).MatchString(c.pipelineRoot) {
		return c, configError(KeyPipelineRoot, "%q is not a gs:// URI", c.pipelineRoot)
	}
	return c, nil
}

func replicas(t modelplane.Target, key string, def int32) (int32, error) {
	s, ok := t.Config[key]
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, configError(key, "%q is not a replica count in 1..1000", s)
	}
	return int32(n), nil
}

func (c config) parent() string {
	return fmt.Sprintf("projects/%s/locations/%s", c.project, c.location)
}

// ValidateTarget checks the target's configuration (modelplane.TargetValidator).
func (p *Provider) ValidateTarget(t modelplane.Target) error {
	if err := t.CheckConfigKeys(KeyProject, KeyLocation, KeyEndpoint, KeyModelID, KeyServingImage, KeyMachineType, KeyMinReplicas, KeyMaxReplicas, KeyPipelineTemplate, KeyPipelineRoot, KeyServiceAccount); err != nil {
		return err
	}
	_, err := parseConfig(t)
	return err
}
