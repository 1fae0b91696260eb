package registrytest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/modelplane/modelplane/internal/registrytest"
)

func TestMain(m *testing.M) { os.Exit(registrytest.Main(m)) }

func publish(t *testing.T, reg *registrytest.Registry, token, name string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"$schema":     "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
		"name":        name,
		"description": "registrytest smoke server",
		"version":     "1.0.0",
		"remotes":     []map[string]string{{"type": "streamable-http", "url": "https://" + name[:len(name)-len("/smoke")] + ".example.com/mcp"}},
	})
	req, _ := http.NewRequest(http.MethodPost, reg.URL+"/v0/publish", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRegistryAcceptsMintedTokens(t *testing.T) {
	reg := registrytest.Start(t)
	t.Logf("registry %s started in %s", reg.URL, reg.StartupTime)
	ns := reg.Namespace(t)
	name := ns + "/smoke"

	if got := publish(t, reg, reg.Token("com.example.other"), name); got != http.StatusForbidden {
		t.Fatalf("publish with another namespace's token: status %d, want 403", got)
	}
	if got := publish(t, reg, reg.TokenFor(time.Now().Add(-time.Minute), ns), name); got != http.StatusUnauthorized {
		t.Fatalf("publish with an expired token: status %d, want 401", got)
	}
	if got := publish(t, reg, reg.Token(ns, "publish"), name); got != http.StatusOK {
		t.Fatalf("publish with a minted token: status %d, want 200", got)
	}
}
