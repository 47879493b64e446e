package rules

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// RunTestFiles runs the rule test files (RunTestFile) and prints to w, per
// file and test, ok or FAIL with the differences between the alerts the
// rules gave and the expected ones; verbose lists every alert of every
// test. It returns an error when a test failed, a file could not run, or
// there was no test.
func RunTestFiles(w io.Writer, files []string, verbose bool) error {
	var passed, failed, broken int
	for _, f := range files {
		fmt.Fprintln(w, f)
		rep, err := RunTestFile(f)
		if err != nil {
			broken++
			fmt.Fprintln(w, "  ERROR the file cannot run:")
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(w, "        "+line)
			}
			continue
		}
		for _, t := range rep.Tests {
			if t.Passed() {
				passed++
				fmt.Fprintf(w, "  ok    %s\n", t.Name)
			} else {
				failed++
				fmt.Fprintf(w, "  FAIL  %s (line %d)\n", t.Name, t.Line)
				for _, d := range t.Diff {
					fmt.Fprintf(w, "        %s\n", d)
				}
			}
			if verbose {
				for _, a := range t.Alerts {
					extra := ""
					if a.TimeToFailure > 0 {
						extra = ", time_to_failure " + proactive.FormatDuration(a.TimeToFailure.Round(time.Second))
					}
					fmt.Fprintf(w, "        | %s%s: %s\n", a, extra, a.Summary)
				}
			}
		}
	}
	var msgs []string
	if failed > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d rule test(s) failed", failed, failed+passed))
	}
	if broken > 0 {
		msgs = append(msgs, fmt.Sprintf("%d rule test file(s) could not run", broken))
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	if passed == 0 {
		return errors.New("no rule tests found")
	}
	fmt.Fprintf(w, "%d rule test(s) passed\n", passed)
	return nil
}

// CheckFiles loads and compiles the rule files among args and checks the
// rule test files among them (IsTestFile), so that `proactive rules check
// dir/*.yaml` covers rules and their tests. It returns how many rules and
// test files it read, and every problem once: a broken rule file named both
// as an argument and by a test file is reported once.
func CheckFiles(args []string) (rules, tests int, probs Problems) {
	files, tests, testProbs := checkTestFiles(args)
	specs, probs := LoadFiles(files)
	if len(probs) == 0 {
		_, probs = Compile(specs)
	}
	return len(specs), tests, mergeProblems(probs, testProbs)
}

// checkTestFiles checks the rule test files among args (IsTestFile:
// NAME_test.yaml). It returns the other arguments, the rule files, and the
// test files' problems.
func checkTestFiles(args []string) (ruleFiles []string, tests int, probs Problems) {
	for _, a := range args {
		if !IsTestFile(a) || strings.ContainsAny(a, "*?[") {
			ruleFiles = append(ruleFiles, a)
			continue
		}
		tests++
		if err := CheckTestFile(a); err != nil {
			var ps Problems
			if errors.As(err, &ps) {
				probs = append(probs, ps...)
			} else {
				probs = append(probs, Problem{File: a, Msg: err.Error()})
			}
		}
	}
	return ruleFiles, tests, probs
}

// mergeProblems appends to ps the problems of more it does not hold yet: a
// broken rule file named both as an argument and by a test file is
// reported once.
func mergeProblems(ps, more Problems) Problems {
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Error()] = true
	}
	for _, p := range more {
		if s := p.Error(); !seen[s] {
			seen[s] = true
			ps = append(ps, p)
		}
	}
	return ps
}
