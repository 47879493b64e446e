// Command proactive is the whole platform in one binary: it ingests device
// telemetry over MQTT into InfluxDB and, through its subcommands, serves,
// simulates and tests rules.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"

	"github.com/proactivehq/proactive/internal/config"
)

// Config is the binary's configuration (package internal/config).
type Config = config.Config

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr, os.Environ()...); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "proactive:", err)
		}
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

// command is one subcommand. Issues that add commands add an entry to
// commands().
type command struct {
	summary string
	run     func(ctx context.Context, e env) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the platform: MQTT ingest into InfluxDB, HTTP API", serve},
		"version": {"print the version", printVersion},
		"config":  {"print the effective configuration, secrets redacted", printConfig},
		"rules":   {"check and test rule files (rules check|test FILE...)", rulesCmd},
		"devices": {"import devices and customers into the registry (devices import FILE.csv)", devicesCmd},

		"simulate": {"publish a simulated fleet with faults, or replay recorded telemetry, over MQTT", simulate},
		"token":    {"create, list and revoke API tokens (token create --role R --name N)", tokenCmd},

		"sms": {"play the customer's phone: send a signed inbound SMS to the platform (sms reply --from PHONE TEXT)", smsCmd},

		"healthcheck": {"ask the local service whether it is alive (the container health check)", healthcheck},
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
	if len(args) < 2 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(stderr, cmds)
		if len(args) < 2 {
			return errors.New("no command given")
		}
		return nil
	}
	c, ok := cmds[args[1]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown command %q", args[1])
	}
	return c.run(ctx, env{args: args[2:], getenv: getenv, environ: environ, stdout: stdout, stderr: stderr})
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: proactive COMMAND [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nRun 'proactive COMMAND -h' for the flags of a command.\n")
	io.WriteString(w, b.String())
}

func printVersion(_ context.Context, e env) error {
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
	fs.SetOutput(e.stderr)
	path := fs.String("config", e.getenv("PROACTIVE_CONFIG"), "YAML configuration `file` (env PROACTIVE_CONFIG); every key can be overridden by PROACTIVE_* variables")
	return fs, func() (Config, error) { return config.Load(*path, e.getenv, e.environ...) }
}

func printConfig(_ context.Context, e env) error {
	fs, load := configFlags("config", e)
	if err := fs.Parse(e.args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err) // as serve says it
	}
	_, err = io.WriteString(e.stdout, cfg.Printable())
	return err
}
