// Validation tools for deploy/ (JSON-schema checks of the compose file and
// of custom resources). A module of its own so the project's go.mod never
// carries them; hack/ensure-deploy-tools.sh builds it into a cache directory.
module github.com/modelplane/modelplane/deploy/tools

go 1.26.8

require (
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2
	sigs.k8s.io/yaml v1.6.0
)

require (
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/text v0.14.0 // indirect
)
