package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/simulator"
)

const scoreUsage = `usage: proactive simulate score --truth FILE (--alerts FILE | --from-influx | --api URL) [flags]

Compares the platform's alerts with the ground truth of a simulation
(simulate --truth): for each injected fault, whether an alert of its device
and component fired between its onset and its breakdown, and with what lead
time; per rule, precision, recall and median lead time; and the alerts no
fault explains (false alerts), on devices with or without a fault.

Where the alerts come from:
  --alerts FILE   the output of 'proactive rules backtest --json', or a JSON
                  array or JSON lines of alerts (rule, device_id or device,
                  component, fired_at, state)
  --from-influx   run the rules (--rules, default the configured ones) over
                  the telemetry in InfluxDB, as 'proactive rules backtest'
                  does, from --from (default 30 days before the first
                  fault's onset) to --to (default: the last sample)
  --api URL       the tickets the running platform opened (one alert each,
                  at the time the alert that opened it fired), read with
                  the token in PROACTIVE_API_TOKEN (dispatcher or admin)

  proactive simulate --scenario compressor_wear --truth truth.csv
  proactive simulate score --truth truth.csv --from-influx
  proactive rules backtest --from -30d --json > bt.json && proactive simulate score --truth truth.csv --alerts bt.json --json

Flags:
`

// scoreInput is what an alert source yields: the alerts, the rules that ran
// when the source knows them (their components tell decoys from misses),
// and the end of the period the alerts cover (zero: open).
type scoreInput struct {
	Alerts []proactive.Alert
	Rules  []simulator.RuleInfo
	End    time.Time
	// What describes the source for the report.
	What string
}

// alertSource fetches the alerts to score. A source is one flag and one such
// function: --alerts (alertsFileSource), --from-influx (influxAlertSource)
// and --api (ticketsAPISource: the tickets the live platform opened).
type alertSource func(ctx context.Context) (scoreInput, error)

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
	var grace time.Duration
	fs.Func("grace", "an alert up to `duration` after a breakdown still counts for its fault, as late (like 2h; default 0)", func(s string) error {
		d, err := simulator.ParseDuration(s)
		grace = d
		return err
	})
	apiURL := fs.String("api", "", "score the tickets the running platform opened: its base `url`, like http://127.0.0.1:8080 (token in PROACTIVE_API_TOKEN)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(e.args); err != nil {
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
	if *alertsFile != "" && (*fromFlag != "" || *toFlag != "" || len(ruleFiles) > 0) {
		errs = append(errs, errors.New("--from, --to and --rules are for --from-influx"))
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
		if src, err = influxAlertSource(cfg, patterns, *fromFlag, *toFlag, truth, e.stderr); err != nil {
			return err
		}
	}
	in, err := src(ctx)
	if err != nil {
		return err
	}
	rep := simulator.Score(truth, in.Alerts, simulator.ScoreOptions{End: in.End, Grace: grace, Rules: in.Rules})
	if *jsonOut {
		return writeScoreJSON(e.stdout, rep, *truthFile, in.What)
	}
	return writeScoreTable(e.stdout, rep, *truthFile, in.What)
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

// alertsFileSource reads alerts from a file (readAlerts).
func alertsFileSource(path string) alertSource {
	return func(context.Context) (scoreInput, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return scoreInput{}, fmt.Errorf("--alerts: %w", err)
		}
		in, err := readAlerts(path, b)
		in.What = "alerts from " + path
		return in, err
	}
}

// alertWire is an alert as a file may hold it: as `rules backtest --json`
// prints it (device_id, fired_at), or a proactive.Alert marshalled as it is
// (Device, FiredAt; keys match case-insensitively).
type alertWire struct {
	Rule      string    `json:"rule"`
	DeviceID  string    `json:"device_id"`
	Device    string    `json:"device"`
	Component string    `json:"component"`
	State     string    `json:"state"`
	FiredAt   time.Time `json:"fired_at"`
	FiredAtGo time.Time `json:"firedat"`
}

// readAlerts reads the alerts of a file: a backtest report (a JSON object
// with "alerts", and "rules" naming what ran), a JSON array of alerts, or
// JSON lines of them. It reports every bad record, up to 20.
func readAlerts(name string, b []byte) (scoreInput, error) {
	var in scoreInput
	trimmed := bytes.TrimSpace(b)
	var records []json.RawMessage
	switch {
	case len(trimmed) == 0:
		return in, nil
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &records); err != nil {
			return in, fmt.Errorf("%s: %w", name, err)
		}
	default:
		dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(trimmed)))
		for dec.More() {
			var r json.RawMessage
			if err := dec.Decode(&r); err != nil {
				return in, fmt.Errorf("%s: record %d: %w", name, len(records)+1, err)
			}
			records = append(records, r)
		}
		var report struct {
			Alerts *[]json.RawMessage `json:"alerts"`
			Rules  []struct {
				Rule      string `json:"rule"`
				Component string `json:"component"`
			} `json:"rules"`
			To time.Time `json:"to"`
		}
		if len(records) == 1 && json.Unmarshal(records[0], &report) == nil && report.Alerts != nil {
			records = *report.Alerts
			for _, r := range report.Rules {
				in.Rules = append(in.Rules, simulator.RuleInfo{Name: r.Rule, Component: r.Component})
			}
			in.End = report.To
		}
	}
	var errs []error
	for i, r := range records {
		var w alertWire
		if err := json.Unmarshal(r, &w); err != nil {
			errs = append(errs, fmt.Errorf("%s: alert %d: %w", name, i+1, err))
		} else {
			a := proactive.Alert{Rule: w.Rule, Device: proactive.DeviceID(w.DeviceID), Component: w.Component,
				State: proactive.AlertState(w.State), FiredAt: w.FiredAt}
			if a.Device == "" {
				a.Device = proactive.DeviceID(w.Device)
			}
			if a.FiredAt.IsZero() {
				a.FiredAt = w.FiredAtGo
			}
			var miss []string
			for _, f := range []struct{ name, v string }{{"rule", a.Rule}, {"device_id", string(a.Device)}, {"component", a.Component}} {
				if f.v == "" {
					miss = append(miss, f.name)
				}
			}
			// A pending alert has not fired: it needs no time.
			if a.FiredAt.IsZero() && (a.State == "" || a.State == proactive.AlertFiring) {
				miss = append(miss, "fired_at")
			}
			if len(miss) > 0 {
				errs = append(errs, fmt.Errorf("%s: alert %d: no %s", name, i+1, strings.Join(miss, ", ")))
			}
			in.Alerts = append(in.Alerts, a)
		}
		if len(errs) >= 20 {
			break
		}
	}
	return in, errors.Join(errs...)
}

// influxAlertSource runs the rule files over the telemetry in the
// configured InfluxDB with the rule backtest (rules.Backtest over
// rules.InfluxSource, the same evaluation the engine makes live).
func influxAlertSource(cfg Config, patterns []string, fromFlag, toFlag string, truth []simulator.Truth, progress io.Writer) (alertSource, error) {
	now := time.Now().UTC()
	var errs []error
	// By default the read spans the simulation: from well before the
	// first onset (the scenario's history) to past the last breakdown
	// (simulated time may run ahead of the clock); the period then ends at
	// the last sample, so that devices are not taken for silent after the
	// simulation stopped.
	first, last := now, now
	for _, t := range truth {
		first = minTime(first, t.Onset)
		last = laterTime(last, laterTime(t.Onset, t.Breakdown))
	}
	from, to := first.Add(-30*24*time.Hour), last.Add(30*24*time.Hour)
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
	return func(ctx context.Context) (scoreInput, error) {
		influx := ingest.NewInflux(ingest.InfluxOptions{
			URL: cfg.Influx.URL, Token: cfg.Influx.Token.Reveal(), Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
			Timeout: backtestQueryTimeout,
		})
		defer influx.Close()
		fmt.Fprintf(progress, "score: %d rule(s) over the telemetry from %s to %s in InfluxDB at %s bucket %s\n", len(set.Rules()),
			from.Format(time.RFC3339), to.Format(time.RFC3339), redactURL(cfg.Influx.URL), cfg.Influx.Bucket)
		rep, err := rules.Backtest(ctx, set, rules.InfluxSource(influx.Client(), cfg.Influx.Org, cfg.Influx.Bucket, from, to, ""),
			rules.BacktestOptions{To: end})
		if err != nil {
			return scoreInput{}, err
		}
		fmt.Fprintf(progress, "score: %d samples from %d devices, %s to %s\n", rep.Samples, rep.Devices,
			rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339))
		in := scoreInput{Alerts: rep.Alerts, End: rep.To, What: "rules over InfluxDB " + redactURL(cfg.Influx.URL) + " bucket " + cfg.Influx.Bucket}
		for _, r := range set.Rules() {
			in.Rules = append(in.Rules, simulator.RuleInfo{Name: r.Name, Component: r.Component})
		}
		return in, nil
	}, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func laterTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// leadString prints a lead time, negative for a late alert.
func leadString(d time.Duration) string {
	if d < 0 {
		return "-" + rules.FormatLead(-d)
	}
	return rules.FormatLead(d)
}

func ratioString(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// writeScoreTable prints the report for people: the faults, the rules, the
// false alerts, and a summary line.
func writeScoreTable(w io.Writer, rep *simulator.ScoreReport, truthFile, what string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Score of %d alert(s) (%s) against %d fault(s) of %s\n\n", rep.Alerts, what, len(rep.Faults), truthFile)
	fmt.Fprintf(tw, "FAULT\tDEVICE\tCOMPONENT\tONSET\tBREAKDOWN\tOUTCOME\tRULE\tFIRED AT\tLEAD\n")
	for _, f := range rep.Faults {
		rule := f.Rule
		if rule == "" {
			rule = "-"
		}
		lead := "-"
		if f.Rule != "" && !f.Breakdown.IsZero() {
			lead = leadString(f.Lead)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Fault, f.Device, f.Component, timeString(f.Onset),
			timeString(f.Breakdown), f.Outcome, rule, timeString(f.FiredAt), lead)
	}
	fmt.Fprintf(tw, "\nRULE\tCOMPONENT\tALERTS\tTRUE\tFALSE\tFAULTS\tDETECTED\tPRECISION\tRECALL\tMEDIAN LEAD\n")
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Name, r.Component, r.Alerts, r.TrueAlerts, r.FalseAlerts,
			r.Faults, r.Detected, ratioString(r.Precision), ratioString(r.Recall), rules.FormatLead(r.MedianLead))
	}
	if len(rep.FalseAlerts) > 0 {
		fmt.Fprintf(tw, "\nFALSE ALERT\tDEVICE\tCOMPONENT\tFIRED AT\tDEVICE HAS\n")
		for _, a := range rep.FalseAlerts {
			has := "no fault"
			if !a.HealthyDevice {
				has = "other faults"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Rule, a.Device, a.Component, timeString(a.FiredAt), has)
		}
	}
	fmt.Fprintf(tw, "\nFaults: %d detected (median lead %s), %d late, %d missed, %d unwatched. False alerts: %d (%d on devices without a fault).\n",
		rep.Detected, rules.FormatLead(rep.MedianLead), rep.Late, rep.Missed, rep.Unwatched, len(rep.FalseAlerts), rep.FalseOnHealthy)
	return tw.Flush()
}

// scoreJSON is the --json report; durations are in nanoseconds (as in
// rules backtest --json), ratios null when undefined.
type scoreJSON struct {
	Truth          string           `json:"truth"`
	Source         string           `json:"source"`
	Alerts         int              `json:"alerts"`
	Faults         int              `json:"faults"`
	Detected       int              `json:"detected"`
	Late           int              `json:"late"`
	Missed         int              `json:"missed"`
	Unwatched      int              `json:"unwatched"`
	FalseAlerts    int              `json:"false_alerts"`
	FalseOnHealthy int              `json:"false_alerts_on_healthy_devices"`
	MedianLead     time.Duration    `json:"median_lead_ns"`
	FaultList      []faultJSON      `json:"fault_outcomes"`
	Rules          []ruleScoreJSON  `json:"rules"`
	FalseList      []falseAlertJSON `json:"false_alert_list"`
}

type faultJSON struct {
	Device    string            `json:"device_id"`
	Model     string            `json:"model"`
	Component string            `json:"component"`
	Fault     string            `json:"fault"`
	Shape     simulator.Shape   `json:"shape"`
	Onset     time.Time         `json:"onset"`
	Breakdown time.Time         `json:"breakdown,omitzero"`
	Outcome   simulator.Outcome `json:"outcome"`
	Rule      string            `json:"rule,omitempty"`
	FiredAt   time.Time         `json:"fired_at,omitzero"`
	Lead      time.Duration     `json:"lead_ns,omitempty"`
	Alerts    int               `json:"alerts"`
}

type ruleScoreJSON struct {
	Rule        string          `json:"rule"`
	Component   string          `json:"component"`
	Alerts      int             `json:"alerts"`
	TrueAlerts  int             `json:"true_alerts"`
	FalseAlerts int             `json:"false_alerts"`
	Faults      int             `json:"faults"`
	Detected    int             `json:"detected"`
	Precision   *float64        `json:"precision"`
	Recall      *float64        `json:"recall"`
	MedianLead  time.Duration   `json:"median_lead_ns"`
	LeadTimes   []time.Duration `json:"lead_times_ns"`
}

type falseAlertJSON struct {
	Rule          string             `json:"rule"`
	Device        proactive.DeviceID `json:"device_id"`
	Component     string             `json:"component"`
	FiredAt       time.Time          `json:"fired_at"`
	HealthyDevice bool               `json:"healthy_device"`
}

func writeScoreJSON(w io.Writer, rep *simulator.ScoreReport, truthFile, what string) error {
	out := scoreJSON{Truth: truthFile, Source: what, Alerts: rep.Alerts, Faults: len(rep.Faults), Detected: rep.Detected,
		Late: rep.Late, Missed: rep.Missed, Unwatched: rep.Unwatched, FalseAlerts: len(rep.FalseAlerts),
		FalseOnHealthy: rep.FalseOnHealthy, MedianLead: rep.MedianLead,
		FaultList: []faultJSON{}, Rules: []ruleScoreJSON{}, FalseList: []falseAlertJSON{}}
	for _, f := range rep.Faults {
		out.FaultList = append(out.FaultList, faultJSON{Device: f.Device, Model: f.Model, Component: f.Component, Fault: f.Fault,
			Shape: f.Shape, Onset: f.Onset.UTC(), Breakdown: f.Breakdown.UTC(), Outcome: f.Outcome, Rule: f.Rule,
			FiredAt: f.FiredAt.UTC(), Lead: f.Lead, Alerts: f.Alerts})
	}
	for _, r := range rep.Rules {
		lt := r.LeadTimes
		if lt == nil {
			lt = []time.Duration{}
		}
		out.Rules = append(out.Rules, ruleScoreJSON{Rule: r.Name, Component: r.Component, Alerts: r.Alerts, TrueAlerts: r.TrueAlerts,
			FalseAlerts: r.FalseAlerts, Faults: r.Faults, Detected: r.Detected, Precision: r.Precision, Recall: r.Recall,
			MedianLead: r.MedianLead, LeadTimes: lt})
	}
	for _, a := range rep.FalseAlerts {
		out.FalseList = append(out.FalseList, falseAlertJSON{Rule: a.Rule, Device: a.Device, Component: a.Component,
			FiredAt: a.FiredAt.UTC(), HealthyDevice: a.HealthyDevice})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ticketsAPISource reads every ticket of the running platform through its
// API, page by page, as one alert each: fired when the alert that opened it
// fired (its timeline's alert event, in the devices' time, which is
// simulated time under simulate --speed), else when it opened.
func ticketsAPISource(base, token string) alertSource {
	base = strings.TrimRight(base, "/")
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(ctx context.Context, path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return fmt.Errorf("--api: GET %s: %w", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("--api: GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("--api: GET %s: %w", path, err)
		}
		return nil
	}
	type ticket struct {
		ID        int64              `json:"id"`
		Device    proactive.DeviceID `json:"device_id"`
		Component string             `json:"component"`
		Rule      string             `json:"rule"`
		Severity  proactive.Severity `json:"severity"`
		OpenedAt  time.Time          `json:"opened_at"`
		Timeline  []struct {
			Kind string          `json:"kind"`
			Body json.RawMessage `json:"body"`
		} `json:"timeline"`
	}
	return func(ctx context.Context) (scoreInput, error) {
		in := scoreInput{What: "tickets of " + redactURL(base)}
		cursor := ""
		for {
			var page struct {
				Items []ticket `json:"items"`
				Next  string   `json:"next"`
			}
			path := "/api/v1/tickets?limit=500"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := get(ctx, path, &page); err != nil {
				return in, err
			}
			for _, t := range page.Items {
				var full ticket
				if err := get(ctx, fmt.Sprintf("/api/v1/tickets/%d", t.ID), &full); err != nil {
					return in, err
				}
				fired := t.OpenedAt
				for _, ev := range full.Timeline {
					var body struct {
						FiredAt time.Time `json:"fired_at"`
					}
					if ev.Kind == "alert" && json.Unmarshal(ev.Body, &body) == nil && !body.FiredAt.IsZero() {
						fired = body.FiredAt
						break
					}
				}
				in.Alerts = append(in.Alerts, proactive.Alert{Rule: t.Rule, Device: t.Device, Component: t.Component,
					Severity: t.Severity, State: proactive.AlertFiring, ActiveAt: fired, FiredAt: fired})
			}
			if page.Next == "" {
				return in, nil
			}
			cursor = page.Next
		}
	}
}
