package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/rules"
)

// backtestQueryTimeout bounds one query of a backtest: one chunk of history
// (rules.InfluxChunk), streamed.
const backtestQueryTimeout = 10 * time.Minute

// maxFirstFires is how many first fires the table lists per rule.
const maxFirstFires = 10

// rulesBacktest is `proactive rules backtest`: it replays telemetry history
// from InfluxDB through rule files and reports what would have fired.
func rulesBacktest(ctx context.Context, args []string, e env) error {
	fs, load := configFlags("rules backtest", e)
	var ruleFiles listFlag
	fs.Var(&ruleFiles, "rules", "rule `files` or globs, repeatable or comma-separated (default: the config's rules.paths)")
	fromFlag := fs.String("from", "-30d", "start of the period: RFC 3339 (or a date), or relative to now like -30d, -12h, -2w")
	toFlag := fs.String("to", "now", "end of the period (exclusive): now, RFC 3339 (or a date), or relative to now like -1d")
	device := fs.String("device", "", "replay only this device `id`")
	failuresFlag := fs.String("failures", "", "CSV `file` of known failures to score the rules against: a header with device,time,component, then one failure a line (time RFC 3339 or Unix milliseconds)")
	tickFlag := fs.String("tick", "1m", "step of the simulated clock at which since_seen() rules are evaluated")
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of tables")
	noSave := fs.Bool("no-save", false, "do not save the per-rule summary to the database (db) for the rules page (a backtest of one --device is never saved)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: proactive rules backtest [--rules FILE]... [--from -30d] [--to now] [--device ID] [--failures FILE.csv] [--json] [--no-save]\n\n"+
			"Replays telemetry from InfluxDB through the rules, as the engine would have evaluated it, and\n"+
			"reports per rule what would have fired, on which devices, and how many tickets a day.\n"+
			"Each rule's summary is saved to the database (db), where the web page's rules page shows\n"+
			"the last one; --no-save skips that, and a failure to save is only a warning.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	ruleFiles = append(ruleFiles, fs.Args()...)

	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	now := time.Now().UTC()
	var errs []error
	from, err := parseWhen(*fromFlag, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("--from: %w", err))
	}
	to, err := parseWhen(*toFlag, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("--to: %w", err))
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		errs = append(errs, fmt.Errorf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	if *device != "" && !proactive.ValidDeviceID(*device) {
		errs = append(errs, fmt.Errorf("--device %q is not a device id ([A-Za-z0-9_.-]{1,64})", *device))
	}
	tick, err := rules.ParseDuration(*tickFlag)
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
	set, probs := compileRules(patterns)
	errs = append(errs, probs...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	influx := influx.New(influx.Options{
		URL: cfg.Influx.URL, Token: cfg.Influx.Token.Reveal(), Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
		Timeout: backtestQueryTimeout,
	})
	defer influx.Close()
	what := "all devices"
	if *device != "" {
		what = "device " + *device
	}
	fmt.Fprintf(e.stderr, "backtest: %d rule(s) over %s, %s to %s, from InfluxDB at %s bucket %s\n", len(set.Rules()), what,
		from.Format(time.RFC3339), to.Format(time.RFC3339), redactURL(cfg.Influx.URL), cfg.Influx.Bucket)

	started := time.Now()
	var lastProgress time.Time
	rep, err := rules.Backtest(ctx, set, rules.StoredSamples(influx, from, to, proactive.DeviceID(*device)),
		rules.BacktestOptions{
			From: from, To: to, Tick: tick, Failures: failures,
			Progress: func(done int64, at time.Time) {
				if t := time.Now(); t.Sub(lastProgress) >= time.Second {
					lastProgress = t
					fmt.Fprintf(e.stderr, "backtest: %d samples replayed, clock at %s\n", done, at.UTC().Format(time.RFC3339))
				}
			},
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "backtest: %d samples from %d devices replayed in %s\n", rep.Samples, rep.Devices,
		time.Since(started).Round(time.Millisecond))
	if !*noSave && *device == "" {
		if err := saveBacktest(ctx, cfg.DB.Reveal(), rep, len(failures) > 0, started); err != nil {
			fmt.Fprintf(e.stderr, "backtest: warning: summary not saved for the rules page: %v\n", err)
		} else {
			fmt.Fprintf(e.stderr, "backtest: summary of %d rule(s) saved for the rules page\n", len(rep.Rules))
		}
	}
	if *jsonOut {
		return writeBacktestJSON(e.stdout, rep, len(failures) > 0)
	}
	return writeBacktestTables(e.stdout, rep, len(failures) > 0)
}

// saveBacktest stores each rule's summary of rep in the database at dsn,
// replacing the rule's previous one. It will not create a SQLite database:
// a backtest run away from the platform's data has nowhere to save.
func saveBacktest(ctx context.Context, dsn string, rep *rules.BacktestReport, scored bool, runAt time.Time) error {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		path := dsn
		for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
			if rest, ok := strings.CutPrefix(path, prefix); ok {
				path = rest
				break
			}
		}
		path, _, _ = strings.Cut(path, "?")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no database at %s (db): %w", path, err)
		}
	}
	var bs []devices.Backtest
	for _, r := range rep.Rules {
		b := devices.Backtest{Rule: r.Rule, RunAt: runAt.UTC(), From: rep.From.UTC(), To: rep.To.UTC(), Samples: rep.Samples,
			Fires: r.Fires, Devices: r.Devices, TicketsPerDay: r.TicketsPerDay, Scored: scored}
		if scored {
			b.Failures, b.Detected, b.MedianLead, b.FalseAlarms = r.Detected+r.Missed, r.Detected, r.MedianLead, r.FalseAlarms
			if b.Failures > 0 {
				b.Recall = float64(r.Detected) / float64(b.Failures)
			}
		}
		// The report as --json prints it, its first fires cut to the table's.
		if len(r.FirstFires) > maxFirstFires {
			r.FirstFires = r.FirstFires[:maxFirstFires]
		}
		if r.FirstFires == nil {
			r.FirstFires = []rules.FirstFire{}
		}
		raw, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode the report of %s: %w", r.Rule, err)
		}
		b.Report = raw
		bs = append(bs, b)
	}
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer store.Close()
	return store.SaveBacktest(ctx, bs...)
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

// parseWhen reads a point in time for --from and --to: "now", a time
// relative to now ("-30d", "-12h", "-1w2d", as rules.ParseDuration reads
// them after the minus), RFC 3339, or a date (midnight UTC).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := rules.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, err)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want now, a time relative to now like -30d or -12h, RFC 3339 like 2026-11-01T00:00:00Z, or a date like 2026-11-01", s)
}

// readFailures reads a CSV of known failures: a header naming the columns
// device (or device_id), time and component, in any order, then one failure
// a line. It reports every bad line.
func readFailures(path string) ([]rules.Failure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--failures: %w", err)
	}
	defer f.Close()
	return parseFailures(path, f)
}

func parseFailures(name string, r io.Reader) ([]rules.Failure, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty: want a header device,time,component", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "device_id" {
			h = "device"
		}
		col[h] = i
	}
	var errs []error
	for _, c := range []string{"device", "time", "component"} {
		if _, ok := col[c]; !ok {
			errs = append(errs, fmt.Errorf("%s:1: no %s column in the header %q (want device,time,component)", name, c, strings.Join(header, ",")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []rules.Failure
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // FieldPos panics after a parse error: the error names the line
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if len(errs) >= 20 {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			if i := col[c]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		fl := rules.Failure{Device: proactive.DeviceID(get("device")), Component: get("component")}
		if !proactive.ValidDeviceID(string(fl.Device)) {
			errs = append(errs, fmt.Errorf("%s:%d: device %q is not a device id", name, line, fl.Device))
		}
		if fl.Component == "" {
			errs = append(errs, fmt.Errorf("%s:%d: component is empty", name, line))
		}
		ts := get("time")
		if ms, err := strconv.ParseInt(ts, 10, 64); err == nil {
			fl.Time = time.UnixMilli(ms).UTC()
		} else if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			fl.Time = t.UTC()
		} else {
			errs = append(errs, fmt.Errorf("%s:%d: time %q: want RFC 3339 or Unix milliseconds", name, line, ts))
		}
		out = append(out, fl)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// humanDur prints a lead time or prediction to the minute: "3d4h", "45m".
func humanDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return rules.FormatDuration(d.Round(time.Minute))
}

// writeBacktestTables prints the report for people: a block per rule.
func writeBacktestTables(w io.Writer, rep *rules.BacktestReport, scored bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Backtest %s to %s (%.1f days): %d samples from %d devices\n",
		rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339), rep.Days(), rep.Samples, rep.Devices)
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "\nrule %s (component %s)\n", r.Rule, r.Component)
		fmt.Fprintf(tw, "  fires\t%d\n", r.Fires)
		fmt.Fprintf(tw, "  devices\t%d\n", r.Devices)
		fmt.Fprintf(tw, "  tickets/day\t%.2f\n", r.TicketsPerDay)
		if scored {
			fmt.Fprintf(tw, "  detected\t%d of %d failures\n", r.Detected, r.Detected+r.Missed)
			fmt.Fprintf(tw, "  missed\t%d\n", r.Missed)
			fmt.Fprintf(tw, "  median lead\t%s\n", humanDur(r.MedianLead))
			fmt.Fprintf(tw, "  false alarms\t%d\n", r.FalseAlarms)
		}
		if r.Errors > 0 {
			fmt.Fprintf(tw, "  errors\t%d (last: %s)\n", r.Errors, r.LastError)
		}
		if len(r.FirstFires) == 0 {
			continue
		}
		fmt.Fprintf(tw, "  first fires:\n")
		fmt.Fprintf(tw, "    DEVICE\tFIRED AT\tPREDICTED FAILURE IN\n")
		for i, ff := range r.FirstFires {
			if i == maxFirstFires {
				fmt.Fprintf(tw, "    … and %d more devices\n", len(r.FirstFires)-maxFirstFires)
				break
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", ff.Device, ff.At.UTC().Format(time.RFC3339), humanDur(ff.TimeToFailure))
		}
	}
	return tw.Flush()
}

// backtestJSON is the --json report.
type backtestJSON struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Days    float64   `json:"days"`
	Samples int64     `json:"samples"`
	Devices int       `json:"devices"`
	// Scored says whether failures were given: without them detected,
	// missed, lead times and false alarms are not measured.
	Scored bool               `json:"scored"`
	Rules  []rules.RuleReport `json:"rules"`
	Alerts []alertJSON        `json:"alerts"`
}

type alertJSON struct {
	Rule          string               `json:"rule"`
	Device        proactive.DeviceID   `json:"device_id"`
	Model         string               `json:"model,omitempty"`
	Component     string               `json:"component"`
	Severity      proactive.Severity   `json:"severity"`
	State         proactive.AlertState `json:"state"`
	Summary       string               `json:"summary"`
	ActiveAt      time.Time            `json:"active_at"`
	FiredAt       time.Time            `json:"fired_at"`
	TimeToFailure time.Duration        `json:"time_to_failure_ns,omitempty"`
}

func writeBacktestJSON(w io.Writer, rep *rules.BacktestReport, scored bool) error {
	out := backtestJSON{From: rep.From.UTC(), To: rep.To.UTC(), Days: rep.Days(), Samples: rep.Samples, Devices: rep.Devices,
		Scored: scored, Rules: rep.Rules, Alerts: []alertJSON{}}
	for _, a := range rep.Alerts {
		out.Alerts = append(out.Alerts, alertJSON{Rule: a.Rule, Device: a.Device, Model: a.Model, Component: a.Component,
			Severity: a.Severity, State: a.State, Summary: a.Summary, ActiveAt: a.ActiveAt.UTC(), FiredAt: a.FiredAt.UTC(),
			TimeToFailure: a.TimeToFailure})
	}
	for i := range out.Rules {
		if out.Rules[i].FirstFires == nil {
			out.Rules[i].FirstFires = []rules.FirstFire{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// compileRules loads and compiles the rule files of patterns, returning
// every problem (each file:line), and one when the files hold no rule.
func compileRules(patterns []string) (*rules.RuleSet, []error) {
	specs, probs := rules.LoadFiles(patterns)
	var set *rules.RuleSet
	if len(probs) == 0 {
		set, probs = rules.Compile(specs)
	}
	var errs []error
	for _, p := range probs {
		errs = append(errs, p)
	}
	if len(probs) == 0 && len(specs) == 0 {
		errs = append(errs, fmt.Errorf("no rules in %s", strings.Join(patterns, ", ")))
	}
	return set, errs
}
