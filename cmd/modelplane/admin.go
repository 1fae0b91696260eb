package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/audit"
	"github.com/modelplane/modelplane/config"
	"github.com/modelplane/modelplane/identity"
	"github.com/modelplane/modelplane/policy"
	"github.com/modelplane/modelplane/store"
	"github.com/spf13/cobra"
)

// Operator commands: they work on the store and files directly, not through the API.

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and export the tamper-evident audit trail"}
	var c common
	var file string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit hash chain; names the first edited, deleted or reordered record (exit 1)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				brk *audit.Break
				n   int
				err error
			)
			if file != "" {
				f, ferr := os.Open(file)
				if ferr != nil {
					return ferr
				}
				defer f.Close()
				brk, n, err = audit.VerifyJSONL(f)
			} else {
				st, serr := openStore(&c)
				if serr != nil {
					return serr
				}
				defer st.Close()
				brk, n, err = st.VerifyAudit(cmd.Context())
			}
			if err != nil {
				return err
			}
			if brk != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "audit chain BROKEN after %d good records: %s\n", n, brk.Error())
				return errBroken
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit chain intact: %d records\n", n)
			return nil
		},
	}
	c.add(verify, false)
	verify.Flags().StringVar(&file, "file", "", "verify a JSON Lines export instead of the database")
	var f store.AuditFilter
	var since, until string
	var ec common
	export := &cobra.Command{
		Use:   "export",
		Short: "Write audit records as JSON Lines (with their hash chain) to stdout",
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range []struct {
				v   string
				dst *time.Time
			}{{since, &f.Since}, {until, &f.Until}} {
				if t.v != "" {
					tm, err := time.Parse(time.RFC3339, t.v)
					if err != nil {
						return fmt.Errorf("--since/--until: want RFC 3339, got %q", t.v)
					}
					*t.dst = tm
				}
			}
			st, err := openStore(&ec)
			if err != nil {
				return err
			}
			defer st.Close()
			_, err = st.ExportAudit(cmd.Context(), cmd.OutOrStdout(), f)
			return err
		},
	}
	ec.add(export, false)
	export.Flags().StringVar(&f.Model, "model", "", "only this model")
	export.Flags().StringVar(&f.Version, "version", "", "only this version")
	export.Flags().StringVar(&f.PromotionID, "promotion", "", "only this promotion")
	export.Flags().StringVar(&f.Actor, "actor", "", "only this actor")
	export.Flags().StringVar(&since, "since", "", "from this time (RFC 3339)")
	export.Flags().StringVar(&until, "until", "", "before this time (RFC 3339)")
	cmd.AddCommand(verify, export)
	return cmd
}

var errBroken = errors.New("audit chain broken")

func openStore(c *common) (*store.Store, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	return store.Open(cfg.DB)
}

func migrateCmd() *cobra.Command {
	var c common
	var check bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations (--check: only report, exit 1 if the schema does not match)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			// Migrations run below, explicitly, so that each applied one is reported.
			st, err := store.OpenWith(cfg.DB, store.Options{NoMigrate: true})
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			if !check {
				applied, err := st.MigrateSchema(ctx)
				if err != nil {
					return err
				}
				for _, m := range applied {
					fmt.Fprintf(cmd.OutOrStdout(), "applied %s\n", m)
				}
			}
			ms, err := st.MigrationStatus(ctx)
			if err != nil {
				return err
			}
			for _, m := range ms {
				state := "pending"
				if !m.Pending() {
					state = "applied " + m.AppliedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-28s %s\n", m, state)
			}
			if err := st.CheckSchema(ctx); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "schema matches the models")
			return nil
		},
	}
	c.add(cmd, false)
	cmd.Flags().BoolVar(&check, "check", false, "do not migrate; fail if migrations are pending or the schema differs")
	return cmd
}

func tokenCmd() *cobra.Command {
	var file, name, teams, roles string
	var ttl time.Duration
	cmd := &cobra.Command{Use: "token", Short: "Manage static API tokens (stored as SHA-256 digests)"}
	create := &cobra.Command{
		Use:   "create",
		Short: "Add a token to the token file and print its secret once",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--file is required (the api.tokens_file the server reads)")
			}
			e := identity.TokenEntry{Name: name, Teams: split(teams), Roles: split(roles)}
			if ttl > 0 {
				e.Expires = time.Now().Add(ttl).UTC().Truncate(time.Second)
			}
			secret, err := identity.IssueToken(file, e)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s added to %s (only its digest is stored; this is the only time the secret is shown)\n", name, file)
			return nil
		},
	}
	create.Flags().StringVar(&file, "file", os.Getenv("MODELPLANE_API_TOKENS_FILE"), "token file")
	create.Flags().StringVar(&name, "name", "", "who the token is for (a pipeline, a person)")
	create.Flags().StringVar(&teams, "teams", "", "comma-separated teams")
	create.Flags().StringVar(&roles, "roles", "", "comma-separated roles: "+strings.Join(modelplane.Roles, ", "))
	create.Flags().DurationVar(&ttl, "expires-in", 90*24*time.Hour, "lifetime (0: never expires)")
	cmd.AddCommand(create)
	return cmd
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Policy as code: write the default bundle, check a directory"}
	cmd.AddCommand(&cobra.Command{
		Use:   "init DIR",
		Short: "Write the default policy bundle into DIR to start customising it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := policy.WriteDefault(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "default policy written to %s; point policy.dir (MODELPLANE_POLICY_DIR) at it\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "check DIR",
		Short: "Compile DIR and run its Rego tests, as the server does before it loads a change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := policy.New(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s OK (%s)\n", args[0], e.Version())
			return nil
		},
	}, &cobra.Command{
		Use:   "eval",
		Short: "Ask the policy a question: reads a policy input (JSON) on stdin, prints the decision",
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := policy.New(os.Getenv("MODELPLANE_POLICY_DIR"))
			if err != nil {
				return err
			}
			var in policy.Input
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&in); err != nil {
				return fmt.Errorf("input: %w", err)
			}
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(d)
		},
	})
	return cmd
}

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration: list every key"}
	cmd.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "Print every configuration key with its environment variable (Markdown)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), config.Markdown())
			return nil
		},
	})
	return cmd
}
