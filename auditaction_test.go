package modelplane_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelplane/modelplane"
)

func TestAuditActionsAreDistinctAndNamed(t *testing.T) {
	seen := map[modelplane.AuditAction]bool{}
	for _, a := range modelplane.AuditActions {
		if seen[a] {
			t.Errorf("%q is listed twice", a)
		}
		seen[a] = true
		if a == "" || strings.ToLower(string(a)) != string(a) || strings.ContainsAny(string(a), " .-") {
			t.Errorf("%q: actions are lower_snake_case", a)
		}
	}
	if modelplane.AuditAction("stage_changed").Known() {
		t.Error("an action outside the set is known")
	}
}

// TestNoAuditActionIsSpelledOut reads every non-test Go file of the module
// and fails where an audit action is written as a string literal instead of
// one of the typed constants: in an AuditRecord's Action, in a comparison
// with a record's Action, or as the action argument of the helpers that
// build records. (Kit stores also check, at the end of every test, that each
// record written carries a known action.)
func TestNoAuditActionIsSpelledOut(t *testing.T) {
	known := map[string]bool{}
	for _, a := range modelplane.AuditActions {
		known[string(a)] = true
	}
	helpers := map[string]bool{"record": true, "audit": true, "add": true}
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == "auditaction.go" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		spelled := func(e ast.Expr, what string) {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return
			}
			if v, err := strconv.Unquote(lit.Value); err == nil && known[v] {
				t.Errorf("%s: %s %s: use the modelplane.AuditAction constant", fset.Position(lit.Pos()), what, lit.Value)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if !isAuditRecord(n.Type) {
					return true
				}
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Action" {
							spelled(kv.Value, "AuditRecord.Action")
						}
					}
				}
			case *ast.BinaryExpr:
				if n.Op != token.EQL && n.Op != token.NEQ {
					return true
				}
				for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
					if sel, ok := pair[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "Action" {
						spelled(pair[1], "a comparison with .Action")
					}
				}
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				if helpers[name] {
					for i, arg := range n.Args {
						if i > 1 {
							break
						}
						spelled(arg, name+"(…)")
					}
				}
				if name == "AuditAction" && len(n.Args) == 1 {
					spelled(n.Args[0], "a conversion to AuditAction")
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d files: the walk missed the module", files)
	}
}

func isAuditRecord(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "AuditRecord"
	case *ast.SelectorExpr:
		return e.Sel.Name == "AuditRecord"
	}
	return false
}
