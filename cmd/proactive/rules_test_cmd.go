package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/proactivehq/proactive/rules"
)

// rulesTest is `proactive rules test [-v] FILE...`: it runs rule unit tests
// (rules.RunTestFile) and prints, per file and test, ok or FAIL with the
// differences between the alerts the rules gave and the expected ones. It
// returns an error when a test failed or a file could not run.
func rulesTest(args []string, e env) error {
	fs := flag.NewFlagSet("proactive rules test", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	verbose := fs.Bool("v", false, "list every alert of every test, with its time and time to failure")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: proactive rules test [-v] FILE_test.yaml...")
		fmt.Fprintln(e.stderr, "Runs rule unit tests; rules/examples/README.md describes their format.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: proactive rules test [-v] FILE_test.yaml...")
	}
	files, err := expandArgs(fs.Args())
	if err != nil {
		return err
	}
	var passed, failed, broken int
	for _, f := range files {
		fmt.Fprintln(e.stdout, f)
		rep, err := rules.RunTestFile(f)
		if err != nil {
			broken++
			fmt.Fprintln(e.stdout, "  ERROR the file cannot run:")
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(e.stdout, "        "+line)
			}
			continue
		}
		for _, t := range rep.Tests {
			if t.Passed() {
				passed++
				fmt.Fprintf(e.stdout, "  ok    %s\n", t.Name)
			} else {
				failed++
				fmt.Fprintf(e.stdout, "  FAIL  %s (line %d)\n", t.Name, t.Line)
				for _, d := range t.Diff {
					fmt.Fprintf(e.stdout, "        %s\n", d)
				}
			}
			if *verbose {
				for _, a := range t.Alerts {
					extra := ""
					if a.TimeToFailure > 0 {
						extra = ", time_to_failure " + rules.FormatDuration(a.TimeToFailure.Round(time.Second))
					}
					fmt.Fprintf(e.stdout, "        | %s%s: %s\n", a, extra, a.Summary)
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
	fmt.Fprintf(e.stdout, "%d rule test(s) passed\n", passed)
	return nil
}

// expandArgs expands the arguments that are glob patterns (for shells that
// do not) and keeps the others as they are.
func expandArgs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if !strings.ContainsAny(a, "*?[") {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(a)
		if err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", a, err)
		}
		out = append(out, m...)
	}
	return out, nil
}

// checkRuleTestFiles checks the rule test files among the arguments of
// `proactive rules check` (rules.IsTestFile: NAME_test.yaml), so that
// `rules check dir/*.yaml` covers rules and their tests. It returns the
// other arguments, the rule files, and the test files' problems.
func checkRuleTestFiles(args []string) (ruleFiles []string, tests int, probs rules.Problems) {
	for _, a := range args {
		if !rules.IsTestFile(a) || strings.ContainsAny(a, "*?[") {
			ruleFiles = append(ruleFiles, a)
			continue
		}
		tests++
		if err := rules.CheckTestFile(a); err != nil {
			var ps rules.Problems
			if errors.As(err, &ps) {
				probs = append(probs, ps...)
			} else {
				probs = append(probs, rules.Problem{File: a, Msg: err.Error()})
			}
		}
	}
	return ruleFiles, tests, probs
}

// mergeProblems appends to ps the problems of more it does not hold yet: a
// broken rule file named both as an argument and by a test file is
// reported once.
func mergeProblems(ps, more rules.Problems) rules.Problems {
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
