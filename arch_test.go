package proactive_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/proactivehq/proactive"

// Data flows one way, ingest → rules → notify, and only cmd/proactive wires
// them: none of the three may import another, and the root package stays on
// the standard library.
func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	forbidden := map[string][]string{
		"ingest": {"rules", "notify"},
		"rules":  {"ingest", "notify"},
		"notify": {"ingest", "rules"},
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	seen := 0
	for {
		var p struct {
			ImportPath string
			Standard   bool
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.ImportPath == module {
			seen++
			for _, d := range p.Deps {
				if !isStandard(d) {
					t.Errorf("root package imports %s: it must use the standard library only", d)
				}
			}
		}
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue
		}
		top, _, _ := strings.Cut(rel, "/")
		for _, f := range forbidden[top] {
			for _, d := range p.Deps {
				if d == module+"/"+f || strings.HasPrefix(d, module+"/"+f+"/") {
					t.Errorf("%s imports %s: ingest, rules and notify must not import one another", p.ImportPath, d)
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if seen != 1 {
		t.Fatalf("go list did not list the root package")
	}
}

func isStandard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
