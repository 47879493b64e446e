package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runRules runs `proactive rules ARGS...` and returns its outputs.
func runRules(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	noEnv := func(string) string { return "" }
	err = run(t.Context(), append([]string{"proactive", "rules"}, args...), noEnv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustGlob expands pattern as a shell would.
func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("glob %s: %v files, error %v", pattern, len(files), err)
	}
	return files
}

func TestRulesCmdCheckExamples(t *testing.T) {
	files := mustGlob(t, "../../rules/examples/*.yaml") // rules and their tests
	stdout, stderr, err := runRules(t, append([]string{"check"}, files...)...)
	if err != nil {
		t.Fatalf("rules check: %v\n%s", err, stderr)
	}
	if want := "10 rule(s) OK\n9 rule test file(s) OK\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestRulesCmdTestExamples(t *testing.T) {
	stdout, stderr, err := runRules(t, append([]string{"test"}, mustGlob(t, "../../rules/examples/*_test.yaml")...)...)
	if err != nil {
		t.Fatalf("rules test: %v\n%s%s", err, stdout, stderr)
	}
	if strings.Contains(stdout, "FAIL") || !strings.HasSuffix(stdout, " rule test(s) passed\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

func TestRulesCmdTestFailureDiff(t *testing.T) {
	const file = "testdata/rules/hot_failing_test.yaml"
	stdout, _, err := runRules(t, "test", file)
	if err == nil || err.Error() != "1 of 2 rule test(s) failed" {
		t.Errorf("error %v, want 1 of 2 rule test(s) failed", err)
	}
	want := file + `
  ok    passes
  FAIL  fails (line 19)
        missing: at 1h10m hot fridge-1 firing (the nearest is at 1h35m)
        unexpected: at 1h35m hot fridge-1 firing, time_to_failure 15m
        wrong severity at 2h10m hot fridge-1 resolved: got warning, want critical
        wrong time_to_failure at 2h10m hot fridge-1 resolved: got 46m31s, want none
        wrong summary at 2h10m hot fridge-1 resolved: got "Cabinet at 4.0 °C", want it to contain "°F"
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	// The file itself is valid: rules check passes it.
	if _, stderr, err := runRules(t, "check", file); err != nil {
		t.Errorf("rules check %s: %v\n%s", file, err, stderr)
	}
}

func TestRulesCmdTestFileProblems(t *testing.T) {
	rulesFile, err := filepath.Abs("../../rules/examples/compressor_wear.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad_test.yaml")
	content := "rule_files: [" + rulesFile + "]\ntests:\n  - name: x\n    devices: {f1: {series: {compressor_current: \"4+\"}}}\n"
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	wantProblem := bad + `:4: series compressor_current: "4+": a step needs a count, like 4+x10`
	stdout, _, err := runRules(t, "test", bad)
	if err == nil || err.Error() != "1 rule test file(s) could not run" {
		t.Errorf("rules test: error %v, want 1 rule test file(s) could not run", err)
	}
	if want := bad + "\n  ERROR the file cannot run:\n        " + wantProblem + "\n"; stdout != want {
		t.Errorf("rules test stdout:\n%s\nwant:\n%s", stdout, want)
	}
	_, stderr, err := runRules(t, "check", bad)
	if err == nil || !strings.Contains(stderr, wantProblem) {
		t.Errorf("rules check: error %v, stderr:\n%s\nwant it to say %s", err, stderr, wantProblem)
	}
}
