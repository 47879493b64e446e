// Command proactive is the whole platform in one binary: it ingests device
// telemetry over MQTT into InfluxDB and, through its subcommands, serves,
// simulates and tests rules.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/proactivehq/proactive/internal/cli"
	"github.com/proactivehq/proactive/internal/config"
)

// Config is the binary's configuration (package internal/config).
type Config = config.Config

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr, os.Environ()...)
	if errors.Is(err, flag.ErrHelp) {
		return // help was asked for and given
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proactive:", err)
		os.Exit(1)
	}
}

// env is what every subcommand gets from run: its arguments, the
// environment and the output streams.
type env struct {
	args   []string
	getenv func(string) string
	// environ is the environment as os.Environ gives it, for the
	// configuration's check of unknown PROACTIVE_* names; nil skips it.
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

// parse parses a command's flags the way every command does (cli.Parse).
func (e env) parse(fs *flag.FlagSet, args []string) error {
	return cli.Parse(fs, args, e.stdout, e.stderr)
}

// command is one subcommand; subs are its own subcommands, each a line of
// the usage. Issues that add commands add an entry to commands().
type command struct {
	name, summary string
	run           func(ctx context.Context, e env) error
	subs          []cli.Command
}

func commands() []command {
	return []command{
		{"serve", "run the platform: MQTT ingest into InfluxDB, rules, tickets and SMS, HTTP API and web page", serve, nil},
		{"simulate", "publish a simulated fleet with faults, or replay recorded telemetry, over MQTT", simulate, []cli.Command{
			{Name: "simulate score", Summary: "run rules over a simulated fleet (or InfluxDB history) and score them against its faults"}}},
		{"rules", "check, test and backtest rule files", rulesCmd, []cli.Command{
			{Name: "rules check", Summary: "check rule files and report every problem with file and line"},
			{Name: "rules test", Summary: "run rule unit tests (NAME_test.yaml)"},
			{Name: "rules backtest", Summary: "replay history from InfluxDB through rules and the contact policy; score against failures"}}},
		{"devices", "the device registry", devicesCmd, []cli.Command{
			{Name: "devices import", Summary: "import devices and customers, --technicians or --maintenance records from CSV"},
			{Name: "devices acl", Summary: "write a Mosquitto ACL that holds each device to its own topics"},
			{Name: "devices secret", Summary: "issue or revoke devices' MQTT secrets"}}},
		{"token", "API tokens", tokenCmd, []cli.Command{
			{Name: "token create", Summary: "create an API token (--role admin|dispatcher|technician --name N)"},
			{Name: "token list", Summary: "list API tokens"},
			{Name: "token revoke", Summary: "revoke an API token by its ID"}}},
		{"sms", "play the customer's phone", smsCmd, []cli.Command{
			{Name: "sms reply", Summary: "send a signed inbound SMS to the platform (sms reply --from PHONE TEXT)"}}},
		{"config", "print the effective configuration, secrets redacted", printConfig, nil},
		{"healthcheck", "ask the local service whether it is alive (the container health check)", healthcheck, nil},
		{"version", "print the version", printVersion, nil},
	}
}

// run is main without the process: tests call it with their own arguments,
// environment and outputs. It returns when the command is done or ctx (or a
// SIGINT/SIGTERM) ends it. environ, when given, is the environment getenv
// reads in os.Environ's form: the configuration then refuses PROACTIVE_*
// variables that nothing reads.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, environ ...string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := commands()
	var lines []cli.Command
	byName := map[string]command{}
	for _, c := range cmds {
		byName[c.name] = c
		lines = append(lines, cli.Command{Name: c.name, Summary: c.summary})
		lines = append(lines, c.subs...)
	}
	usage := cli.Usage("proactive", lines)
	e := env{getenv: getenv, environ: environ, stdout: stdout, stderr: stderr}
	switch {
	case len(args) < 2:
		io.WriteString(stderr, usage)
		return errors.New("no command given")
	case args[1] == "help" && len(args) > 2: // help TOPIC is TOPIC -h
		args = append(append(args[:1:1], args[2:]...), "-h")
	case cli.IsHelp(args[1]):
		return cli.Help(stdout, usage)
	case cli.IsVersion(args[1]):
		return printVersion(ctx, e)
	}
	c, ok := byName[args[1]]
	if !ok {
		return fmt.Errorf("unknown command %q (run 'proactive help' for the list)", args[1])
	}
	e.args = args[2:]
	return c.run(ctx, e)
}

func printVersion(_ context.Context, e env) error {
	fs := flag.NewFlagSet("proactive version", flag.ContinueOnError)
	fs.Usage = func() {
		io.WriteString(fs.Output(), "usage: proactive version\nPrints the version (also: proactive --version).\n")
	}
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	_, err := fmt.Fprintf(e.stdout, "proactive %s\n", v)
	return err
}

// configFlags parses the flags every long-running command shares and loads
// the configuration.
func configFlags(name string, e env) (*flag.FlagSet, func() (Config, error)) {
	fs := flag.NewFlagSet("proactive "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: proactive %s [flags]\n\n%s.\n\nFlags:\n", name, summary(name))
		fs.PrintDefaults()
	}
	path := fs.String("config", e.getenv("PROACTIVE_CONFIG"), "YAML configuration `file` (env PROACTIVE_CONFIG); every key can be overridden by PROACTIVE_* variables")
	return fs, func() (Config, error) { return config.Load(*path, e.getenv, e.environ...) }
}

func printConfig(_ context.Context, e env) error {
	fs, load := configFlags("config", e)
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err) // as serve says it
	}
	_, err = io.WriteString(e.stdout, cfg.Printable())
	return err
}

// summary is the one-line summary of the command called name.
func summary(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return strings.ToUpper(c.summary[:1]) + c.summary[1:]
		}
	}
	return "Run 'proactive help' for the list of commands"
}

// help holds the commands' usage texts, one file per command: text is
// easier to keep right in a file of its own than in a Go string.
//
//go:embed help/*.txt
var help embed.FS

func helpText(name string) string {
	b, err := help.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic(err) // a missing file is a build mistake, caught by every test
	}
	return string(b)
}
