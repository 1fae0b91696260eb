// Command modelplane is the model control plane: `modelplane dev` runs
// everything in one process; `server` and `worker` run against an external
// Temporal cluster (which `temporal` runs on PostgreSQL, with the Web UI);
// the other subcommands are the CLI over the API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		if err != errBroken {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "modelplane",
		Short:         "Model control plane: promotions as durable Temporal workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := &cliFlags{}
	client := []*cobra.Command{promoteCmd(f), voteCmd(f, "approve"), voteCmd(f, "reject"), rollbackCmd(f), decideCmd(f), statusCmd(f), modelsCmd(f), driftCmd(f), simCmd(f), deploymentCmd(f), pipelineCmd(f), freezeCmd(f), applyCmd(f, false), applyCmd(f, true), getCmd(f)}
	for _, c := range client {
		f.add(c)
	}
	root.AddCommand(devCmd(), serverCmd(), gatewayCmd(), mcpCmd(), workerCmd(), temporalCmd(), auditCmd(), migrateCmd(), tokenCmd(), policyCmd(), configCmd())
	root.AddCommand(client...)
	return root
}
