// Package cli holds the command line's habits, so that every subcommand of
// proactive behaves as Go commands do: -h and --help print the usage on
// standard output and exit 0, a mistake is one line on standard error and
// exit 1, and `help TOPIC` is the same as `TOPIC -h`.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// IsHelp reports whether arg asks for help where a subcommand is expected.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// IsVersion reports whether arg asks for the version in place of a command.
func IsVersion(arg string) bool {
	return arg == "--version" || arg == "-version" || arg == "-v"
}

// Parse parses args into fs. Help (-h, --help) prints fs's usage to stdout
// and returns flag.ErrHelp, which main takes as success. Any other problem is
// returned as one error naming the command, and nothing is printed: the
// flag package would print the error and the whole usage before main prints
// the error again. Afterwards fs writes to stderr.
func Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%s: %v (see '%s -h')", strings.TrimPrefix(fs.Name(), "proactive "), err, fs.Name())
	}
	return nil
}

// Help answers a request for help at a command's level: the usage on
// stdout and flag.ErrHelp.
func Help(stdout io.Writer, usage string) error {
	_, err := io.WriteString(stdout, usage)
	if err != nil {
		return err
	}
	return flag.ErrHelp
}

// Command is one line of the top-level usage: a command or a subcommand.
type Command struct {
	Name    string // "rules backtest"
	Summary string
}

// Usage is the top-level usage: every command and subcommand with its
// summary, in the order given.
func Usage(program string, cmds []Command) string {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s COMMAND [flags] [arguments]\n\ncommands:\n", program)
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintf(&b, "\nRun '%s help COMMAND' (or '%s COMMAND -h') for a command's flags and arguments,\n'%s --version' for the version.\n", program, program, program)
	return b.String()
}
