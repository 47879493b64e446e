package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/rules"
)

// TestExamples runs the unit tests of the example rules,
// rules/examples/*_test.yaml, as `proactive rules test` would.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("examples/*_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d example test files, want one per example rule file", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rep, err := rules.RunTestFile(f)
			if err != nil {
				t.Fatalf("cannot run:\n%v", err)
			}
			for _, res := range rep.Tests {
				if !res.Passed() {
					t.Errorf("%s:%d: FAIL %s\n\t%s", f, res.Line, res.Name, strings.Join(res.Diff, "\n\t"))
				}
			}
		})
	}
}

// TestExampleRulesCheck loads every example rule file, as `proactive rules
// check rules/examples/*.yaml` does, and wants each to have a test file.
func TestExampleRulesCheck(t *testing.T) {
	specs, probs := rules.LoadFiles([]string{"examples/*.yaml"})
	if len(probs) == 0 {
		_, probs = rules.Compile(specs)
	}
	if len(probs) > 0 {
		t.Fatalf("problems:\n%v", probs)
	}
	files, _ := filepath.Glob("examples/*.yaml")
	for _, f := range files {
		if rules.IsTestFile(f) {
			continue
		}
		test := strings.TrimSuffix(f, ".yaml") + "_test.yaml"
		if err := rules.CheckTestFile(test); err != nil {
			t.Errorf("%s has no working test file %s: %v", f, test, err)
		}
	}
}
