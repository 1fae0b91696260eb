package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/modelplane/modelplane/providers/mcp"
)

// mcpCmd is the engineer's view of the MCP gateway: the tools it serves
// the caller and calls to them, with the caller's own API token. It
// registers the client flags (--api, --token, --as, --data-dir) itself, so
// add it to the root command, not to the list that gets cliFlags.add.
func mcpCmd() *cobra.Command {
	f := &cliFlags{}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "List and call the tools of MCP servers through the modelplane gateway",
		Long: "SERVER is <namespace>/<name>, optionally @CHANNEL (e.g. io.github.acme/notes@prod);\n" +
			"without a channel the gateway serves its default one.",
	}
	f.add(cmd)
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")

	tools := &cobra.Command{
		Use:   "tools SERVER[@CHANNEL]",
		Short: "List the tools the gateway serves you",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cs, done, err := mcpConnect(ctx, f, args[0])
			if err != nil {
				return err
			}
			defer done()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOOL\tHINT\tDESCRIPTION")
			n := 0
			for t, err := range cs.Tools(ctx, nil) {
				if err != nil {
					return fmt.Errorf("tools/list: %w", rpcMessage(err))
				}
				first, _, _ := strings.Cut(strings.TrimSpace(t.Description), "\n")
				fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, toolHint(t.Annotations), first)
				n++
			}
			if n == 0 {
				// The gateway lists only approved tools whose contract still holds.
				fmt.Fprintln(w, "(none: no approved tools are served to you right now)\t\t")
			}
			return w.Flush()
		},
	}

	var rawJSON string
	call := &cobra.Command{
		Use:   "call SERVER[@CHANNEL] TOOL [key=value | key:=json ...]",
		Short: "Call a tool and print its result",
		Long: "Arguments come from --json (an object) and then key=value pairs (string values)\n" +
			"or key:=json pairs (any JSON value, e.g. limit:=5), which override --json.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			arguments, err := toolArguments(rawJSON, args[2:])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cs, done, err := mcpConnect(ctx, f, args[0])
			if err != nil {
				return err
			}
			defer done()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: args[1], Arguments: arguments})
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], rpcMessage(err))
			}
			text := resultText(res)
			if res.IsError {
				return fmt.Errorf("%s failed: %s", args[1], text)
			}
			out := cmd.OutOrStdout()
			if text != "" {
				fmt.Fprintln(out, text)
			}
			// The SDK repeats structured content as text; print it once.
			if res.StructuredContent != nil && !sameJSON(text, res.StructuredContent) {
				printJSON(out, res.StructuredContent)
			}
			return nil
		},
	}
	call.Flags().StringVar(&rawJSON, "json", "", `arguments as a JSON object, e.g. '{"query": "billing"}'`)

	cmd.AddCommand(tools, call)
	return cmd
}

// mcpConnect opens a session to the gateway's route for target; done
// closes it.
func mcpConnect(ctx context.Context, f *cliFlags, target string) (*sdk.ClientSession, func(), error) {
	server, _, _ := strings.Cut(target, "@")
	if strings.Count(server, "/") != 1 || strings.HasPrefix(server, "/") || strings.HasSuffix(server, "/") {
		return nil, nil, fmt.Errorf("%q: SERVER is <namespace>/<name>[@channel], e.g. io.github.acme/notes@prod", target)
	}
	c, err := f.client("alice")
	if err != nil {
		return nil, nil, err
	}
	endpoint := c.base + "/mcp/" + target
	at := &gatewayAuth{token: c.token, next: http.DefaultTransport}
	client := sdk.NewClient(&sdk.Implementation{Name: "modelplane-cli", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: at}, // no client timeout: ctx bounds the command
		MaxRetries: -1,                          // a CLI reports, the engineer retries
		// Request and answer only: nothing to hear from the server between.
		DisableStandaloneSSE: true,
	}, &sdk.ClientSessionOptions{ProtocolVersion: mcp.ProtocolVersion})
	if err != nil {
		if refusal := at.refusal(); refusal != "" {
			return nil, nil, fmt.Errorf("%s: %s", endpoint, refusal)
		}
		return nil, nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	return cs, func() { _ = cs.Close() }, nil
}

// gatewayAuth sends the caller's token and keeps the gateway's last
// refusal, whose body says why (the SDK's error only names the status).
type gatewayAuth struct {
	token string
	next  http.RoundTripper

	mu   sync.Mutex
	last string
}

func (a *gatewayAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 || req.Method == http.MethodDelete {
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	why := strings.TrimSpace(string(body))
	if why == "" || why == http.StatusText(resp.StatusCode) {
		// A 401's reason is in its challenge.
		if _, d, ok := strings.Cut(resp.Header.Get("WWW-Authenticate"), `error_description="`); ok {
			why, _, _ = strings.Cut(d, `"`)
		}
	}
	if len(why) > 300 {
		why = why[:300] + "…"
	}
	last := fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if why != "" && why != http.StatusText(resp.StatusCode) {
		last += ": " + why
	}
	a.mu.Lock()
	a.last = last
	a.mu.Unlock()
	return resp, nil
}

func (a *gatewayAuth) refusal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// toolHint says what a tool may do by its annotations, with MCP's
// defaults: a tool not marked read-only may destroy.
func toolHint(a *sdk.ToolAnnotations) string {
	switch {
	case a != nil && a.ReadOnlyHint:
		return "read-only"
	case a != nil && a.DestructiveHint != nil && !*a.DestructiveHint:
		return "additive"
	}
	return "destructive"
}

// toolArguments merges --json with key=value (string) and key:=json pairs.
func toolArguments(raw string, pairs []string) (map[string]any, error) {
	args := map[string]any{}
	if strings.TrimSpace(raw) != "" {
		if err := json.Unmarshal([]byte(raw), &args); err != nil || args == nil {
			return nil, fmt.Errorf("--json must be a JSON object, got %s", raw)
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || k == ":" {
			return nil, fmt.Errorf("argument %q: want key=value or key:=json", p)
		}
		if name, isJSON := strings.CutSuffix(k, ":"); isJSON {
			var x any
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				return nil, fmt.Errorf("argument %s: %q is not JSON: %v", name, v, err)
			}
			args[name] = x
			continue
		}
		args[k] = v
	}
	return args, nil
}

// resultText is the result's content as text; what is not text is named.
func resultText(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts = append(parts, c.Text)
		case *sdk.ImageContent:
			parts = append(parts, fmt.Sprintf("[image %s, %d bytes]", c.MIMEType, len(c.Data)))
		case *sdk.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio %s, %d bytes]", c.MIMEType, len(c.Data)))
		case *sdk.ResourceLink:
			parts = append(parts, "[resource "+c.URI+"]")
		case *sdk.EmbeddedResource:
			if c.Resource != nil && c.Resource.Text != "" {
				parts = append(parts, c.Resource.Text)
			} else if c.Resource != nil {
				parts = append(parts, "[resource "+c.Resource.URI+"]")
			}
		}
	}
	return strings.Join(parts, "\n")
}

// sameJSON: text is v as JSON.
func sameJSON(text string, v any) bool {
	var t any
	return json.Unmarshal([]byte(text), &t) == nil && reflect.DeepEqual(t, v)
}

// rpcMessage reduces a JSON-RPC error to its message and code.
func rpcMessage(err error) error {
	var we *jsonrpc.Error
	if errors.As(err, &we) {
		return fmt.Errorf("%s (JSON-RPC error %d)", we.Message, we.Code)
	}
	return err
}
