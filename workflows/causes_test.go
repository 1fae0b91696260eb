package workflows

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every rollback the workflows record names a typed cause: no string
// literal stands where a modelplane.RollbackCause goes, so the metrics and
// the console know every cause emitted (a string once made them miscount).
func TestRollbackCausesAreTyped(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Cause" {
					checked++
					if _, lit := n.Value.(*ast.BasicLit); lit {
						t.Errorf("%s: Cause is a string literal; use a modelplane.Cause… constant", fset.Position(n.Pos()))
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "rollback" && len(n.Args) > 1 {
					checked++
					if _, lit := n.Args[1].(*ast.BasicLit); lit {
						t.Errorf("%s: rollback cause is a string literal; use a modelplane.Cause… constant", fset.Position(n.Pos()))
					}
				}
			}
			return true
		})
	}
	if checked < 15 {
		t.Fatalf("found only %d rollback causes to check: has the code moved?", checked)
	}
}
