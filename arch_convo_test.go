package proactive_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// The conversation's files decide; devices writes. They reach the database
// only through devices' typed methods: no SQL of their own, no driver, no
// dialect. And Twilio's webhook protocol (signatures, forms, TwiML) lives
// in notify/twilio, so notify imports no Twilio package.
func TestConversationSpeaksNoSQL(t *testing.T) {
	backDoors := map[string]bool{"ExecContext": true, "QueryContext": true, "QueryRowContext": true, "Dialect": true}
	forbidden := map[string]bool{"database/sql": true, "github.com/twilio/twilio-go/client": true}
	for _, file := range []string{"notify/inbound.go", "notify/outreach.go", "notify/notify.go", "notify/decide.go", "notify/templates.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); forbidden[path] {
				t.Errorf("%s imports %s", file, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && backDoors[sel.Sel.Name] {
				t.Errorf("%s calls %s: write a typed method in devices instead", file, sel.Sel.Name)
			}
			return true
		})
	}
}
