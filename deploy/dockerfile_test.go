package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instr is one Dockerfile instruction with its continuation lines joined.
type instr struct {
	cmd   string   // upper case: FROM, RUN, ...
	flags []string // leading --flag[=value] words
	args  string   // the rest, as written
	line  int
}

// parseDockerfile handles what our Dockerfile uses: comments, parser
// directives, backslash continuations and leading --flags. (The BuildKit
// parser is not a dependency of this module and must not become one.)
func parseDockerfile(src string) []instr {
	var out []instr
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // comments are dropped even inside a continuation, as Docker does
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			continue
		}
		cmd, rest, _ := strings.Cut(text, " ")
		in := instr{cmd: strings.ToUpper(cmd), line: start}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			f, r, _ := strings.Cut(rest, " ")
			in.flags = append(in.flags, f)
			rest = strings.TrimSpace(r)
		}
		in.args = rest
		out = append(out, in)
	}
	return out
}

type stage struct {
	name, image string
	instrs      []instr
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// lintDockerfile returns every rule the Dockerfile breaks; goVersion is
// go.mod's go directive (the builder must provide at least that toolchain,
// since GOTOOLCHAIN=local never downloads one).
func lintDockerfile(src, goVersion string) []string {
	var problems []string
	bad := func(in instr, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("line %d (%s): %s", in.line, in.cmd, fmt.Sprintf(format, a...)))
	}
	// ARGs before the first FROM are in scope for FROM lines; BuildKit sets
	// the platform ones.
	globals := map[string]string{"BUILDPLATFORM": "linux/amd64", "TARGETPLATFORM": "linux/amd64"}
	var stages []*stage
	for _, in := range parseDockerfile(src) {
		switch {
		case in.cmd == "FROM":
			words := strings.Fields(in.args)
			st := &stage{image: argRef.ReplaceAllStringFunc(words[0], func(m string) string {
				if v, ok := globals[argRef.FindStringSubmatch(m)[1]]; ok {
					return v
				}
				return m
			})}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				st.name = words[2]
			}
			stages = append(stages, st)
			st.instrs = append(st.instrs, in)
		case len(stages) == 0:
			if in.cmd == "ARG" {
				k, v, _ := strings.Cut(in.args, "=")
				globals[k] = v
			}
		default:
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
		}
		if in.cmd == "ADD" {
			bad(in, "use COPY: ADD fetches URLs and unpacks archives implicitly")
			if regexp.MustCompile(`(?i)(https?://|git@|\.git\b)`).MatchString(in.args) {
				bad(in, "ADD of a URL: unpinned, unverified download")
			}
		}
	}
	if len(stages) < 2 {
		return append(problems, "not multi-stage: want a builder stage and a minimal final stage")
	}

	names := map[string]bool{}
	var builder *stage
	var binary string // the go build -o path
	for _, st := range stages {
		from := st.instrs[0]
		switch {
		case names[st.image]:
			// FROM an earlier stage.
		case st.image == "scratch":
		case strings.Contains(st.image, "$"):
			bad(from, "image %q has an unresolved variable (give the ARG a default)", st.image)
		default:
			ref := st.image
			if at := strings.Index(ref, "@"); at >= 0 {
				break // pinned by digest
			}
			slash := strings.LastIndex(ref, "/")
			colon := strings.LastIndex(ref, ":")
			if colon <= slash {
				bad(from, "image %q has no tag: pin one", ref)
			} else if tag := ref[colon+1:]; tag == "latest" {
				bad(from, "image %q uses the latest tag: pin a version", ref)
			}
		}
		if st.name != "" {
			names[st.name] = true
		}
		for _, in := range st.instrs {
			if in.cmd == "RUN" && regexp.MustCompile(`\bgo build\b`).MatchString(in.args) {
				builder = st
				if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(in.args); m != nil {
					binary = m[1]
				}
			}
		}
	}
	if builder == nil {
		return append(problems, "no stage runs go build")
	}
	final := stages[len(stages)-1]
	if final == builder {
		return append(problems, "the final stage is the builder: the toolchain would ship")
	}

	// --- builder ---
	bfrom := builder.instrs[0]
	if builder.name == "" {
		bad(bfrom, "builder stage needs a name (FROM ... AS build) for COPY --from")
	}
	if tag, ok := strings.CutPrefix(builder.image, "golang:"); !ok {
		bad(bfrom, "builder image %q is not golang:", builder.image)
	} else if !strings.HasPrefix(tag, goVersion) {
		bad(bfrom, "builder Go %q does not match go.mod's go %s (GOTOOLCHAIN=local cannot download one)", tag, goVersion)
	}
	cgoOff, modCache := false, false
	for _, in := range builder.instrs {
		if (in.cmd == "ENV" || in.cmd == "RUN") && regexp.MustCompile(`\bCGO_ENABLED=0\b`).MatchString(in.args) {
			cgoOff = true
		}
		if in.cmd != "RUN" {
			continue
		}
		mounts := strings.Join(in.flags, " ")
		if strings.Contains(mounts, "type=cache") && strings.Contains(mounts, "target=/go/pkg/mod") {
			modCache = true
		}
		if !regexp.MustCompile(`\bgo build\b`).MatchString(in.args) {
			continue
		}
		if !strings.Contains(mounts, "target=/root/.cache/go-build") {
			bad(in, "go build without the build cache mount (--mount=type=cache,target=/root/.cache/go-build)")
		}
		if !strings.Contains(in.args, "-trimpath") {
			bad(in, "go build without -trimpath (paths of the build machine leak into the binary)")
		}
		m := regexp.MustCompile(`-ldflags[= ]"([^"]*)"`).FindStringSubmatch(in.args)
		if m == nil || !strings.Contains(m[1], "-s") || !strings.Contains(m[1], "-w") {
			bad(in, `go build without -ldflags "-s -w" (unstripped binary)`)
		}
		if !strings.HasSuffix(strings.TrimSpace(in.args), "./cmd/modelplane") {
			bad(in, "go build does not build ./cmd/modelplane")
		}
	}
	if !cgoOff {
		bad(bfrom, "CGO_ENABLED=0 not set in the builder: the binary must be static for a libc-less image")
	}
	if !modCache {
		bad(bfrom, "no module cache mount (--mount=type=cache,target=/go/pkg/mod)")
	}

	// --- final stage ---
	ffrom := final.instrs[0]
	if final.image != "scratch" && !strings.HasPrefix(final.image, "gcr.io/distroless/static") {
		bad(ffrom, "final image %q is not distroless/static or scratch", final.image)
	}
	var user *instr
	var entrypoint *instr
	exposed := map[string]bool{}
	dest := ""
	for i, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = &final.instrs[i]
		case "ENTRYPOINT":
			entrypoint = &final.instrs[i]
		case "CMD":
			var v []string
			if json.Unmarshal([]byte(in.args), &v) != nil {
				bad(in, "CMD must be in exec form: the final image has no shell")
			}
		case "RUN":
			bad(in, "RUN in the final stage: it has no shell, and nothing should be built there")
		case "EXPOSE":
			for _, p := range strings.Fields(in.args) {
				exposed[strings.TrimSuffix(p, "/tcp")] = true
			}
		case "COPY":
			from := ""
			for _, f := range in.flags {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					from = v
				}
			}
			words := strings.Fields(in.args)
			switch {
			case from != builder.name:
				bad(in, "final-stage COPY not --from=%s: only the built binary belongs in the image", builder.name)
			case len(words) != 2 || words[0] != binary:
				bad(in, "final-stage COPY must copy only the binary %s, got %q", binary, in.args)
			default:
				dest = words[1]
			}
		}
	}
	if user == nil {
		bad(ffrom, "final stage has no USER: it would run as root")
	} else {
		uid, gid, hasGid := strings.Cut(user.args, ":")
		n, err := strconv.Atoi(uid)
		if err != nil {
			bad(*user, "USER %q is not numeric (runAsNonRoot cannot verify a name)", user.args)
		} else if n == 0 {
			bad(*user, "USER is root")
		}
		if hasGid {
			if _, err := strconv.Atoi(gid); err != nil {
				bad(*user, "USER group %q is not numeric", gid)
			}
		}
	}
	if entrypoint == nil {
		bad(ffrom, "no ENTRYPOINT")
	} else {
		var v []string
		if err := json.Unmarshal([]byte(entrypoint.args), &v); err != nil || len(v) == 0 {
			bad(*entrypoint, "ENTRYPOINT must be in exec form (JSON array): there is no shell")
		} else if dest != "" && v[0] != dest {
			bad(*entrypoint, "ENTRYPOINT runs %q, but the binary is copied to %q", v[0], dest)
		}
	}
	for _, p := range []string{"8080", "9090"} {
		if !exposed[p] {
			bad(ffrom, "port %s (API / worker metrics) not EXPOSEd", p)
		}
	}
	return problems
}

func TestDockerfile(t *testing.T) {
	src := string(read(t, "Dockerfile"))
	gov := goModVersion(t)
	expectNone(t, "Dockerfile", lintDockerfile(src, gov))

	// Negative controls: each broken copy must be caught, with the right complaint.
	for name, c := range map[string]struct{ old, new, want string }{
		"named user":         {"USER 65532:65532", "USER nonroot", "not numeric"},
		"root user":          {"USER 65532:65532", "USER 0", "root"},
		"no user":            {"USER 65532:65532", "", "no USER"},
		"latest tag":         {"static-debian12:nonroot", "static-debian12:latest", "latest"},
		"untagged":           {"static-debian12:nonroot", "static-debian12", "no tag"},
		"old go":             {"ARG GO_VERSION=" + gov, "ARG GO_VERSION=1.21", "go.mod"},
		"cgo on":             {"CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		"copy sources":       {"COPY --from=build /out/modelplane /modelplane", "COPY --from=build /src /src", "only the binary"},
		"copy from context":  {"COPY --from=build /out/modelplane /modelplane", "COPY . /", "--from=build"},
		"add url":            {"USER 65532:65532", "ADD https://example.com/tool.tar.gz /tool\nUSER 65532:65532", "URL"},
		"shell entrypoint":   {`ENTRYPOINT ["/modelplane"]`, "ENTRYPOINT /modelplane", "exec form"},
		"no trimpath":        {"-trimpath ", "", "-trimpath"},
		"unstripped":         {`-ldflags "-s -w"`, `-ldflags "-X main.v=1"`, "-s -w"},
		"no build cache":     {"--mount=type=cache,target=/root/.cache/go-build", "", "build cache"},
		"debian final image": {"gcr.io/distroless/static-debian12:nonroot", "debian:12.11", "not distroless"},
		"single stage":       {"FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/modelplane /modelplane", "", "not multi-stage"},
		"metrics port":       {"EXPOSE 8080 9090", "EXPOSE 8080", "9090"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			expectProblem(t, lintDockerfile(mustReplace(t, src, c.old, c.new), gov), c.want)
		})
	}
}

// TestDockerignore checks that the build context keeps every file the
// binary is built from (the packages ./cmd/modelplane depends on, their
// embedded files, go.mod and go.sum) and drops local state and secrets.
func TestDockerignore(t *testing.T) {
	patterns := dockerignorePatterns(string(read(t, ".dockerignore")))
	out, err := exec.Command("go", "list", "-e", "-deps",
		"-f", `{{if .Module}}{{if .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"../cmd/modelplane").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root(t), f)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files for ./cmd/modelplane; the check would prove nothing", len(needed))
	}
	check := func(patterns []string) (problems []string) {
		for _, f := range needed {
			if ignored(patterns, f) {
				problems = append(problems, f+" is needed by the build but excluded from the context")
			}
		}
		for _, f := range []string{".git/config", ".env", "bin/modelplane", ".modelplane/modelplane.db", "store/x.db"} {
			if !ignored(patterns, f) {
				problems = append(problems, f+" would be sent to the build context")
			}
		}
		return problems
	}
	expectNone(t, ".dockerignore", check(patterns))

	t.Run("negative/excludes a package", func(t *testing.T) {
		expectProblem(t, check(append(slices.Clone(patterns), "api")), "api/")
	})
	t.Run("negative/excludes go.sum", func(t *testing.T) {
		expectProblem(t, check(append(slices.Clone(patterns), "*.sum")), "go.sum")
	})
	t.Run("negative/keeps .env", func(t *testing.T) {
		var p []string
		for _, x := range patterns {
			if !strings.Contains(x, ".env") {
				p = append(p, x)
			}
		}
		expectProblem(t, check(p), ".env")
	})
	if _, err := os.Stat(filepath.Join(root(t), "Dockerfile")); err != nil {
		t.Fatal(err)
	}
}

func dockerignorePatterns(src string) []string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// ignored applies .dockerignore semantics: paths are relative to the
// context, a leading / is dropped, * and ? stay within one path element,
// ** spans any number, a match on a directory covers what is under it, and
// a later !pattern re-includes.
func ignored(patterns []string, path string) bool {
	res := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		p = filepath.ToSlash(filepath.Clean(p))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		}
		re.WriteString("(/.*)?$")
		if regexp.MustCompile(re.String()).MatchString(path) {
			res = !neg
		}
	}
	return res
}
