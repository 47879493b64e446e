package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // scenarios name time zones; not every machine has them

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/simulator"
)

var simulateUsage = helpText("simulate")

func simulate(ctx context.Context, e env) error {
	if len(e.args) > 0 && e.args[0] == "score" {
		return simulateScore(ctx, env{args: e.args[1:], getenv: e.getenv, stdout: e.stdout, stderr: e.stderr})
	}
	fs, load := configFlags("simulate", e)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), simulateUsage, strings.Join(simulator.BuiltinNames(), ", "))
		fs.PrintDefaults()
	}
	scenarioFile := fs.String("scenario", "", "scenario `file`, or the name of a built-in scenario (default demo)")
	broker := fs.String("broker", "", "MQTT broker `url` (mqtt://host:port, mqtts://...); default the configured broker")
	username := fs.String("username", e.getenv("PROACTIVE_SIMULATE_USERNAME"), "MQTT username (env PROACTIVE_SIMULATE_USERNAME)")
	password := fs.String("password", "", "MQTT password (better: env PROACTIVE_SIMULATE_PASSWORD)")
	credentials := fs.String("credentials", "", "CSV `file` of device_id,secret: each device connects on its own as username = client id = its id, password = its secret")
	loadDevices := fs.Int("load", 0, "simulate a load fleet of `N` devices (load-000001, ...) of three metrics, instead of a scenario, until stopped or --duration")
	interval := 10 * time.Second
	fs.Func("interval", "with --load: the `time` between two readings of a device (default 10s)", func(s string) error {
		d, err := proactive.ParseNonNegativeDuration(s)
		interval = d
		return err
	})
	speedFlag := fs.String("speed", "", "simulated seconds per second: 1 real time, 3600 an hour a second, max as fast as the broker acks (default the scenario's, else 1)")
	var duration, cycleStep time.Duration
	var durationSet bool
	fs.Func("duration", "simulated `time` the live part runs (like 3d or 12h; default the scenario's, 0 until stopped)", func(s string) error {
		d, err := proactive.ParseNonNegativeDuration(s)
		duration, durationSet = d, true
		return err
	})
	startFlag := fs.String("start", "", "simulated start of the live part: now or an RFC 3339 time (default the scenario's); for --replay with cycles, the time of cycle 1")
	seedFlag := fs.String("seed", "", "random seed (default the scenario's)")
	maintOut := fs.String("maintenance-out", "", "write the scenario's repairs to `file` as CSV, for devices import --maintenance or rules backtest --maintenance")
	truthFile := fs.String("truth", "", "write the ground truth (the faults injected) to `file`: CSV when it ends in .csv, JSON lines otherwise")
	connections := fs.Int("connections", 0, "MQTT connections (0: one per device up to 100 devices, else 8 shared)")
	inflight := fs.Int("inflight", 1000, "unacknowledged publishes per connection")
	clientID := fs.String("client-id", "proactive-sim", "client id prefix of shared connections")
	quiet := fs.Bool("quiet", false, "no progress line")
	replay := fs.String("replay", "", "replay recorded telemetry from a CSV `file` instead of a scenario")
	preset := fs.String("preset", "", "replay mapping preset: cmapss (NASA C-MAPSS turbofan files)")
	sep := fs.String("sep", "", "replay column separator: comma (default), space (any whitespace), tab, semicolon")
	columns := fs.String("columns", "", "replay column names of a file without header, comma-separated")
	deviceCol := fs.String("device-col", "", "replay device column (name or 1-based number)")
	deviceID := fs.String("device-id", "", "replay printf pattern of the device id from the device column (%s, engine-%03d)")
	timeCol := fs.String("time-col", "", "replay time column (name or 1-based number)")
	timeFormat := fs.String("time-format", "", "replay time format: unix-ms, unix-s, rfc3339 (default), cycle")
	fs.Func("cycle-step", "replay: simulated `time` of one cycle with --time-format cycle (default 1h)", func(s string) error {
		d, err := proactive.ParseNonNegativeDuration(s)
		cycleStep = d
		return err
	})
	registry := fs.String("registry", "", "write the scenario's fleet as a CSV `file` for 'proactive devices import' (- for stdout) and exit without publishing")
	metrics := fs.String("metrics", "", "replay metric columns as COLUMN=name,... (default every other column under its own name)")
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate takes no arguments, got %q", fs.Args())
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := cfg.Logger(e.stderr)

	o := simulator.Options{
		Username: *username, Password: *password,
		TopicPrefix: cfg.MQTT.TopicPrefix, Connections: *connections, MaxInflight: *inflight,
		ClientID: *clientID, Logger: log, DrainTimeout: time.Duration(cfg.ShutdownTimeout), // on SIGTERM too
	}
	if o.Password == "" {
		o.Password = e.getenv("PROACTIVE_SIMULATE_PASSWORD")
	}
	o.Broker = *broker
	if o.Broker == "" {
		o.Broker = cfg.Broker()
	}
	tlsCfg, err := ingest.TLSConfig(o.Broker, cfg.MQTT.TLSCAFile)
	if err != nil {
		return err
	}
	o.TLS = tlsCfg
	if *speedFlag != "" {
		if o.Speed, err = simulator.ParseSpeed(*speedFlag); err != nil {
			return fmt.Errorf("--speed %w", err)
		}
	}
	var start time.Time
	switch *startFlag {
	case "":
	case "now":
		start = time.Now().Truncate(time.Millisecond)
	default:
		if start, err = time.Parse(time.RFC3339, *startFlag); err != nil {
			return fmt.Errorf("--start %q: want now or an RFC 3339 time", *startFlag)
		}
	}

	if *replay != "" {
		if *registry != "" {
			return errors.New("--registry is for scenarios: a replay has no fleet to register")
		}
		if *scenarioFile != "" || *loadDevices != 0 {
			return errors.New("give --scenario, --load or --replay, one of them")
		}
		ro, err := simulator.ReplayMapping{Preset: *preset, Sep: *sep, Columns: *columns, DeviceCol: *deviceCol, DeviceID: *deviceID,
			TimeCol: *timeCol, TimeFormat: *timeFormat, Metrics: *metrics, CycleStep: cycleStep, Start: start}.Options()
		if err != nil {
			return err
		}
		rp, err := simulator.LoadReplay(*replay, ro)
		if err != nil {
			return err
		}
		rows, skipped := rp.Rows()
		first, last := rp.Span()
		log.Info("replay loaded", "file", *replay, "rows", rows, "skipped", skipped, "devices", len(rp.Devices()),
			"from", first.Format(time.RFC3339), "to", last.Format(time.RFC3339))
		o.Replay = rp
	} else {
		var sc *simulator.Scenario
		switch {
		case *loadDevices != 0:
			if *scenarioFile != "" {
				return errors.New("give --scenario, --load or --replay, one of them")
			}
			sc, err = simulator.LoadTest(*loadDevices, interval)
		case *scenarioFile == "":
			sc, err = simulator.Builtin("demo")
		case !strings.ContainsAny(*scenarioFile, "/.") && !fileExists(*scenarioFile):
			sc, err = simulator.Builtin(*scenarioFile)
		default:
			sc, err = simulator.LoadScenario(*scenarioFile)
		}
		if err != nil {
			return err
		}
		if *seedFlag != "" {
			if sc.Seed, err = strconv.ParseUint(*seedFlag, 10, 64); err != nil {
				return fmt.Errorf("--seed %q: want a whole number", *seedFlag)
			}
		}
		if durationSet {
			sc.Duration = duration
		}
		o.Scenario, o.Start = sc, start
		log.Info("scenario loaded", "scenario", sc.Name, "devices", len(sc.Devices()), "seed", sc.Seed,
			"backfill", proactive.FormatDuration(sc.Backfill), "duration", proactive.FormatDuration(sc.Duration))
		if *registry != "" {
			return sc.WriteRegistry(*registry, start, e.stdout)
		}
	}
	if *truthFile != "" {
		if o.Replay != nil {
			return errors.New("--truth is for scenarios: a replay injects no faults")
		}
		f, err := os.Create(*truthFile)
		if err != nil {
			return fmt.Errorf("--truth: %w", err)
		}
		defer f.Close()
		o.Truth, o.TruthCSV = f, strings.EqualFold(filepath.Ext(*truthFile), ".csv")
	}
	if *maintOut != "" {
		f, err := os.Create(*maintOut)
		if err != nil {
			return fmt.Errorf("--maintenance-out: %w", err)
		}
		defer f.Close()
		o.Maintenance = f
	}
	if *credentials != "" {
		if o.Credentials, err = simulator.LoadCredentials(*credentials); err != nil {
			return err
		}
	}
	if !*quiet {
		o.Progress = e.stderr
		if f, ok := e.stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				o.ProgressInPlace = true
			}
		}
	}
	sim, err := simulator.New(o)
	if err != nil {
		return err
	}
	log.Info("simulating", "broker", config.RedactURL(o.Broker))
	return sim.Run(ctx)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
