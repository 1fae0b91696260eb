// Command schemacheck validates YAML or JSON documents against a JSON schema,
// offline. It backs the deploy tests: the compose file against the official
// compose-spec schema, and rendered custom resources (ServiceMonitor) against
// the openAPIV3Schema of their CRD, made strict so a misspelled field fails
// instead of being pruned as the API server would.
//
//	schemacheck -schema compose-spec.json docker-compose.yml
//	schemacheck -crd monitoring.coreos.com_servicemonitors.yaml -crd-version v1 sm.yaml
//
// Exit status: 0 all valid, 1 some document invalid, 2 usage or I/O error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

func main() {
	schemaPath := flag.String("schema", "", "JSON (or YAML) schema file")
	crdPath := flag.String("crd", "", "CustomResourceDefinition whose openAPIV3Schema is the schema")
	crdVersion := flag.String("crd-version", "", "CRD version to use (default: the storage version)")
	dump := flag.Bool("dump-schema", false, "print the (derived) schema and exit")
	flag.Parse()
	if (*schemaPath == "") == (*crdPath == "") {
		fatal("exactly one of -schema and -crd is required")
	}

	var schema any
	var err error
	if *schemaPath != "" {
		schema, err = readSchema(*schemaPath)
	} else {
		schema, err = crdSchema(*crdPath, *crdVersion)
	}
	if err != nil {
		fatal(err.Error())
	}
	if *dump {
		out, _ := json.MarshalIndent(schema, "", "  ")
		fmt.Println(string(out))
		return
	}
	sch, err := compile(schema)
	if err != nil {
		fatal("compile schema: " + err.Error())
	}
	if flag.NArg() == 0 {
		fatal("no documents given")
	}

	bad := 0
	for _, path := range flag.Args() {
		docs, err := readDocs(path)
		if err != nil {
			fatal(err.Error())
		}
		for i, doc := range docs {
			name := path
			if len(docs) > 1 {
				name = fmt.Sprintf("%s#%d", path, i+1)
			}
			if err := sch.Validate(doc); err != nil {
				bad++
				fmt.Printf("%s: INVALID\n%v\n", name, err)
				continue
			}
			fmt.Printf("%s: ok\n", name)
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "schemacheck:", msg)
	os.Exit(2)
}

// compile never reaches the network: the only resource is the schema itself
// and the draft meta-schemas are built into the library.
func compile(schema any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	// compose-go registers the same checker: durations are Go durations ("10s").
	c.RegisterFormat(&jsonschema.Format{Name: "duration", Validate: func(v any) error {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		_, err := time.ParseDuration(s)
		return err
	}})
	const url = "file:///schemacheck/schema.json"
	if err := c.AddResource(url, schema); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

func readSchema(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(b) // JSON is YAML, so this takes either
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(js))
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// readDocs splits a multi-document YAML file; empty documents are dropped.
func readDocs(path string) ([]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, part := range docSep.Split(string(b), -1) {
		js, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no documents", path)
	}
	return out, nil
}

// crdSchema returns the openAPIV3Schema of one version of a CRD, strict.
func crdSchema(path, version string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Kind string `json:"kind"`
		Spec struct {
			Versions []struct {
				Name    string `json:"name"`
				Storage bool   `json:"storage"`
				Schema  struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if crd.Kind != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s: kind %q, want CustomResourceDefinition", path, crd.Kind)
	}
	for _, v := range crd.Spec.Versions {
		if (version == "" && v.Storage) || v.Name == version {
			if v.Schema.OpenAPIV3Schema == nil {
				return nil, fmt.Errorf("%s: version %s has no openAPIV3Schema", path, v.Name)
			}
			s := strict(v.Schema.OpenAPIV3Schema)
			// Round-trip through JSON so numbers are what the compiler expects.
			js, _ := json.Marshal(s)
			return jsonschema.UnmarshalJSON(bytes.NewReader(js))
		}
	}
	return nil, errors.New(path + ": no such version " + version)
}

// strict turns a structural OpenAPI v3 schema into a JSON schema that rejects
// unknown fields (the API server would silently prune them, which hides
// typos) and understands the OpenAPI-only nullable and int-or-string markers.
func strict(s map[string]any) map[string]any {
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := s[k].([]any); ok {
			for _, item := range list {
				if m, ok := item.(map[string]any); ok {
					strict(m)
				}
			}
		}
	}
	if m, ok := s["not"].(map[string]any); ok {
		strict(m)
	}
	if m, ok := s["items"].(map[string]any); ok {
		strict(m)
	}
	if m, ok := s["additionalProperties"].(map[string]any); ok {
		strict(m)
	}
	props, hasProps := s["properties"].(map[string]any)
	for _, p := range props {
		if m, ok := p.(map[string]any); ok {
			strict(m)
		}
	}
	preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
	if _, set := s["additionalProperties"]; hasProps && !set && !preserve {
		s["additionalProperties"] = false
	}
	if ios, _ := s["x-kubernetes-int-or-string"].(bool); ios {
		if _, set := s["anyOf"]; !set {
			s["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
		}
		delete(s, "type")
	}
	if n, _ := s["nullable"].(bool); n {
		if t, ok := s["type"].(string); ok {
			s["type"] = []any{t, "null"}
		}
	}
	return s
}
