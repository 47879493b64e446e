package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// leadString prints a lead time, negative for a late alert.
func leadString(d time.Duration) string {
	if d < 0 {
		return "-" + rules.FormatLead(-d)
	}
	return rules.FormatLead(d)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteTable prints the report for people: the faults, the rules, the
// components, the false alerts, and a summary line, in the words of `rules
// backtest --failures`. truthFile and what (the alerts' source) head it.
func (rep *ScoreReport) WriteTable(w io.Writer, truthFile, what string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Score of %d alert(s) (%s) against %d fault(s) of %s\n\n", rep.Alerts, what, len(rep.Faults), truthFile)
	fmt.Fprintf(tw, "FAULT\tDEVICE\tCOMPONENT\tONSET\tBREAKDOWN\tOUTCOME\tRULE\tFIRED AT\tLEAD\n")
	for _, f := range rep.Faults {
		rule, lead := "-", "-"
		if f.Rule != "" {
			rule, lead = f.Rule, leadString(f.Lead)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Fault, f.Device, f.Component, timeString(f.Onset),
			timeString(f.Breakdown), f.Outcome, rule, timeString(f.FiredAt), lead)
	}
	writeScores(tw, "RULE", rep.Rules)
	writeScores(tw, "COMPONENT", rep.Components)
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
	fmt.Fprintf(tw, "\nFaults: %d detected (lead median %s, p10 %s, p90 %s), %d late, %d missed, %d unwatched. False alerts: %d (%d on devices without a fault).\n",
		rep.Detected, rules.FormatLead(rep.LeadMedian), rules.FormatLead(rep.LeadP10), rules.FormatLead(rep.LeadP90),
		rep.Late, rep.Missed, rep.Unwatched, len(rep.FalseAlerts), rep.FalseOnHealthy)
	if rep.Decoys > 0 {
		fmt.Fprintf(tw, "Decoys (drifts with no failure behind them): %d, with %d false alert(s) on them.\n", rep.Decoys, rep.FalseOnDecoys)
	}
	return tw.Flush()
}

// writeScores prints a table of scores, one per rule or component.
func writeScores(tw io.Writer, first string, scores []rules.Score) {
	fmt.Fprintf(tw, "\n%s\t", first)
	if first == "RULE" {
		fmt.Fprintf(tw, "COMPONENT\t")
	}
	fmt.Fprintf(tw, "FAILURES\tDETECTED\tRECALL\tALERTS\tFALSE\tPRECISION\tLEAD MEDIAN\tP10\tP90\n")
	for _, s := range scores {
		if first == "RULE" {
			fmt.Fprintf(tw, "%s\t", s.Rule)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Component, s.Failures, s.Detected, rules.FormatRatio(s.Recall),
			s.Alerts, s.FalseAlerts, rules.FormatRatio(s.Precision), rules.FormatLead(s.LeadMedian), rules.FormatLead(s.LeadP10), rules.FormatLead(s.LeadP90))
	}
}

// scoreJSON is the JSON report, in the words and units of `rules backtest
// --json`: durations in seconds, ratios null when undefined.
type scoreJSON struct {
	Truth          string           `json:"truth"`
	Source         string           `json:"source"`
	Alerts         int              `json:"alerts"`
	Failures       int              `json:"failures"`
	Detected       int              `json:"detected"`
	Late           int              `json:"late"`
	Missed         int              `json:"missed"`
	Unwatched      int              `json:"unwatched"`
	FalseAlerts    int              `json:"false_alerts"`
	FalseOnHealthy int              `json:"false_alerts_on_healthy_devices"`
	Decoys         int              `json:"decoys"`
	FalseOnDecoys  int              `json:"false_alerts_on_decoys"`
	LeadMedianS    *float64         `json:"lead_median_s"`
	LeadP10S       *float64         `json:"lead_p10_s"`
	LeadP90S       *float64         `json:"lead_p90_s"`
	FaultList      []faultJSON      `json:"fault_outcomes"`
	Rules          []rules.Score    `json:"rules"`
	Components     []rules.Score    `json:"components"`
	FalseList      []falseAlertJSON `json:"false_alert_list"`
}

type faultJSON struct {
	Device    string      `json:"device_id"`
	Model     string      `json:"model"`
	Component string      `json:"component"`
	Fault     string      `json:"fault"`
	Shape     Shape       `json:"shape"`
	Onset     time.Time   `json:"onset"`
	Breakdown time.Time   `json:"breakdown,omitzero"`
	Outcome   FaultResult `json:"outcome"`
	Rule      string      `json:"rule,omitempty"`
	FiredAt   time.Time   `json:"fired_at,omitzero"`
	LeadS     *float64    `json:"lead_s,omitempty"`
}

type falseAlertJSON struct {
	Rule          string             `json:"rule"`
	Device        proactive.DeviceID `json:"device_id"`
	Component     string             `json:"component"`
	FiredAt       time.Time          `json:"fired_at"`
	HealthyDevice bool               `json:"healthy_device"`
	Decoy         bool               `json:"decoy"`
}

func seconds(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	s := d.Seconds()
	return &s
}

// WriteJSON prints the report as `proactive simulate score --json` does.
func (rep *ScoreReport) WriteJSON(w io.Writer, truthFile, what string) error {
	detected := rep.Detected > 0
	out := scoreJSON{Truth: truthFile, Source: what, Alerts: rep.Alerts, Failures: len(rep.Faults), Detected: rep.Detected,
		Late: rep.Late, Missed: rep.Missed, Unwatched: rep.Unwatched, FalseAlerts: len(rep.FalseAlerts),
		FalseOnHealthy: rep.FalseOnHealthy, Decoys: rep.Decoys, FalseOnDecoys: rep.FalseOnDecoys,
		LeadMedianS: seconds(rep.LeadMedian, detected), LeadP10S: seconds(rep.LeadP10, detected), LeadP90S: seconds(rep.LeadP90, detected),
		FaultList: []faultJSON{}, Rules: rep.Rules, Components: rep.Components, FalseList: []falseAlertJSON{}}
	for _, f := range rep.Faults {
		out.FaultList = append(out.FaultList, faultJSON{Device: f.Device, Model: f.Model, Component: f.Component, Fault: f.Fault,
			Shape: f.Shape, Onset: f.Onset.UTC(), Breakdown: f.Breakdown.UTC(), Outcome: f.Outcome, Rule: f.Rule,
			FiredAt: f.FiredAt.UTC(), LeadS: seconds(f.Lead, f.Rule != "")})
	}
	if out.Rules == nil {
		out.Rules = []rules.Score{}
	}
	if out.Components == nil {
		out.Components = []rules.Score{}
	}
	for _, a := range rep.FalseAlerts {
		out.FalseList = append(out.FalseList, falseAlertJSON{Rule: a.Rule, Device: a.Device, Component: a.Component,
			FiredAt: a.FiredAt.UTC(), HealthyDevice: a.HealthyDevice, Decoy: a.Decoy})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
