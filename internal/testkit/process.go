package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelplane/modelplane/temporalserver"
)

// FreePorts finds n consecutive free loopback ports and returns the first.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := 20000 + rand.IntN(30000)
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}

// Proc is a child process whose output is kept for failure reports.
type Proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

// Start runs bin with args until the test ends (killed if still running).
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(bin, args...)}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		pw.Close()
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.Output())
		}
	})
	return p
}

// Output is what the process printed so far.
func (p *Proc) Output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// Interrupt sends SIGINT and waits for a clean exit.
func (p *Proc) Interrupt(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("process exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("process did not stop on SIGINT")
	}
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HTTPJSON sends body as JSON with a bearer token and decodes the answer into out; 0 means no answer.
func HTTPJSON(t testing.TB, method, url, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return res.StatusCode
}

// BuildBinary compiles ./cmd/modelplane (relative to the module root given) into dir.
func BuildBinary(moduleRoot, dir string) (string, error) {
	bin := dir + "/modelplane"
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/modelplane")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
}

// DevTokens reads the tokens file `modelplane dev` writes ("name role
// token [teams]" per line, # comments) into name → token.
func DevTokens(t testing.TB, path string) map[string]string {
	t.Helper()
	return devColumn(t, path, 2)
}

// DevPasswords reads the dev Web UI passwords ("name password" lines).
func DevPasswords(t testing.TB, path string) map[string]string {
	t.Helper()
	return devColumn(t, path, 1)
}

// devColumn maps the first field of each line of path to its field i.
func devColumn(t testing.TB, path string, i int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > i && !strings.HasPrefix(f[0], "#") {
			out[f[0]] = f[i]
		}
	}
	return out
}

// Dev is where a `modelplane dev` started with DevArgs listens.
type Dev struct {
	Temporal, API, UI, IdP string // host:port for Temporal, URLs for the rest
}

// DevPorts is how many consecutive ports DevArgs uses: Temporal's services
// first, then the API, the Web UI and the sign-in provider.
var DevPorts = temporalserver.Ports + 3

// DevArgs are the arguments of `modelplane dev` on dir with every port
// taken from base (see FreePorts(t, DevPorts)), and where it will listen.
func DevArgs(dir string, base int) ([]string, Dev) {
	p := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", base+i) }
	n := temporalserver.Ports
	d := Dev{Temporal: p(0), API: "http://" + p(n), UI: "http://" + p(n+1), IdP: "http://" + p(n+2)}
	return []string{"dev", "--data-dir", dir, "--temporal-port", fmt.Sprint(base), "--api-addr", p(n),
		"--ui-port", fmt.Sprint(base + n + 1), "--idp-addr", p(n + 2)}, d
}
