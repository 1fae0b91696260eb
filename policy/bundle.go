package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"sigs.k8s.io/yaml"

	"github.com/modelplane/modelplane"
)

//go:embed default
var defaultBundle embed.FS

// DefaultFS is the built-in policy bundle: *.rego files and data.json.
func DefaultFS() fs.FS {
	sub, err := fs.Sub(defaultBundle, "default")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// WriteDefault writes the built-in bundle into dir, to start a custom policy
// from. It refuses to overwrite existing files so a customised policy is
// never lost.
func WriteDefault(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := DefaultFS()
	return fs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == "." {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("policy: %s already exists; not overwriting it", dst)
			}
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// bundle is the policy-relevant content of a directory.
type bundle struct {
	source string            // directory, or "built-in" for DefaultFS
	files  map[string][]byte // slash path → content
	hash   string            // hex sha256 over names and contents
}

func (e *Engine) read() (*bundle, error) {
	if e.dir == "" {
		return readBundle(DefaultFS(), "built-in")
	}
	return readBundle(os.DirFS(e.dir), e.dir)
}

// isPolicyFile says which files make up a bundle: everything else (README,
// editor backups) is ignored and does not change the version.
func isPolicyFile(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, ".rego") || base == "data.json" || base == "data.yaml" || base == "data.yml"
}

func readBundle(fsys fs.FS, source string) (*bundle, error) {
	b := &bundle{source: source, files: map[string][]byte{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Hidden entries are skipped: .git, editor swap files, and the
		// ..data directories Kubernetes uses behind ConfigMap symlinks.
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isPolicyFile(name) {
			return nil
		}
		content, err := fs.ReadFile(fsys, name) // follows symlinks
		if err != nil {
			return err
		}
		b.files[name] = content
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", source, err)
	}
	names := b.names()
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".rego") }) {
		return nil, fmt.Errorf("policy: %s has no .rego files", source)
	}
	h := sha256.New()
	for _, n := range names {
		// Name and length delimit each file so no two bundles hash alike.
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b.files[n]))
		h.Write(b.files[n])
	}
	b.hash = hex.EncodeToString(h.Sum(nil))
	return b, nil
}

func (b *bundle) names() []string {
	names := make([]string, 0, len(b.files))
	for n := range b.files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (b *bundle) version() string { return "sha256:" + b.hash[:12] }

// display names a file in error messages the way the operator knows it.
func (b *bundle) display(name string) string {
	if b.source == "built-in" {
		return "default/" + name
	}
	return filepath.Join(b.source, filepath.FromSlash(name))
}

// Builtins a policy may not call: decisions sit on every request's path and
// must be fast and depend only on their input and data.
var unsafeBuiltins = map[string]struct{}{
	"http.send":          {},
	"net.lookup_ip_addr": {},
	"opa.runtime":        {},
}

func (b *bundle) parse() (map[string]*ast.Module, error) {
	mods := map[string]*ast.Module{}
	var errs []error
	for _, n := range b.names() {
		if !strings.HasSuffix(n, ".rego") {
			continue
		}
		m, err := ast.ParseModuleWithOpts(b.display(n), string(b.files[n]), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mods[b.display(n)] = m
	}
	return mods, errors.Join(errs...)
}

// data merges the bundle's data files; a file in directory a/b is the
// document data.a.b, as in OPA bundles.
func (b *bundle) data() (map[string]any, error) {
	root := map[string]any{}
	for _, n := range b.names() {
		if strings.HasSuffix(n, ".rego") {
			continue
		}
		raw := b.files[n]
		if !strings.HasSuffix(n, ".json") {
			var err error
			if raw, err = yaml.YAMLToJSON(raw); err != nil {
				return nil, fmt.Errorf("%s: %w", b.display(n), err)
			}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // keep numbers exact, as OPA does
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: must hold one JSON object: %w", b.display(n), err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("%s: must hold one JSON object", b.display(n))
		}
		at := root
		if dir := path.Dir(n); dir != "." {
			for _, key := range strings.Split(dir, "/") {
				next, ok := at[key].(map[string]any)
				if !ok {
					if _, taken := at[key]; taken {
						return nil, fmt.Errorf("%s: data.%s is already a value", b.display(n), strings.ReplaceAll(dir, "/", "."))
					}
					next = map[string]any{}
					at[key] = next
				}
				at = next
			}
		}
		if err := merge(at, doc, path.Dir(n)); err != nil {
			return nil, fmt.Errorf("%s: %w", b.display(n), err)
		}
	}
	return root, nil
}

// merge adds src into dst; two files may not set the same value.
func merge(dst, src map[string]any, at string) error {
	for k, v := range src {
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		vm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("key %s is set by two data files", strings.TrimPrefix(at+"/"+k, "./"))
		}
		if err := merge(om, vm, at+"/"+k); err != nil {
			return err
		}
	}
	return nil
}

// compile prepares the decision query and runs the self-test.
func (e *Engine) compile(ctx context.Context, b *bundle) (*compiled, error) {
	wrap := func(err error) error { return fmt.Errorf("policy %s: %w", b.source, err) }
	mods, err := b.parse()
	if err != nil {
		return nil, wrap(err)
	}
	data, err := b.data()
	if err != nil {
		return nil, wrap(err)
	}
	// The bundle's own Rego tests run against the bundle's data; the
	// operator's settings then win over it for live decisions.
	testData := data
	if len(e.overrides) > 0 {
		if testData, err = b.data(); err != nil {
			return nil, wrap(err)
		}
		for k, v := range e.overrides {
			data[k] = v
		}
	}
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.SetRegoVersion(ast.RegoV1),
		rego.UnsafeBuiltins(unsafeBuiltins),
		// AST values on read spare converting data.json on every decision.
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
	}
	for _, m := range mods {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	opts[0] = rego.Query(ToolQuery)
	tq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	if err := selfTest(ctx, pq); err != nil {
		return nil, wrap(err)
	}
	if err := runRegoTests(ctx, mods, testData); err != nil {
		return nil, wrap(err)
	}
	doc, err := ast.InterfaceToValue(data)
	if err != nil {
		return nil, wrap(err)
	}
	return &compiled{query: pq, tool: tq, version: b.version(), hash: b.hash, loadedAt: e.now().UTC(),
		cache: newDecisionCache(e.cacheSize), data: rego.EvalBaseCache(dataDoc{doc})}, nil
}

// dataDoc answers OPA's reads of base documents (data.roles,
// data.approvals, …) from the policy's data, converted once when the
// policy loads. OPA otherwise reads each from the store and caches it per
// decision, a fifth of an evaluated decision's allocations. The data never
// changes under a loaded policy (a change is a new policy), so every
// decision can share it. What it cannot place (a ref with a variable in
// it) it leaves to the store, as before, and so the whole of data, which
// the store hands over without its system key.
type dataDoc struct{ root ast.Value }

func (d dataDoc) Get(ref ast.Ref) ast.Value {
	if len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	v := d.root
	for _, t := range ref[1:] {
		var next *ast.Term
		switch x := v.(type) {
		case ast.Object:
			next = x.Get(t)
		case *ast.Array:
			next = x.Get(t)
		}
		if next == nil {
			return nil
		}
		v = next.Value
	}
	return v
}

// Put keeps nothing: Get already holds all the data.
func (dataDoc) Put(ast.Ref, ast.Value) {}

// selfTest asks about every action: each answer must be undefined or a
// well-formed decision, and at least one must be defined. This catches a
// policy that would fail or deny everything at run time before it goes live.
func selfTest(ctx context.Context, pq rego.PreparedEvalQuery) error {
	at := time.Date(2026, 1, 6, 10, 0, 0, 0, time.UTC)
	defined := false
	for _, a := range Actions {
		in := Input{
			Action: a,
			Caller: modelplane.Principal{Name: "self-test-admin", Teams: []string{"self-test"},
				Roles: []string{modelplane.RoleAdmin}, Method: modelplane.AuthOIDC},
			Asset: Asset{Kind: KindModel, Name: "self-test", Owner: "self-test-owner", Team: "self-test",
				RiskTier: "high", Version: "v1", Metrics: map[string]float64{"accuracy": 0.9}},
			Target:    &TargetInfo{Name: "self-test", Environment: "production", Provider: "sim"},
			Promotion: &modelplane.PolicyPromotion{ID: "self-test", RequestedBy: "self-test-requester", Stage: "awaiting_approval"},
			Time:      at,
		}
		v, err := inputValue(in)
		if err != nil {
			return err
		}
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(at))
		if err != nil {
			return fmt.Errorf("self-test %s: %w", a, err)
		}
		if len(rs) == 0 || len(rs[0].Expressions) == 0 {
			continue
		}
		if _, err := parseDecision(rs[0].Expressions[0].Value); err != nil {
			return fmt.Errorf("self-test %s: %w", a, err)
		}
		defined = true
	}
	if !defined {
		return errNoDecision
	}
	return nil
}

// runRegoTests runs the bundle's test_* rules, if any, and fails on any
// failure: a policy shipped with tests should not go live with them broken.
func runRegoTests(ctx context.Context, mods map[string]*ast.Module, data map[string]any) error {
	has := false
	for _, m := range mods {
		for _, r := range m.Rules {
			if strings.HasPrefix(r.Head.Ref()[0].Value.String(), "test_") {
				has = true
			}
		}
	}
	if !has {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))).
		SetModules(mods).
		CapturePrintOutput(false).
		SetTimeout(5*time.Second).
		RunTests(ctx, nil)
	if err != nil {
		return fmt.Errorf("rego tests: %w", err)
	}
	var failed []string
	for r := range ch {
		switch {
		case r.Error != nil:
			failed = append(failed, fmt.Sprintf("%s.%s (%s): %v", r.Package, r.Name, r.Location, r.Error))
		case r.Fail:
			failed = append(failed, fmt.Sprintf("%s.%s (%s) failed", r.Package, r.Name, r.Location))
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("rego tests failed: %s", strings.Join(failed, "; "))
	}
	return nil
}
