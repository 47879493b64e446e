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

// devices keeps no deprecated alias of a root name: its code, its tests and
// its consumers speak proactive.Ticket, proactive.Customer and the others.
func TestNoDeprecatedAliasInDevices(t *testing.T) {
	allowed := map[string]bool{}
	files, err := filepath.Glob(filepath.Join("devices", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			var groupDoc *ast.CommentGroup
			var specs []ast.Spec
			switch d := decl.(type) {
			case *ast.GenDecl:
				groupDoc, specs = d.Doc, d.Specs
			case *ast.FuncDecl:
				if d.Recv == nil && deprecated(d.Doc) {
					seen[d.Name.Name] = true
					if !allowed[d.Name.Name] {
						t.Errorf("%s: func %s is deprecated: remove it and use the root package's name", fset.Position(d.Pos()), d.Name.Name)
					}
				}
				continue
			}
			for _, spec := range specs {
				var names []*ast.Ident
				var doc *ast.CommentGroup
				switch s := spec.(type) {
				case *ast.TypeSpec:
					names, doc = []*ast.Ident{s.Name}, s.Doc
				case *ast.ValueSpec:
					names, doc = s.Names, s.Doc
				default:
					continue
				}
				if !deprecated(doc) && !deprecated(groupDoc) {
					continue
				}
				for _, n := range names {
					seen[n.Name] = true
					if !allowed[n.Name] {
						t.Errorf("%s: %s is a deprecated alias: remove it and use the root package's name", fset.Position(n.Pos()), n.Name)
					}
				}
			}
		}
	}
	for name := range allowed {
		if !seen[name] {
			t.Errorf("devices no longer declares the deprecated %s: drop it from the allowed list", name)
		}
	}
}

// deprecated reports whether a doc comment has a "Deprecated:" paragraph.
func deprecated(doc *ast.CommentGroup) bool {
	if doc == nil {
		return false
	}
	for _, line := range strings.Split(doc.Text(), "\n") {
		if strings.HasPrefix(line, "Deprecated:") {
			return true
		}
	}
	return false
}
