package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
	"github.com/modelplane/modelplane/api"
	"github.com/spf13/cobra"
)

// cliFlags are shared by every client command.
type cliFlags struct {
	api, token, as, dataDir string
}

func (f *cliFlags) add(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.api, "api", envOr("MODELPLANE_API", "http://127.0.0.1:8080"), "modelplane API URL")
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("MODELPLANE_TOKEN"), "API bearer token")
	cmd.PersistentFlags().StringVar(&f.as, "as", "", "dev mode: act as this user from <data-dir>/tokens (alice, bob, carol, admin)")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", ".modelplane", "dev data dir (for --as)")
}

type apiClient struct {
	base, token string
	http        *http.Client
}

func (f *cliFlags) client(defaultUser string) (*apiClient, error) {
	token := f.token
	user := f.as
	if token == "" && user == "" {
		user = defaultUser
	}
	if token == "" || f.as != "" {
		if user == "" {
			return nil, fmt.Errorf("no identity: pass --token, set MODELPLANE_TOKEN, or in dev mode --as bob")
		}
		list, err := api.LoadTokens(filepath.Join(f.dataDir, "tokens"), "")
		if err != nil {
			return nil, fmt.Errorf("--as %s: %w (is `modelplane dev` running here?)", user, err)
		}
		for _, t := range list {
			if t.Name == user {
				token = t.Secret
			}
		}
		if token == "" {
			return nil, fmt.Errorf("--as %s: no such user in %s", user, filepath.Join(f.dataDir, "tokens"))
		}
	}
	return &apiClient{base: strings.TrimRight(f.api, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// apiError is the API's error body.
type apiError struct {
	Status int
	Err    modelplane.Error `json:"error"`
}

func (e *apiError) Error() string {
	if e.Err.Field != "" {
		return fmt.Sprintf("%s (%d): %s: %s", e.Err.Code, e.Status, e.Err.Field, e.Err.Message)
	}
	return fmt.Sprintf("%s (%d): %s", e.Err.Code, e.Status, e.Err.Message)
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Err.Code == "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
}

func parseSteps(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("--steps: %q is not a number", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func promoteCmd(f *cliFlags) *cobra.Command {
	var (
		r                              modelplane.PromotionRequest
		steps, idem, output            string
		bake, monitor, approvalTimeout time.Duration
		watch                          bool
	)
	cmd := &cobra.Command{
		Use:     "promote",
		Short:   "Start a promotion",
		Example: "  modelplane promote --model churn --version 2 --target prod --strategy canary --steps 10,25,50,100 --bake 30s --watch",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			if r.Strategy.Steps, err = parseSteps(steps); err != nil {
				return err
			}
			r.Strategy.Bake, r.Strategy.MonitorWindow, r.ApprovalTimeout = modelplane.Duration(bake), modelplane.Duration(monitor), modelplane.Duration(approvalTimeout)
			var acc api.PromotionAccepted
			var hdr []string
			if idem != "" {
				hdr = []string{"Idempotency-Key", idem}
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/promotions", r, &acc, hdr...); err != nil {
				return err
			}
			if output == "id" {
				fmt.Fprintln(cmd.OutOrStdout(), acc.ID)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "promotion %s started (workflow %s)\n", acc.ID, acc.WorkflowID)
			}
			if watch {
				return watchPromotion(cmd.Context(), c, acc.ID, cmd.OutOrStdout())
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&r.Model, "model", "", "model name")
	fl.StringVar(&r.Version, "version", "", "version to promote")
	fl.StringVar(&r.Target, "target", "", "target name")
	fl.StringVar(&r.Strategy.Type, "strategy", "canary", "direct, canary, shadow or bluegreen")
	fl.StringVar(&steps, "steps", "", "canary weights, e.g. 10,25,50,100")
	fl.DurationVar(&bake, "bake", 0, "bake time per step (default 30s)")
	fl.DurationVar(&monitor, "monitor", 0, "watch window after 100% (default 10m)")
	fl.IntVar(&r.Strategy.ShadowPercent, "shadow-percent", 0, "shadow: share of requests mirrored (default 10)")
	fl.StringVar(&r.Strategy.Then, "then", "", "shadow: canary or direct afterwards")
	fl.DurationVar(&approvalTimeout, "approval-timeout", 0, "how long to wait for approvals (default 72h)")
	fl.StringVar(&idem, "idempotency-key", "", "retry-safe key: the same key returns the same promotion")
	fl.BoolVar(&watch, "watch", false, "follow progress until the promotion ends")
	fl.StringVarP(&output, "output", "o", "", "\"id\" prints only the promotion id")
	return cmd
}

func voteCmd(f *cliFlags, decision string) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   decision + " <promotion-id>",
		Short: strings.ToUpper(decision[:1]) + decision[1:] + " a promotion as the caller",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("")
			if err != nil {
				return err
			}
			var p modelplane.Promotion
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/promotions/"+args[0]+"/approvals", api.ApprovalRequest{Decision: decision, Comment: comment}, &p); err != nil {
				return err
			}
			quorum := fmt.Sprintf("%d required", p.RequiredApprovals)
			if p.Validation == nil {
				quorum = "quorum known after validation" // an early vote: the workflow counts it then
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s recorded on %s: %d vote(s), %s\n", decision, p.ID, len(p.Approvals), quorum)
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	return cmd
}

func rollbackCmd(f *cliFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "rollback <promotion-id>",
		Short: "Roll a promotion back now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/promotions/"+args[0]+"/rollback", api.RollbackRequest{Reason: reason}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rollback of %s requested\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}

func decideCmd(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "decide <promotion-id> promote|rollback",
		Short: "Resolve an inconclusive analysis",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("")
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), http.MethodPost, "/v1/promotions/"+args[0]+"/decision", api.DecisionRequest{Decision: args[1]}, nil)
		},
	}
}

func statusCmd(f *cliFlags) *cobra.Command {
	var watch, asJSON bool
	cmd := &cobra.Command{
		Use:   "status <promotion-id>",
		Short: "Show a promotion (--watch follows it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			if watch {
				return watchPromotion(cmd.Context(), c, args[0], cmd.OutOrStdout())
			}
			var p modelplane.Promotion
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/promotions/"+args[0], nil, &p); err != nil {
				return err
			}
			if asJSON {
				printJSON(cmd.OutOrStdout(), p)
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), progressLine(p))
			for _, h := range p.History {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s  %-18s %s\n", h.At.Format(time.TimeOnly), h.Stage, h.Note)
			}
			for _, a := range p.Approvals {
				fmt.Fprintf(cmd.OutOrStdout(), "  vote  %s %s via %s (%s)%s\n", a.Approver, a.Decision, a.Via, identityNote(a.Method), quoted(a.Comment))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow until the promotion ends")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole promotion as JSON")
	return cmd
}

func progressLine(p modelplane.Promotion) string {
	line := fmt.Sprintf("%s  %s@%s → %s  stage=%s status=%s", p.ID, p.Model, p.Version, p.Target, p.Stage, p.Status)
	if len(p.Traffic) > 0 {
		line += " traffic=" + p.Traffic.String()
	}
	if p.RequiredApprovals > 0 && p.Stage == modelplane.StageAwaitingApproval {
		line += fmt.Sprintf(" approvals=%d/%d", len(p.Approvals), p.RequiredApprovals)
	}
	if n := len(p.AnalysisResults); n > 0 {
		r := p.AnalysisResults[n-1]
		line += fmt.Sprintf(" analysis=%s:%s", r.Step, r.Phase)
	}
	if p.Reason != "" {
		line += "  (" + p.Reason + ")"
	}
	return line
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// watchPromotion polls until the promotion ends: one redrawn line on a TTY, a line per change otherwise.
func watchPromotion(ctx context.Context, c *apiClient, id string, out io.Writer) error {
	tty, last := isTTY(out), ""
	for {
		var p modelplane.Promotion
		if err := c.do(ctx, http.MethodGet, "/v1/promotions/"+id, nil, &p); err != nil {
			return err
		}
		line := progressLine(p)
		if line != last {
			if tty {
				fmt.Fprintf(out, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(out, line)
			}
			last = line
		}
		if modelplane.Terminal(p.Status) {
			if tty {
				fmt.Fprintln(out)
			}
			if p.Status != modelplane.StatusSucceeded {
				return fmt.Errorf("promotion %s ended %s", id, p.Status)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func modelsCmd(f *cliFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "models", Short: "Register and list models and versions"}
	var m modelplane.Model
	create := &cobra.Command{
		Use:   "create <name>",
		Short: "Register a model",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			m.Name = args[0]
			var out modelplane.Model
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/models", m, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "model %s registered (risk tier %s)\n", out.Name, out.RiskTier)
			return nil
		},
	}
	create.Flags().StringVar(&m.Owner, "owner", "", "owner (required)")
	create.Flags().StringVar(&m.Team, "team", "", "team (required)")
	create.Flags().StringVar((*string)(&m.RiskTier), "risk-tier", "", "low, medium, high or critical (required)")
	create.Flags().StringVar(&m.Description, "description", "", "what it does")

	var (
		uri, runID, source string
		metrics            map[string]string
	)
	addVersion := &cobra.Command{
		Use:   "add-version <model> <version>",
		Short: "Register a version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			req := map[string]any{"version": args[1], "artifact_uri": uri, "lineage": modelplane.Lineage{RunID: runID, Source: source}}
			ms := map[string]float64{}
			for k, v := range metrics {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return fmt.Errorf("--metric %s: %q is not a number", k, v)
				}
				ms[k] = x
			}
			req["metrics"] = ms
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/models/"+args[0]+"/versions", req, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version %s of %s registered\n", args[1], args[0])
			return nil
		},
	}
	addVersion.Flags().StringVar(&uri, "artifact-uri", "", "where the artifact lives (required)")
	addVersion.Flags().StringVar(&runID, "run-id", "", "training run id")
	addVersion.Flags().StringVar(&source, "source", "", "training source")
	addVersion.Flags().StringToStringVar(&metrics, "metric", nil, "offline metric, e.g. --metric auc=0.91")

	list := &cobra.Command{
		Use:   "list",
		Short: "List models",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var out struct{ Models []modelplane.Model }
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/models", nil, &out); err != nil {
				return err
			}
			for _, m := range out.Models {
				fmt.Fprintf(cmd.OutOrStdout(), "%-24s %-9s %-16s %s\n", m.Name, m.RiskTier, m.Team, m.Owner)
			}
			return nil
		},
	}
	cmd.AddCommand(create, addVersion, list)
	return cmd
}

func driftCmd(f *cliFlags) *cobra.Command {
	var d modelplane.DriftSignal
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Report drift for a model on a target",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/signals/drift", d, &out); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&d.Model, "model", "", "model")
	cmd.Flags().StringVar(&d.Target, "target", "", "target")
	cmd.Flags().StringVar(&d.Version, "version", "", "version (default: whatever serves)")
	cmd.Flags().StringVar(&d.Metric, "metric", "psi", "drift metric")
	cmd.Flags().Float64Var(&d.Score, "score", 0, "drift score")
	cmd.Flags().StringVar(&d.Source, "source", "cli", "who detected it")
	return cmd
}

// simCmd drives the dev simulator the way people outside modelplane would.
func simCmd(f *cliFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "sim", Short: "Dev mode: act on the simulated platform from outside modelplane"}
	var model, target, shadow string
	traffic := &cobra.Command{
		Use:   "traffic SPLIT",
		Short: `Change an endpoint's traffic by hand, as in a cloud console ("1=70,2=30"; "none" takes all traffic off)`,
		Example: `  modelplane sim traffic --model churn --target prod 1=70,2=30
  modelplane sim traffic --model churn --target prod 1=100 --shadow 2@10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			split := modelplane.TrafficSplit{}
			if args[0] != "none" {
				for _, kv := range strings.Split(args[0], ",") {
					v, w, ok := strings.Cut(kv, "=")
					n, err := strconv.Atoi(w)
					if !ok || v == "" || err != nil {
						return fmt.Errorf("split: %q is not VERSION=PERCENT", kv)
					}
					split[v] = n
				}
			}
			body["traffic"] = split
			if shadow != "" {
				v, p, ok := strings.Cut(shadow, "@")
				n, err := strconv.Atoi(p)
				if !ok || v == "" || err != nil {
					return fmt.Errorf("--shadow: %q is not VERSION@PERCENT", shadow)
				}
				body["shadow"] = modelplane.Shadow{Version: v, Percent: n}
			}
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var out map[string]any
			path := "/v1/sim/targets/" + url.PathEscape(target) + "/models/" + url.PathEscape(model) + "/traffic"
			if err := c.do(cmd.Context(), http.MethodPut, path, body, &out); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), out)
			return nil
		},
	}
	traffic.Flags().StringVar(&model, "model", "", "model")
	traffic.Flags().StringVar(&target, "target", "", "target")
	traffic.Flags().StringVar(&shadow, "shadow", "", "also mirror VERSION@PERCENT of requests")
	_ = traffic.MarkFlagRequired("model")
	_ = traffic.MarkFlagRequired("target")
	cmd.AddCommand(traffic)
	return cmd
}

// deploymentCmd shows what serves a model on a target and how the platform
// compares with it.
func deploymentCmd(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "deployment MODEL TARGET",
		Short: "What serves a model on a target, its guardian, and whether the platform still serves what was applied",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client("alice")
			if err != nil {
				return err
			}
			var g api.GuardianStatus
			path := "/v1/deployments/" + url.PathEscape(args[1]) + "/" + url.PathEscape(args[0]) + "/guardian"
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &g); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !g.Running {
				fmt.Fprintf(w, "%s on %s: no guardian (no promotion of it has finished there)\n", args[0], args[1])
				return nil
			}
			fmt.Fprintf(w, "%s on %s: stable %s, previous %s\n", args[0], args[1], g.Stable, nonEmptyStr(g.Previous, "none"))
			if p := g.Platform; p != nil {
				fmt.Fprintf(w, "platform: %s (checked %s)", p.Status, p.CheckedAt.Format(time.RFC3339))
				if p.FirstSeen != nil {
					fmt.Fprintf(w, ", first seen %s", p.FirstSeen.Format(time.RFC3339))
				}
				fmt.Fprintln(w)
				if p.Reason != "" {
					fmt.Fprintf(w, "  %s\n", p.Reason)
				}
				for _, d := range p.Diffs {
					fmt.Fprintf(w, "  %s: applied %s, serving %s\n", d.Field, d.Applied, d.Actual)
				}
			}
			return nil
		},
	}
}

func nonEmptyStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// identityNote says how a voter's identity was established, in words.
func identityNote(method string) string {
	switch method {
	case modelplane.AuthUI, "":
		return "unverified: a name typed in the Web UI"
	case modelplane.AuthSystem:
		return "modelplane"
	}
	return "verified by " + method
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(": %q", s)
}
