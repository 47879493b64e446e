package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runCLI runs the command line in process and returns its outputs.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	env := map[string]string{"PROACTIVE_DB": t.TempDir() + "/p.db"}
	err = run(context.Background(), append([]string{"proactive"}, args...), func(k string) string { return env[k] }, &o, &e)
	return o.String(), e.String(), err
}

// Every command and subcommand answers -h with its usage on stdout and
// nothing on stderr, as success; `help TOPIC` says the same.
func TestCLIHelpEverywhere(t *testing.T) {
	var topics [][]string
	for _, c := range commands() {
		topics = append(topics, []string{c.name})
		for _, s := range c.subs {
			topics = append(topics, strings.Fields(s.Name))
		}
	}
	for _, topic := range topics {
		name := strings.Join(topic, " ")
		for _, h := range []string{"-h", "--help"} {
			out, errOut, err := runCLI(t, append(topic, h)...)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("proactive %s %s: err = %v, want help (exit 0)", name, h, err)
			}
			if !strings.Contains(out, "usage: proactive "+topic[0]) || errOut != "" {
				t.Errorf("proactive %s %s: stdout %q, stderr %q; want the usage on stdout alone", name, h, out, errOut)
			}
			if len(topic) > 1 && !strings.Contains(out, name) {
				t.Errorf("proactive %s %s does not name the subcommand:\n%s", name, h, out)
			}
			helpOut, _, err := runCLI(t, append([]string{"help"}, topic...)...)
			if !errors.Is(err, flag.ErrHelp) || helpOut != out {
				t.Errorf("proactive help %s = %v, %q; want what %s says:\n%s", name, err, helpOut, h, out)
			}
		}
	}
}

// The top-level usage lists every command and subcommand.
func TestCLIUsageListsEverything(t *testing.T) {
	out, _, err := runCLI(t, "help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	for _, want := range []string{"serve", "simulate score", "rules check", "rules test", "rules backtest", "devices import",
		"devices acl", "devices secret", "token create", "token list", "token revoke", "sms reply", "config", "healthcheck", "version"} {
		if !strings.Contains(out, "\n  "+want+" ") {
			t.Errorf("the usage does not list %q:\n%s", want, out)
		}
	}
}

// A command's help says what it does, not only its flags.
func TestCLIHelpSaysWhat(t *testing.T) {
	for topic, want := range map[string]string{"config": "Print the effective configuration", "serve": "Run the platform", "healthcheck": "whether it is alive"} {
		out, _, err := runCLI(t, "help", topic)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, want) {
			t.Errorf("help %s = %v:\n%s\nwant it to say %q", topic, err, out, want)
		}
	}
}

// Mistakes are one line: the error, once, naming the command.
func TestCLIMistakes(t *testing.T) {
	rulesFile := t.TempDir() + "/r.yaml"
	if err := os.WriteFile(rulesFile, []byte("rules:\n  - name: r\n    component: c\n    when: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--bogus"}, "serve: flag provided but not defined: -bogus (see 'proactive serve -h')"},
		{[]string{"rules", "backtest", "--nope"}, "rules backtest: flag provided but not defined: -nope"},
		{[]string{"token", "create", "--role", "root", "--name", "ci"}, `token create: unknown role "root": want admin, dispatcher or technician`},
		{[]string{"token", "create", "--role", "admin"}, "token create needs --name"},
		{[]string{"rules", "frobnicate"}, `rules: unknown subcommand "frobnicate": want check, test or backtest`},
		{[]string{"nosuch"}, `unknown command "nosuch" (run 'proactive help' for the list)`},
		{[]string{"rules", "check", rulesFile}, "2 problem(s)"},
	} {
		_, errOut, err := runCLI(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("proactive %s: err = %v, want it to say %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if strings.Contains(errOut, "flag provided") {
			t.Errorf("proactive %s printed the flag error as well as returning it:\n%s", strings.Join(tt.args, " "), errOut)
		}
	}
	// rules check reports a missing key and a broken expression in one run.
	_, errOut, err := runCLI(t, "rules", "check", rulesFile)
	if err == nil || !strings.Contains(errOut, "missing required key severity:") || !strings.Contains(errOut, "when: expected bool") {
		t.Errorf("rules check: %v\n%s\nwant the missing severity and the when problem together", err, errOut)
	}
}

// The process: help and --version exit 0, a mistake exits 1 with one line.
func TestCLIExitStatus(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args     string
		code     int
		stdout   string
		stderrNL int // lines on stderr
	}{
		{"--version", 0, "proactive ", 0},
		{"version", 0, "proactive ", 0},
		{"help rules", 0, "usage: proactive rules check", 0},
		{"rules -h", 0, "usage: proactive rules check", 0},
		{"simulate -h", 0, "usage: proactive simulate", 0},
		{"devices secret -h", 0, "usage:", 0},
		{"serve --bogus", 1, "", 1},
		{"token create --role root --name x", 1, "", 1},
	} {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "PROACTIVE_TEST_SUBPROCESS=main", "PROACTIVE_TEST_ARGS="+tt.args, "PROACTIVE_DB="+t.TempDir()+"/p.db")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(o.String(), tt.stdout) || strings.Count(e.String(), "\n") != tt.stderrNL {
			t.Errorf("proactive %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, %d line(s) on stderr",
				tt.args, code, o.String(), e.String(), tt.code, tt.stdout, tt.stderrNL)
		}
	}
}
