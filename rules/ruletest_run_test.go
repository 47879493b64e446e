package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/rules"
)

// The examples' rules check clean and their tests pass; a test file that
// cannot run is reported and fails the run.
func TestRunAndCheckFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no examples", err)
	}
	n, tests, probs := rules.CheckFiles(files)
	if len(probs) > 0 || n == 0 || tests == 0 {
		t.Fatalf("check: %d rules, %d test files, problems %v", n, tests, probs)
	}
	var tf []string
	for _, f := range files {
		if rules.IsTestFile(f) {
			tf = append(tf, f)
		}
	}
	var out strings.Builder
	if err := rules.RunTestFiles(&out, tf, true); err != nil || !strings.Contains(out.String(), "rule test(s) passed") {
		t.Errorf("run: %v\n%s", err, out.String())
	}
	out.Reset()
	err = rules.RunTestFiles(&out, []string{filepath.Join(t.TempDir(), "missing_test.yaml")}, false)
	if err == nil || !strings.Contains(err.Error(), "1 rule test file(s) could not run") || !strings.Contains(out.String(), "ERROR the file cannot run") {
		t.Errorf("missing file: %v\n%s", err, out.String())
	}
}
