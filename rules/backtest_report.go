package rules

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
)

// TableFirstFires is how many first fires WriteTable lists per rule.
const TableFirstFires = 10

// FormatLead prints a lead time or prediction to the minute, as the
// backtest and score tables do: "3d4h", "45m"; "-" for none.
func FormatLead(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return proactive.FormatDuration(d.Round(time.Minute))
}

// WriteTable prints the report for people: a block per rule, with its
// first fires up to TableFirstFires. scored says whether failures were
// given, and the scoring is printed.
func (rep *BacktestReport) WriteTable(w io.Writer, scored bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Backtest %s to %s (%.1f days): %d samples from %d devices\n",
		rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339), rep.Days(), rep.Samples, rep.Devices)
	if rep.Outreach != nil && rep.Outreach.Note != "" {
		fmt.Fprintf(tw, "Tickets and texts: %s\n", rep.Outreach.Note)
	}
	for _, r := range rep.Rules {
		fmt.Fprintf(tw, "\nrule %s (component %s)\n", r.Rule, r.Component)
		fmt.Fprintf(tw, "  fires\t%d\n", r.Fires)
		fmt.Fprintf(tw, "  devices\t%d\n", r.Devices)
		if rep.Outreach != nil {
			fmt.Fprintf(tw, "  tickets\t%d\t%.2f/day%s\n", r.Tickets, r.TicketsPerDay, trueFalse(r.TrueTickets, r.FalseTickets))
			fmt.Fprintf(tw, "  texts\t%d\t%.2f/day%s\n", r.Texts, r.TextsPerDay, trueFalse(r.TrueTexts, r.FalseTexts))
		}
		if r.Score != nil {
			writeScore(tw, *r.Score)
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
			if i == TableFirstFires {
				fmt.Fprintf(tw, "    … and %d more devices\n", len(r.FirstFires)-TableFirstFires)
				break
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", ff.Device, ff.At.UTC().Format(time.RFC3339), FormatLead(ff.TimeToFailure))
		}
	}
	if len(rep.Components) > 0 {
		fmt.Fprintf(tw, "\nper component\n")
		for _, c := range rep.Components {
			fmt.Fprintf(tw, "\ncomponent %s\n", c.Component)
			writeScore(tw, c)
		}
	}
	if err := tw.Flush(); err != nil || rep.Compare == nil {
		return err
	}
	return rep.writeComparison(w)
}

// trueFalse is the table's split of tickets or texts by truth, "" without
// failures.
func trueFalse(t, f *int) string {
	if t == nil || f == nil {
		return ""
	}
	return fmt.Sprintf("\t%d true, %d false", *t, *f)
}

// writeScore prints a score's lines of the table.
func writeScore(tw io.Writer, s Score) {
	fmt.Fprintf(tw, "  detected\t%d of %d failures\trecall %s\n", s.Detected, s.Failures, FormatRatio(s.Recall))
	fmt.Fprintf(tw, "  alerts\t%d, %d false\tprecision %s\n", s.Alerts, s.FalseAlerts, FormatRatio(s.Precision))
	fmt.Fprintf(tw, "  lead median\t%s\tp10 %s, p90 %s\n", FormatLead(s.LeadMedian), FormatLead(s.LeadP10), FormatLead(s.LeadP90))
}

// FormatRatio prints a precision or recall as a percentage, "-" when
// undefined.
func FormatRatio(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

// MarshalJSON writes the rule's report with, when scored, its score's
// figures (scoreJSON) beside its own.
func (r RuleReport) MarshalJSON() ([]byte, error) {
	type plain RuleReport
	if r.Score == nil {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		scoreJSON
	}{plain(r), r.Score.json()})
}

// backtestJSON is the JSON report.
type backtestJSON struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Days    float64   `json:"days"`
	Samples int64     `json:"samples"`
	Devices int       `json:"devices"`
	// Scored says whether failures were given: without them detected,
	// missed, lead times and false alarms are not measured.
	Scored bool `json:"scored"`
	// Outreach says how tickets and texts were counted (the replay through
	// the notifier), absent when they were not.
	Outreach   string       `json:"outreach,omitempty"`
	Rules      []RuleReport `json:"rules"`
	Components []Score      `json:"components,omitempty"`
	Alerts     []alertJSON  `json:"alerts"`
	// Compare is the second rule set's report (--compare), with Label
	// saying where each set came from.
	Label   string        `json:"label,omitempty"`
	Compare *backtestJSON `json:"compare,omitempty"`
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

// WriteJSON prints the report as `proactive rules backtest --json` does:
// the rules' reports and every alert, durations in nanoseconds.
func (rep *BacktestReport) WriteJSON(w io.Writer, scored bool) error {
	out := rep.json(scored)
	if c := rep.Compare; c != nil {
		other := c.Other.json(scored)
		out.Label, other.Label = c.Label, c.OtherLabel
		out.Compare = &other
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (rep *BacktestReport) json(scored bool) backtestJSON {
	out := backtestJSON{From: rep.From.UTC(), To: rep.To.UTC(), Days: rep.Days(), Samples: rep.Samples, Devices: rep.Devices,
		Scored: scored, Rules: rep.Rules, Components: rep.Components, Alerts: []alertJSON{}}
	if rep.Outreach != nil {
		out.Outreach = rep.Outreach.Note
	}
	for _, a := range rep.Alerts {
		out.Alerts = append(out.Alerts, alertJSON{Rule: a.Rule, Device: a.Device, Model: a.Model, Component: a.Component,
			Severity: a.Severity, State: a.State, Summary: a.Summary, ActiveAt: a.ActiveAt.UTC(), FiredAt: a.FiredAt.UTC(),
			TimeToFailure: a.TimeToFailure})
	}
	for i := range out.Rules {
		if out.Rules[i].FirstFires == nil {
			out.Rules[i].FirstFires = []FirstFire{}
		}
	}
	return out
}

// Summary returns r as the JSON report prints it, its first fires cut to
// the table's (TableFirstFires): what the rules page shows of a backtest.
func (r RuleReport) Summary() ([]byte, error) {
	if len(r.FirstFires) > TableFirstFires {
		r.FirstFires = r.FirstFires[:TableFirstFires]
	}
	if r.FirstFires == nil {
		r.FirstFires = []FirstFire{}
	}
	return json.Marshal(r)
}
