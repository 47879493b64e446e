package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/proactivehq/proactive/api/client"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/internal/history"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/simulator"
)

var scoreUsage = helpText("simulate-score")

// alertSource fetches the alerts to score. A source is one flag and one such
// function: --alerts (alertsFileSource), --from-influx (influxAlertSource)
// and --api (ticketsAPISource: the tickets the live platform opened).
type alertSource func(ctx context.Context) (simulator.Alerts, error)

// simulateScore is `proactive simulate score`.
func simulateScore(ctx context.Context, e env) error {
	fs, load := configFlags("simulate score", e)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), scoreUsage)
		fs.PrintDefaults()
	}
	truthFile := fs.String("truth", "", "ground truth `file` written by simulate --truth (CSV or JSON lines)")
	alertsFile := fs.String("alerts", "", "alerts `file`: rules backtest --json output, or a JSON array or JSON lines of alerts")
	fromInflux := fs.Bool("from-influx", false, "run the rules over the telemetry in InfluxDB (the configured one) to get the alerts")
	var ruleFiles listFlag
	fs.Var(&ruleFiles, "rules", "with --from-influx: rule `files` or globs, repeatable or comma-separated (default: the config's rules.paths)")
	fromFlag := fs.String("from", "", "with --from-influx: start of the telemetry read, as for rules backtest (default 30 days before the first onset)")
	toFlag := fs.String("to", "", "with --from-influx: end of the period (default: the last sample)")
	maintFlag := fs.String("maintenance", "", "with --from-influx: CSV `file` of maintenance records (simulate --maintenance-out) instead of the database's")
	var grace, horizon, minLead time.Duration
	durationFlag(fs, &grace, "grace", "an alert up to `duration` after a fault's failure still belongs to it, as late (like 2h; default 0)")
	durationFlag(fs, &horizon, "horizon", "an alert counts for a failure at most `duration` before it, and is false when none follows within it (default 14d)")
	durationFlag(fs, &minLead, "min-lead", "an alert detects a failure only this `duration` ahead or more (default 0)")
	apiURL := fs.String("api", "", "score the tickets the running platform opened: its base `url`, like http://127.0.0.1:8080 (token in PROACTIVE_API_TOKEN)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate score takes no arguments, got %q", fs.Args())
	}
	var errs []error
	if *truthFile == "" {
		errs = append(errs, errors.New("--truth FILE is required: the ground truth of the simulation (simulate --truth)"))
	}
	if n := btoi(*alertsFile != "") + btoi(*fromInflux) + btoi(*apiURL != ""); n != 1 {
		errs = append(errs, errors.New("give where the alerts come from: --alerts FILE, --from-influx or --api URL, one of them"))
	}
	if !*fromInflux && (*fromFlag != "" || *toFlag != "" || *maintFlag != "" || len(ruleFiles) > 0) {
		errs = append(errs, errors.New("--from, --to, --maintenance and --rules are for --from-influx"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	truth, err := readTruthFile(*truthFile)
	if err != nil {
		return err
	}

	var src alertSource
	switch {
	case *alertsFile != "":
		src = alertsFileSource(*alertsFile)
	case *apiURL != "":
		token := e.getenv("PROACTIVE_API_TOKEN")
		if token == "" {
			return errors.New("--api needs a token with the dispatcher or admin role in PROACTIVE_API_TOKEN (proactive token create)")
		}
		src = ticketsAPISource(*apiURL, token)
	case *fromInflux:
		cfg, err := load()
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		patterns := []string(ruleFiles)
		if len(patterns) == 0 {
			patterns = cfg.Rules.Paths
		}
		if src, err = influxAlertSource(cfg, patterns, *fromFlag, *toFlag, *maintFlag, truth, e.stderr); err != nil {
			return err
		}
	}
	in, err := src(ctx)
	if err != nil {
		return err
	}
	rep := simulator.Score(truth, in.Alerts, simulator.ScoreOptions{End: in.End, Horizon: horizon, MinLead: minLead, Grace: grace, Rules: in.Rules})
	if *jsonOut {
		return rep.WriteJSON(e.stdout, *truthFile, in.What)
	}
	return rep.WriteTable(e.stdout, *truthFile, in.What)
}

func readTruthFile(path string) ([]simulator.Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--truth: %w", err)
	}
	defer f.Close()
	truth, err := simulator.ReadTruth(f)
	if err != nil {
		return nil, fmt.Errorf("--truth %s: %w", path, err)
	}
	return truth, nil
}

// alertsFileSource reads alerts from a file (simulator.ReadAlerts).
func alertsFileSource(path string) alertSource {
	return func(context.Context) (simulator.Alerts, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return simulator.Alerts{}, fmt.Errorf("--alerts: %w", err)
		}
		in, err := simulator.ReadAlerts(path, b)
		in.What = "alerts from " + path
		return in, err
	}
}

// influxAlertSource runs the rule files over the telemetry in the
// configured InfluxDB with the rule backtest (rules.Backtest over
// InfluxDB, the same evaluation the engine makes live).
func influxAlertSource(cfg Config, patterns []string, fromFlag, toFlag, maintFile string, truth []simulator.Truth, progress io.Writer) (alertSource, error) {
	now := time.Now().UTC()
	var errs []error
	// By default the period ends at the last sample, so that devices are
	// not taken for silent after the simulation stopped.
	from, to := simulator.TelemetrySpan(truth, now)
	var end time.Time
	var err error
	if fromFlag != "" {
		if from, err = rules.ParseTime(fromFlag, now); err != nil {
			errs = append(errs, fmt.Errorf("--from: %w", err))
		}
	}
	if toFlag != "" {
		if to, err = rules.ParseTime(toFlag, now); err != nil {
			errs = append(errs, fmt.Errorf("--to: %w", err))
		}
		end = to
	}
	if len(errs) == 0 && !from.Before(to) {
		errs = append(errs, fmt.Errorf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	set, probs := rules.CompileFiles(patterns)
	errs = append(errs, probs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return func(ctx context.Context) (simulator.Alerts, error) {
		rep, err := history.Replay(ctx, cfg, set, history.Options{From: from, To: to, MaintenanceFile: maintFile},
			rules.BacktestOptions{To: end}, progress, "score")
		if err != nil {
			return simulator.Alerts{}, err
		}
		in := simulator.Alerts{Alerts: rep.Alerts, End: rep.To, What: "rules over InfluxDB " + config.RedactURL(cfg.Influx.URL) + " bucket " + cfg.Influx.Bucket}
		for _, r := range set.Rules() {
			in.Rules = append(in.Rules, simulator.RuleInfo{Name: r.Name, Component: r.Component})
		}
		return in, nil
	}, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ticketsAPISource reads every ticket of the running platform through its
// API as the alert that opened it (client.TicketAlerts).
func ticketsAPISource(base, token string) alertSource {
	c := client.New(base, client.Options{Token: token})
	return func(ctx context.Context) (simulator.Alerts, error) {
		alerts, err := c.TicketAlerts(ctx)
		if err != nil {
			return simulator.Alerts{}, fmt.Errorf("--api: %w", err)
		}
		return simulator.Alerts{Alerts: alerts, What: "tickets of " + config.RedactURL(base)}, nil
	}
}
