package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/history"
	"github.com/proactivehq/proactive/rules"
)

// rulesBacktest is `proactive rules backtest`: it replays telemetry history
// from InfluxDB through rule files and reports what would have fired.
func rulesBacktest(ctx context.Context, args []string, e env) error {
	fs, load := configFlags("rules backtest", e)
	var ruleFiles listFlag
	fs.Var(&ruleFiles, "rules", "rule `files` or globs, repeatable or comma-separated (default: the config's rules.paths)")
	fromFlag := fs.String("from", "-30d", "start of the period: RFC 3339 (or a date), or relative to now like -30d, -12h, -2w")
	toFlag := fs.String("to", "now", "end of the period (exclusive): now, RFC 3339 (or a date), or relative to now like -1d")
	device := fs.String("device", "", "replay only this device `id`")
	maintFlag := fs.String("maintenance", "", "CSV `file` of maintenance records (as devices import --maintenance reads) instead of the database's")
	failuresFlag := fs.String("failures", "", "CSV `file` of known failures to score the rules against: a header with device,time,component, then one failure a line (time RFC 3339 or Unix milliseconds)")
	var horizon, minLead time.Duration
	durationFlag(fs, &horizon, "horizon", "with --failures: an alert counts for a failure at most `duration` before it, and is false when none follows within it (default 14d)")
	durationFlag(fs, &minLead, "min-lead", "with --failures: an alert detects a failure only this `duration` ahead or more (default 0)")
	compareDir := fs.String("compare", "", "also score the rule set in `dir` (its *.yaml) over the same history, side by side")
	tickFlag := fs.String("tick", "1m", "step of the simulated clock at which since_seen() rules are evaluated")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of tables")
	reportFile := fs.String("report", "", "also write the report as one self-contained HTML `file` with charts (lead times, alerts per day, each device's alerts against its failures, the telemetry around missed failures)")
	noSave := fs.Bool("no-save", false, "do not save the per-rule summary to the database (db) for the rules page (a backtest of one --device is never saved)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: proactive rules backtest [--rules FILE]... [--from -30d] [--to now] [--device ID] [--maintenance FILE.csv] [--failures FILE.csv [--horizon 14d] [--min-lead 0]] [--compare DIR] [--json] [--report FILE.html] [--no-save]\n\n"+
			"Replays telemetry and device events from InfluxDB, with the maintenance records, through the\n"+
			"rules, as the engine would have evaluated them, and\n"+
			"reports per rule what would have fired, on which devices, and how many tickets a day.\n"+
			"Each rule's summary is saved to the database (db), where the web page's rules page shows\n"+
			"the last one; --no-save skips that, and a failure to save is only a warning.\n\n")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	ruleFiles = append(ruleFiles, fs.Args()...)

	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	now := time.Now().UTC()
	var errs []error
	from, err := rules.ParseTime(*fromFlag, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("--from: %w", err))
	}
	to, err := rules.ParseTime(*toFlag, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("--to: %w", err))
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		errs = append(errs, fmt.Errorf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	if *device != "" && !proactive.ValidDeviceID(*device) {
		errs = append(errs, fmt.Errorf("--device %q is not a device id ([A-Za-z0-9_.-]{1,64})", *device))
	}
	tick, err := proactive.ParseNonNegativeDuration(*tickFlag)
	if err == nil && tick <= 0 {
		err = errors.New("must be longer than zero")
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("--tick: %w", err))
	}
	var failures []rules.Failure
	if *failuresFlag != "" {
		if failures, err = readFailures(*failuresFlag); err != nil {
			errs = append(errs, err)
		}
	}
	patterns := []string(ruleFiles)
	if len(patterns) == 0 {
		patterns = cfg.Rules.Paths
	}
	set, probs := rules.CompileFiles(patterns)
	errs = append(errs, probs...)
	var other *rules.RuleSet
	if *compareDir != "" {
		other, probs = rules.CompileFiles([]string{filepath.Join(*compareDir, "*.yaml"), filepath.Join(*compareDir, "*.yml")})
		errs = append(errs, probs...)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	started := time.Now()
	o := history.Options{From: from, To: to, Device: proactive.DeviceID(*device), MaintenanceFile: *maintFlag, Report: *reportFile}
	bo := rules.BacktestOptions{From: from, To: to, Tick: tick, Failures: failures, Horizon: horizon, MinLead: minLead,
		Outreach: history.Outreach(cfg, e.stderr)}
	rep, err := history.Replay(ctx, cfg, set, o, bo, e.stderr, "backtest")
	if err != nil {
		return err
	}
	if other != nil {
		otherRep, err := history.Replay(ctx, cfg, other, o, bo, e.stderr, "compare")
		if err != nil {
			return fmt.Errorf("--compare %s: %w", *compareDir, err)
		}
		rep.Compare = &rules.Comparison{Label: strings.Join(patterns, ","), OtherLabel: *compareDir, Other: otherRep}
	}
	if !*noSave && *device == "" {
		if err := history.SaveBacktest(ctx, cfg.DB.Reveal(), rep, len(failures) > 0, started); err != nil {
			fmt.Fprintf(e.stderr, "backtest: warning: summary not saved for the rules page: %v\n", err)
		} else {
			fmt.Fprintf(e.stderr, "backtest: summary of %d rule(s) saved for the rules page\n", len(rep.Rules))
		}
	}
	if err := history.WriteReport(ctx, cfg, o, rep, bo, e.stderr); err != nil {
		return err
	}
	if *jsonOut {
		return rep.WriteJSON(e.stdout, len(failures) > 0)
	}
	return rep.WriteTable(e.stdout, len(failures) > 0)
}

// listFlag is a flag that may be repeated and takes comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// readFailures reads the CSV of known failures (rules.ReadFailures).
func readFailures(path string) ([]rules.Failure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--failures: %w", err)
	}
	defer f.Close()
	return rules.ReadFailures(path, f)
}

// durationFlag defines a flag of a non-negative duration in the platform's
// grammar (30m, 2d, 1w).
func durationFlag(fs *flag.FlagSet, d *time.Duration, name, usage string) {
	fs.Func(name, usage, func(s string) (err error) {
		*d, err = proactive.ParseNonNegativeDuration(s)
		return err
	})
}
