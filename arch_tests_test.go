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

// Tests wait for conditions (testenv.Eventually, a channel, a settable
// clock), not for time to pass: a fixed sleep is either too short on a
// loaded CI machine or wasted everywhere else. A test that truly cannot
// await anything says why in a comment on the sleep's line or the line
// above.
func TestTestsDoNotSleepUnexplained(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		commented := map[int]bool{} // lines on which a comment ends
		for _, g := range f.Comments {
			commented[fset.Position(g.End()).Line] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Sleep" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "time" {
				return true
			}
			if line := fset.Position(call.Pos()).Line; !commented[line] && !commented[line-1] {
				t.Errorf("%s:%d: time.Sleep in a test: await a condition (testenv.Eventually, a channel, testenv.Clock), "+
					"or say in a comment on that line or the one above why none can be awaited", path, line)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("found %d test files: is the test running at the repository root?", files)
	}
}
