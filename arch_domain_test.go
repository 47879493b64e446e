package proactive_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// The root package is the one vocabulary: no other package declares its own
// Outcome, Ticket, Customer, Technician or Maintenance (a deprecated alias of
// the root's is allowed while the redesign merges), and no other package
// parses durations with time.ParseDuration, which knows neither days nor
// weeks: proactive.ParseDuration reads every duration.
func TestOneVocabulary(t *testing.T) {
	root := map[string]bool{"Outcome": true, "Ticket": true, "Customer": true, "Technician": true, "Maintenance": true}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Dir(path) == "." || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				if root[n.Name.Name] && !n.Assign.IsValid() {
					t.Errorf("%s: type %s: the root package declares it; use proactive.%s", fset.Position(n.Pos()), n.Name.Name, n.Name.Name)
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && n.Sel.Name == "ParseDuration" {
					t.Errorf("%s: time.ParseDuration: use proactive.ParseDuration, the platform's one duration grammar", fset.Position(n.Pos()))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
