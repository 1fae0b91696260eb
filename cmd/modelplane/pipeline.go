package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/modelplane/modelplane/workflows"
	"github.com/spf13/cobra"
)

// pipelineCmd runs versions through pipelines and promotes the stages that
// wait for a person.
func pipelineCmd(f *cliFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Run versions through pipelines (declare them with modelplane apply)"}
	var hotfix string
	run := &cobra.Command{
		Use:   "run PIPELINE MODEL VERSION",
		Short: "Start a version through a pipeline",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var out struct {
				RunID string `json:"run_id"`
			}
			body := map[string]any{"model": args[1], "version": args[2], "hotfix": hotfix}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/pipelines/"+url.PathEscape(args[0])+"/runs", body, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.RunID)
			return nil
		},
	}
	run.Flags().StringVar(&hotfix, "hotfix", "", "skip soak times, for this reason (audited)")

	var watch bool
	status := &cobra.Command{
		Use:   "status PIPELINE MODEL VERSION",
		Short: "Where a version is in a pipeline: each stage, why it waits, its targets' promotions",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			path := "/v1/pipelines/" + url.PathEscape(args[0]) + "/runs/" + url.PathEscape(args[1]) + "/" + url.PathEscape(args[2])
			for {
				var v workflows.PipelineRunView
				if err := c.do(cmd.Context(), http.MethodGet, path, nil, &v); err != nil {
					return err
				}
				printRun(cmd.OutOrStdout(), v)
				if !watch || runOver(v) {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(2 * time.Second):
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", false, "print again every 2 s until every stage is over")

	promote := &cobra.Command{
		Use:   "promote PIPELINE MODEL VERSION STAGE",
		Short: "Promote a stage that waits for a person, as yourself",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			path := "/v1/pipelines/" + url.PathEscape(args[0]) + "/runs/" + url.PathEscape(args[1]) + "/" + url.PathEscape(args[2]) + "/stages/" + url.PathEscape(args[3]) + "/promote"
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodPost, path, nil, &out); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), out)
			return nil
		},
	}
	versions := &cobra.Command{
		Use:   "versions PIPELINE",
		Short: "Which version of each model every stage of a pipeline last verified, and when",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var out struct {
				Stages []api.StageVersions `json:"stages"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/pipelines/"+url.PathEscape(args[0])+"/versions", nil, &out); err != nil {
				return err
			}
			for _, st := range out.Stages {
				if len(st.Verified) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "  %-12s (nothing verified yet)\n", st.Stage)
				}
				for _, v := range st.Verified {
					fmt.Fprintf(cmd.OutOrStdout(), "  %-12s %s %s at %s\n", st.Stage, v.Model, v.Version, v.At.Format(time.RFC3339))
				}
			}
			return nil
		},
	}
	cmd.AddCommand(run, status, promote, versions)
	return cmd
}

func runOver(v workflows.PipelineRunView) bool {
	for _, s := range v.Stages {
		switch s.Status {
		case modelplane.PipelineVerified, modelplane.PipelineFailed, modelplane.PipelineSkipped:
		default:
			return false
		}
	}
	return true
}

func printRun(w io.Writer, v workflows.PipelineRunView) {
	fmt.Fprintf(w, "%s %s through %s\n", v.Model, v.Version, v.Pipeline)
	for _, s := range v.Stages {
		line := fmt.Sprintf("  %-12s %-9s", s.Name, s.Status)
		if s.VerifiedAt != nil {
			line += " at " + s.VerifiedAt.Format(time.RFC3339)
		}
		if s.Note != "" {
			line += "  " + s.Note
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		for _, t := range s.Targets {
			if t.PromotionID == "" && t.Status == "" {
				continue
			}
			fmt.Fprintf(w, "    %-12s %-11s %s %s\n", t.Target, t.Status, t.PromotionID, t.Reason)
		}
	}
}

// freezeCmd turns the freeze switch on or off (admins).
func freezeCmd(f *cliFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "freeze on|off|status",
		Short: "Stop every pipeline's new promotions at once (admins), or let them go again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("admin")
			if err != nil {
				return err
			}
			var out map[string]any
			switch args[0] {
			case "status":
				err = c.do(cmd.Context(), http.MethodGet, "/v1/freeze", nil, &out)
			case "on", "off":
				err = c.do(cmd.Context(), http.MethodPut, "/v1/freeze", map[string]any{"on": args[0] == "on", "reason": reason}, &out)
			default:
				return fmt.Errorf("say on, off or status, not %q", args[0])
			}
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why everything stops (required with on)")
	return cmd
}
