package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/proactivehq/proactive/internal/cli"

	"github.com/proactivehq/proactive/rules"
)

// rulesCmd is `proactive rules check|test|backtest`.
var rulesUsage = helpText("rules")

func rulesCmd(ctx context.Context, e env) error {
	if len(e.args) == 0 {
		io.WriteString(e.stderr, rulesUsage)
		return errors.New("rules: want a subcommand: check, test or backtest")
	}
	sub, rest := e.args[0], e.args[1:]
	switch {
	case cli.IsHelp(sub):
		return cli.Help(e.stdout, rulesUsage)
	}
	switch sub {
	case "check":
		return rulesCheck(rest, e)
	case "test":
		return rulesTest(rest, e)
	case "backtest":
		return rulesBacktest(ctx, rest, e)
	}
	return fmt.Errorf("rules: unknown subcommand %q: want check, test or backtest", sub)
}

// rulesCheck loads and compiles rule files without running them, and prints
// every problem with its file and line.
func rulesCheck(args []string, e env) error {
	fs := flag.NewFlagSet("proactive rules check", flag.ContinueOnError)
	fs.Usage = func() {
		io.WriteString(fs.Output(), "usage: proactive rules check FILE...\nChecks rule files and rule test files (NAME_test.yaml) without running them.\n")
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: proactive rules check FILE...")
	}
	n, tests, probs := rules.CheckFiles(fs.Args())
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(e.stderr, p.Error())
		}
		return fmt.Errorf("%d problem(s) in the rules", len(probs))
	}
	fmt.Fprintf(e.stdout, "%d rule(s) OK\n", n)
	if tests > 0 {
		fmt.Fprintf(e.stdout, "%d rule test file(s) OK\n", tests)
	}
	return nil
}
