package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("proactive serve", flag.ContinueOnError)
		fs.String("config", "", "the configuration `file`")
		return fs
	}
	var out, errOut bytes.Buffer
	if err := Parse(newFS(), []string{"-h"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-config file") || errOut.Len() != 0 {
		t.Errorf("-h: stdout %q, stderr %q; want the flags on stdout alone", out.String(), errOut.String())
	}
	out.Reset()
	err := Parse(newFS(), []string{"--nope"}, &out, &errOut)
	if err == nil || err.Error() != "serve: flag provided but not defined: -nope (see 'proactive serve -h')" {
		t.Errorf("--nope: %v", err)
	}
	if out.Len()+errOut.Len() != 0 {
		t.Errorf("--nope printed %q %q; the error is returned, once", out.String(), errOut.String())
	}
	fs := newFS()
	if err := Parse(fs, []string{"--config", "x.yaml", "arg"}, &out, &errOut); err != nil || fs.Arg(0) != "arg" {
		t.Errorf("good flags: %v, args %q", err, fs.Args())
	}
	if fs.Output() != &errOut {
		t.Error("after parsing, the flag set writes to stderr")
	}
}

func TestUsage(t *testing.T) {
	u := Usage("p", []Command{{"serve", "run"}, {"rules backtest", "replay history"}})
	for _, want := range []string{"  serve           run\n", "  rules backtest  replay history\n", "'p help COMMAND'"} {
		if !strings.Contains(u, want) {
			t.Errorf("usage lacks %q:\n%s", want, u)
		}
	}
	for _, a := range []string{"-h", "--help", "-help", "help"} {
		if !IsHelp(a) {
			t.Errorf("IsHelp(%q) = false", a)
		}
	}
	if IsHelp("-x") || !IsVersion("--version") || IsVersion("version") {
		t.Error("IsHelp/IsVersion disagree with the habits")
	}
}
