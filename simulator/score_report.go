package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
)

// leadString prints a lead time, negative for a late alert.
func leadString(d time.Duration) string {
	if d < 0 {
		return "-" + formatLead(-d)
	}
	return formatLead(d)
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

// WriteTable prints the report for people: the faults, the rules, the
// false alerts, and a summary line. truthFile and what (the alerts' source)
// head it.
func (rep *ScoreReport) WriteTable(w io.Writer, truthFile, what string) error {
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
			r.Faults, r.Detected, ratioString(r.Precision), ratioString(r.Recall), formatLead(r.MedianLead))
	}
	if len(rep.FalseAlerts) > 0 {
		fmt.Fprintf(tw, "\nFALSE ALERT\tDEVICE\tCOMPONENT\tFIRED AT\tDEVICE HAS\n")
		for _, a := range rep.FalseAlerts {
			has := "no fault"
			if !a.HealthyDevice {
				has = "other faults"
			}
			if a.Decoy {
				has += ", a decoy"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Rule, a.Device, a.Component, timeString(a.FiredAt), has)
		}
	}
	fmt.Fprintf(tw, "\nFaults: %d detected (median lead %s), %d late, %d missed, %d unwatched. False alerts: %d (%d on devices without a fault).\n",
		rep.Detected, formatLead(rep.MedianLead), rep.Late, rep.Missed, rep.Unwatched, len(rep.FalseAlerts), rep.FalseOnHealthy)
	if rep.Decoys > 0 {
		fmt.Fprintf(tw, "Decoys (drifts with no failure behind them): %d, with %d false alert(s) on them.\n", rep.Decoys, rep.FalseOnDecoys)
	}
	return tw.Flush()
}

// scoreJSON is the JSON report; durations are in nanoseconds (as in
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
	Decoys         int              `json:"decoys"`
	FalseOnDecoys  int              `json:"false_alerts_on_decoys"`
	MedianLead     time.Duration    `json:"median_lead_ns"`
	FaultList      []faultJSON      `json:"fault_outcomes"`
	Rules          []ruleScoreJSON  `json:"rules"`
	FalseList      []falseAlertJSON `json:"false_alert_list"`
}

type faultJSON struct {
	Device    string        `json:"device_id"`
	Model     string        `json:"model"`
	Component string        `json:"component"`
	Fault     string        `json:"fault"`
	Shape     Shape         `json:"shape"`
	Onset     time.Time     `json:"onset"`
	Breakdown time.Time     `json:"breakdown,omitzero"`
	Outcome   FaultResult   `json:"outcome"`
	Rule      string        `json:"rule,omitempty"`
	FiredAt   time.Time     `json:"fired_at,omitzero"`
	Lead      time.Duration `json:"lead_ns,omitempty"`
	Alerts    int           `json:"alerts"`
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
	Decoy         bool               `json:"decoy"`
}

// WriteJSON prints the report as `proactive simulate score --json` does:
// durations in nanoseconds, ratios null when undefined.
func (rep *ScoreReport) WriteJSON(w io.Writer, truthFile, what string) error {
	out := scoreJSON{Truth: truthFile, Source: what, Alerts: rep.Alerts, Faults: len(rep.Faults), Detected: rep.Detected,
		Late: rep.Late, Missed: rep.Missed, Unwatched: rep.Unwatched, FalseAlerts: len(rep.FalseAlerts),
		FalseOnHealthy: rep.FalseOnHealthy, Decoys: rep.Decoys, FalseOnDecoys: rep.FalseOnDecoys, MedianLead: rep.MedianLead,
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
			FiredAt: a.FiredAt.UTC(), HealthyDevice: a.HealthyDevice, Decoy: a.Decoy})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// formatLead prints a lead time to the minute, as the rule backtest does:
// "1w2d", "3d4h", "45m"; "-" for none.
func formatLead(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	var b []byte
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}} {
		if q := d / u.size; q > 0 {
			b = fmt.Appendf(b, "%d%s", q, u.name)
			d -= q * u.size
		}
	}
	return string(b)
}
