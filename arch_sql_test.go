package proactive_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sqlText is what a string literal holding a SQL statement looks like.
var sqlText = regexp.MustCompile(`(?i)\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b`)

// influxQLHome is the directory whose SELECTs are InfluxQL, InfluxDB's
// query language, which reads like SQL; its other statements are still SQL.
var (
	influxQLHome   = "influx"
	sqlNotInfluxQL = regexp.MustCompile(`(?i)\b(INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b`)
)

// sqlDrivers are the imports that speak to a database.
var sqlDrivers = []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite"}

// sqlHomes are the directories whose code may speak SQL: the adapter, and
// the test environment that creates the tests' databases.
var sqlHomes = []string{"devices", filepath.Join("internal", "testenv")}

// SQL lives in devices only: no other package imports a database driver or
// database/sql, or holds SQL text (influx's SELECTs are InfluxQL). A consumer declares the small interface
// it needs, and devices implements it with typed methods.
func TestSQLOnlyInDevices(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			for _, h := range sqlHomes {
				if path == h {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, d := range sqlDrivers {
				if p == d || strings.HasPrefix(p, d+"/") {
					t.Errorf("%s imports %s: only devices speaks to the database", path, p)
				}
			}
		}
		re := sqlText
		if filepath.Dir(path) == influxQLHome {
			re = sqlNotInfluxQL
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := re.FindString(s); m != "" {
				t.Errorf("%s: SQL text (%q) outside devices: give devices a typed method", fset.Position(lit.Pos()), m)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
