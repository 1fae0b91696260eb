package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/spf13/cobra"
	yaml3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// declared is one resource read from a file, with the line of each field.
type declared struct {
	modelplane.Resource
	file  string
	lines map[string]int
}

// readDeclared reads every resource in a file, or in the .yaml, .yml and
// .json files of a directory, and checks each against its kind's rules,
// naming file, line and field when one is wrong.
func readDeclared(path string) ([]declared, error) {
	files := []string{path}
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	var out []declared
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := yaml3.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml3.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(doc.Content) == 0 {
				continue
			}
			d, err := toResource(f, doc.Content[0])
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no resources (documents with kind: Model, Target or Pipeline)", path)
	}
	return out, nil
}

func toResource(file string, n *yaml3.Node) (declared, error) {
	d := declared{file: file, lines: map[string]int{"": n.Line}}
	d.Source = fmt.Sprintf("%s:%d", file, n.Line)
	if n.Kind != yaml3.MappingNode {
		return d, fmt.Errorf("%s: a resource is a mapping with a kind", d.Source)
	}
	spec := &yaml3.Node{Kind: yaml3.MappingNode}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			d.Kind = modelplane.Kind(n.Content[i+1].Value)
			continue
		}
		spec.Content = append(spec.Content, n.Content[i], n.Content[i+1])
	}
	lines(spec, "", d.lines)
	raw, err := yaml3.Marshal(spec)
	if err != nil {
		return d, fmt.Errorf("%s: %w", d.Source, err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return d, fmt.Errorf("%s: %w", d.Source, err)
	}
	d.Spec = js
	var v interface{ Validate() error }
	switch d.Kind {
	case modelplane.KindModel:
		v = &modelplane.Model{}
	case modelplane.KindTarget:
		v = &modelplane.Target{}
	case modelplane.KindPipeline:
		v = &modelplane.Pipeline{}
	default:
		return d, fmt.Errorf("%s: kind: must be Model, Target or Pipeline, got %q", d.Source, d.Kind)
	}
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.DisallowUnknownFields()
	if err := jd.Decode(v); err != nil {
		return d, fmt.Errorf("%s: %s: %v", d.Source, d.Kind, err)
	}
	if err := v.Validate(); err != nil {
		var e *modelplane.Error
		if errors.As(err, &e) && e.Field != "" {
			line, _ := modelplane.FieldLine(d.lines, e.Field)
			return d, fmt.Errorf("%s:%d: %s: %s", file, line, e.Field, e.Message)
		}
		return d, fmt.Errorf("%s: %w", d.Source, err)
	}
	return d, nil
}

// lines records the line of every field path under n.
func lines(n *yaml3.Node, prefix string, out map[string]int) {
	switch n.Kind {
	case yaml3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			out[p] = n.Content[i].Line
			lines(n.Content[i+1], p, out)
		}
	case yaml3.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			out[p] = c.Line
			lines(c, p, out)
		}
	}
}

// applyCmd is modelplane apply (and, with dry set, modelplane diff).
func applyCmd(f *cliFlags, dry bool) *cobra.Command {
	var file string
	var dryRun, prune bool
	use, short := "apply -f FILE|DIR", "Make the store hold the Models, Targets and Pipelines declared in YAML: a plan, field by field, then the changes"
	if dry {
		use, short = "diff -f FILE|DIR", "What apply would change, field by field (exit status 1 when anything would)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := readDeclared(file)
			if err != nil {
				return err
			}
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			req := api.ApplyRequest{DryRun: dry || dryRun, Prune: prune}
			for _, d := range ds {
				req.Resources = append(req.Resources, d.Resource)
			}
			var out api.ApplyResult
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/apply", req, &out); err != nil {
				return err
			}
			printPlan(cmd.OutOrStdout(), out)
			if dry && out.Summary != fmt.Sprintf("0 to create, 0 to change, 0 to delete, %d unchanged", len(out.Changes)) {
				cmd.SilenceErrors = true
				return errDiffers
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "a YAML file or a directory of them")
	_ = cmd.MarkFlagRequired("file")
	if !dry {
		cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also delete your teams' pipelines the files do not declare")
	return cmd
}

var errDiffers = errors.New("the store differs from the files")

func printPlan(w io.Writer, r api.ApplyResult) {
	mark := map[modelplane.PlanAction]string{modelplane.PlanCreate: "+", modelplane.PlanChange: "~", modelplane.PlanDelete: "-", modelplane.PlanUnchanged: "="}
	for _, c := range r.Changes {
		fmt.Fprintf(w, "%s %s %s (%s)\n", mark[c.Action], c.Kind, c.Name, c.Action)
		if c.Action != modelplane.PlanChange {
			continue
		}
		for _, fc := range c.Fields {
			fmt.Fprintf(w, "    %s: %s → %s\n", fc.Field, orUnset(fc.From), orUnset(fc.To))
		}
	}
	note := ""
	if r.DryRun {
		note = " (dry run: nothing changed)"
	}
	fmt.Fprintln(w, r.Summary+note)
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// getCmd prints stored resources as YAML apply takes back.
func getCmd(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get model|target|pipeline [NAME]",
		Short: "Print stored Models, Targets or Pipelines as the YAML apply reads",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := map[string]struct {
				kind       modelplane.Kind
				path, list string
			}{
				"model": {modelplane.KindModel, "/v1/models", "models"}, "target": {modelplane.KindTarget, "/v1/targets", "targets"},
				"pipeline": {modelplane.KindPipeline, "/v1/pipelines", "pipelines"},
			}
			k, ok := kinds[strings.TrimSuffix(strings.ToLower(args[0]), "s")]
			if !ok {
				return fmt.Errorf("kind: say model, target or pipeline, not %q", args[0])
			}
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var items []map[string]any
			if len(args) == 2 && k.kind != modelplane.KindTarget {
				var one map[string]any
				if err := c.do(cmd.Context(), http.MethodGet, k.path+"/"+url.PathEscape(args[1]), nil, &one); err != nil {
					return err
				}
				items = append(items, one)
			} else {
				var all map[string][]map[string]any
				if err := c.do(cmd.Context(), http.MethodGet, k.path, nil, &all); err != nil {
					return err
				}
				for _, it := range all[k.list] {
					if len(args) < 2 || it["name"] == args[1] {
						items = append(items, it)
					}
				}
				if len(args) == 2 && len(items) == 0 {
					return fmt.Errorf("%s %q not found", k.kind, args[1])
				}
			}
			for i, it := range items {
				delete(it, "created_at")
				delete(it, "updated_at")
				it["kind"] = k.kind
				b, err := yaml.Marshal(it)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "---")
				}
				fmt.Fprint(cmd.OutOrStdout(), string(b))
			}
			return nil
		},
	}
}
