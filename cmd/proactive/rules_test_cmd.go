package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/proactivehq/proactive/rules"
)

// rulesTest is `proactive rules test [-v] FILE...`: it runs rule unit tests
// (rules.RunTestFile) and prints, per file and test, ok or FAIL with the
// differences between the alerts the rules gave and the expected ones. It
// returns an error when a test failed or a file could not run.
func rulesTest(args []string, e env) error {
	fs := flag.NewFlagSet("proactive rules test", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "list every alert of every test, with its time and time to failure")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: proactive rules test [-v] FILE_test.yaml...")
		fmt.Fprintln(fs.Output(), "Runs rule unit tests; rules/examples/README.md describes their format.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: proactive rules test [-v] FILE_test.yaml...")
	}
	files, err := expandArgs(fs.Args())
	if err != nil {
		return err
	}
	return rules.RunTestFiles(e.stdout, files, *verbose)
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
