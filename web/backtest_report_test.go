package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

var reportStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

func day(d float64) time.Time { return reportStart.Add(time.Duration(d * 24 * float64(time.Hour))) }

// syntheticBacktest is ten days of a fleet scored with rules.ScoreAlerts:
// pump_wear catches dev-1's failure 48 h ahead and fires a decoy on dev-2
// (false); dev-3's failure is missed; the rule `<b>x</b>` fires once on
// dev-1 too late to count. Compared, the B set's pump_wear only fires the
// decoy.
func syntheticBacktest(compare bool) *rules.BacktestReport {
	failures := []rules.Failure{
		{Device: "dev-1", Time: day(8), Component: "pump"},
		{Device: "dev-3", Time: day(9), Component: "pump"},
	}
	rs := []rules.ScoredRule{{Name: "pump_wear", Component: "pump"}, {Name: "<b>x</b>", Component: "pump"}}
	alert := func(rule string, dev proactive.DeviceID, at time.Time) proactive.Alert {
		return proactive.Alert{Rule: rule, Device: dev, Component: "pump", State: proactive.AlertFiring, ActiveAt: at, FiredAt: at}
	}
	a := []proactive.Alert{alert("pump_wear", "dev-2", day(3)), alert("pump_wear", "dev-1", day(6)), alert("<b>x</b>", "dev-1", day(8.5))}
	b := []proactive.Alert{alert("pump_wear", "dev-2", day(3))}
	build := func(alerts []proactive.Alert) *rules.BacktestReport {
		sc := rules.ScoreAlerts(alerts, failures, rs, rules.ScoreOptions{From: day(0), To: day(10)})
		rep := &rules.BacktestReport{Alerts: alerts, Samples: 4321, Devices: 3, From: day(0), To: day(10), Components: sc.Components,
			Outreach: &rules.Outreach{Note: "replayed through the notifier"}}
		for i, r := range rs {
			s := sc.Rules[i]
			rep.Rules = append(rep.Rules, rules.RuleReport{Rule: r.Name, Component: r.Component, Fires: s.Alerts,
				Tickets: s.Alerts, TicketsPerDay: float64(s.Alerts) / 10, Texts: s.Alerts / 2, TextsPerDay: float64(s.Alerts/2) / 10, Score: &s})
		}
		return rep
	}
	rep := build(a)
	if compare {
		rep.Compare = &rules.Comparison{Label: "rules/", OtherLabel: "tuned/", Other: build(b)}
	}
	return rep
}

// reportSamples is dev-3's telemetry: a pressure every 10 minutes that
// falls two days before its failure, and a temperature.
func reportSamples(ctx context.Context, device proactive.DeviceID, from, to time.Time, fn func(proactive.Sample) error) error {
	if device != "dev-3" {
		return nil
	}
	for at := day(0); at.Before(day(10)); at = at.Add(10 * time.Minute) {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		p := 3.0
		if at.After(day(7)) {
			p -= at.Sub(day(7)).Hours() / 24
		}
		if err := fn(proactive.Sample{Device: device, Time: at, Metrics: map[string]float64{"pressure": p, "temp": 40}}); err != nil {
			return err
		}
	}
	return nil
}

func writeReport(t *testing.T, rep *rules.BacktestReport, o web.BacktestReportOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := web.WriteBacktestReport(t.Context(), &b, rep, o); err != nil {
		t.Fatalf("WriteBacktestReport: %v", err)
	}
	return b.String()
}

// reportJSON is the part of the page's data the tests check.
type reportJSON struct {
	Scored  bool      `json:"scored"`
	Horizon float64   `json:"horizon_s"`
	Labels  []string  `json:"labels"`
	Bins    []float64 `json:"bins_h"`
	Leads   []struct {
		Rule   string      `json:"rule"`
		Leads  [][]float64 `json:"leads_h"`
		Counts [][]int     `json:"counts"`
	} `json:"leads"`
	PerDay []struct {
		Days   []int64 `json:"days"`
		Series []struct {
			Name   string `json:"name"`
			Counts []int  `json:"counts"`
		} `json:"series"`
	} `json:"per_day"`
	Timeline struct {
		Devices  []string `json:"devices"`
		Failures []struct {
			Lane     int     `json:"lane"`
			Detected bool    `json:"detected"`
			LeadH    float64 `json:"lead_h"`
		} `json:"failures"`
		Alerts []struct {
			Rule  string `json:"rule"`
			Set   int    `json:"set"`
			False bool   `json:"false"`
		} `json:"alerts"`
	} `json:"timeline"`
	Missed []struct {
		Device string `json:"device"`
		T      int64  `json:"t"`
		Series []struct {
			Metric string    `json:"metric"`
			T      []int64   `json:"t"`
			V      []float64 `json:"v"`
		} `json:"series"`
	} `json:"missed"`
}

// parseReport checks that page parses as HTML, has no external resource,
// and returns its data block and its text.
func parseReport(t *testing.T, page string) (reportJSON, string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse the page: %v", err)
	}
	var data, text strings.Builder
	blocks, h1 := 0, 0
	var walk func(*html.Node, bool)
	walk = func(n *html.Node, inScript bool) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && regexp.MustCompile(`^\s*(https?:)?//`).MatchString(a.Val) {
					t.Errorf("<%s %s=%q> loads from the network", n.Data, a.Key, a.Val)
				}
			}
			switch n.Data {
			case "h1":
				h1++
			case "link", "iframe", "img":
				t.Errorf("<%s> in a self-contained page", n.Data)
			case "script":
				inScript = true
				for _, a := range n.Attr {
					if a.Key == "type" && a.Val == "application/json" && n.FirstChild != nil {
						blocks++
						data.WriteString(n.FirstChild.Data)
					}
				}
			case "style":
				inScript = true
			}
		}
		if n.Type == html.TextNode && !inScript {
			text.WriteString(n.Data + " ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inScript)
		}
	}
	walk(doc, false)
	if blocks != 1 || h1 != 1 {
		t.Fatalf("%d JSON data blocks and %d h1, want one of each", blocks, h1)
	}
	var out reportJSON
	if err := json.Unmarshal([]byte(data.String()), &out); err != nil {
		t.Fatalf("the data block is not JSON: %v\n%.500s", err, data.String())
	}
	return out, strings.Join(strings.Fields(text.String()), " ")
}

func TestBacktestReport(t *testing.T) {
	t.Run("scored", func(t *testing.T) {
		page := writeReport(t, syntheticBacktest(false), web.BacktestReportOptions{Samples: reportSamples, Generated: day(11)})
		data, text := parseReport(t, page)
		if !data.Scored || data.Horizon != rules.DefaultHorizon.Seconds() || len(data.Labels) != 0 {
			t.Errorf("scored %v, horizon %v s, labels %v", data.Scored, data.Horizon, data.Labels)
		}
		if len(data.Leads) != 2 || data.Leads[0].Rule != "pump_wear" || fmt.Sprint(data.Leads[0].Leads) != "[[48]]" {
			t.Fatalf("leads %+v, want pump_wear's 48 h", data.Leads)
		}
		// Bins of a day up to 14 days: 48 h is in the third.
		if len(data.Bins) != 15 || data.Leads[0].Counts[0][2] != 1 {
			t.Errorf("bins %v, counts %v", data.Bins, data.Leads[0].Counts)
		}
		if pd := data.PerDay[0]; len(pd.Days) != 10 || pd.Series[0].Counts[3] != 1 || pd.Series[0].Counts[6] != 1 || pd.Series[1].Counts[8] != 1 {
			t.Errorf("alerts per day %+v", pd)
		}
		tl := data.Timeline
		// Devices with failures first.
		if fmt.Sprint(tl.Devices) != "[dev-1 dev-3 dev-2]" || len(tl.Failures) != 2 || len(tl.Alerts) != 3 {
			t.Fatalf("timeline %+v", tl)
		}
		falses := 0
		for _, a := range tl.Alerts {
			if a.False {
				falses++
			}
		}
		if f := tl.Failures; !f[0].Detected || f[0].LeadH != 48 || f[1].Detected || falses != 2 {
			t.Errorf("timeline failures %+v, %d false alerts; want dev-1's detected 48 h ahead, dev-3's missed, two false", f, falses)
		}
		if len(data.Missed) != 1 || data.Missed[0].Device != "dev-3" || data.Missed[0].T != day(9).Unix() {
			t.Fatalf("missed %+v, want dev-3's failure", data.Missed)
		}
		// Ten days of telemetry before and one after, 10-minute samples
		// averaged into at most 360 points.
		m := data.Missed[0]
		if len(m.Series) != 2 || m.Series[0].Metric != "pressure" || len(m.Series[0].T) == 0 || len(m.Series[0].T) > 360 ||
			m.Series[0].V[0] != 3 || m.Series[0].V[len(m.Series[0].V)-1] > 1.1 {
			t.Errorf("missed failure's telemetry %+v", m.Series)
		}
		for _, want := range []string{
			"Period 2026-10-01 00:00 UTC to 2026-10-11 00:00 UTC (1w3d)", "Horizon 2w", "Minimum lead 0s",
			"pump_wear pump 2 0 0.20 0.10 2 1 50% 2 1 50% 2d 2d 2d", // rule table
			"<b>x</b> pump 1 0 0.10 0.00 2 0 0% 1 1 0% - - -",
			"Lead times of rule pump_wear", "1 of 2 failures detected, lead median 2d",
			"dev-3, pump, failed 2026-10-10 00:00 UTC",
			"3 device(s) with a failure or an alert, one row each: 1 failure(s) detected, 1 missed; 3 alert(s), 2 of them false",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the page's text lacks %q:\n%s", want, text)
			}
		}
		// The rule name is text, never markup.
		if strings.Contains(page, "<b>x</b>") || !strings.Contains(page, "&lt;b&gt;x&lt;/b&gt;") {
			t.Errorf("the rule name <b>x</b> is not escaped")
		}
		if strings.Contains(page, "No failures were given") {
			t.Error("a scored report says no failures were given")
		}
	})

	t.Run("compare", func(t *testing.T) {
		page := writeReport(t, syntheticBacktest(true), web.BacktestReportOptions{Samples: reportSamples})
		data, text := parseReport(t, page)
		if fmt.Sprint(data.Labels) != "[rules/ tuned/]" || len(data.PerDay) != 2 {
			t.Fatalf("labels %v, %d alerts-per-day charts", data.Labels, len(data.PerDay))
		}
		if l := data.Leads[0]; len(l.Counts) != 2 || fmt.Sprint(l.Leads) != "[[48] []]" {
			t.Errorf("pump_wear's leads A and B: %+v", l)
		}
		setB := 0
		for _, a := range data.Timeline.Alerts {
			setB += a.Set
		}
		if setB != 1 {
			t.Errorf("%d alerts of set B on the time line, want 1", setB)
		}
		for _, want := range []string{
			"Rule set A rules/", "Rule set B tuned/",
			"Rule Component Fires Devices Tickets/day Texts/day Failures Detected Recall", "A B A B",
			"pump_wear pump pump 2 1 0 0 0.20 0.10 0.10 0.00 2 2 1 0 50% 0% 2 1 1 1 50% 0% 2d - 2d - 2d -",
			"Tickets and texts per day: replayed through the notifier.",
			"rules/: 1 of 2 failures detected, lead median 2d (p10 2d, p90 2d); tuned/: 0 of 2 failures detected",
			"for the failures that rule set A (rules/) missed",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the page's text lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("without failures", func(t *testing.T) {
		rep := syntheticBacktest(false)
		rep.Components = nil
		for i := range rep.Rules {
			rep.Rules[i].Score = nil
		}
		page := writeReport(t, rep, web.BacktestReportOptions{Samples: reportSamples})
		data, text := parseReport(t, page)
		if data.Scored || len(data.Leads) != 0 || len(data.Missed) != 0 || len(data.Timeline.Failures) != 0 || len(data.PerDay) != 1 {
			t.Errorf("an unscored report has %+v", data)
		}
		if fmt.Sprint(data.Timeline.Devices) != "[dev-1 dev-2]" {
			t.Errorf("devices %v, want those with alerts, most first", data.Timeline.Devices)
		}
		for _, want := range []string{"No failures were given", "Alerts per day", "2 device(s) with a alert"} {
			if !strings.Contains(text, want) {
				t.Errorf("the page's text lacks %q:\n%s", want, text)
			}
		}
		for _, unwanted := range []string{"Lead times", "Lead median", "Precision", "Telemetry around missed failures"} {
			if strings.Contains(text, unwanted) {
				t.Errorf("an unscored page shows %q", unwanted)
			}
		}
	})

	t.Run("caps", func(t *testing.T) {
		page := writeReport(t, syntheticBacktest(false), web.BacktestReportOptions{Samples: reportSamples, MaxDevices: 1, MaxMissed: 1})
		data, text := parseReport(t, page)
		if fmt.Sprint(data.Timeline.Devices) != "[dev-1]" || len(data.Timeline.Alerts) != 2 {
			t.Errorf("timeline capped at one device: %+v", data.Timeline)
		}
		if !strings.Contains(text, "Showing 1 of 3 devices: those with failures first, then the most events.") {
			t.Errorf("no note of the devices left out:\n%s", text)
		}
	})

	t.Run("telemetry fails", func(t *testing.T) {
		broken := func(context.Context, proactive.DeviceID, time.Time, time.Time, func(proactive.Sample) error) error {
			return fmt.Errorf("influx is down")
		}
		_, text := parseReport(t, writeReport(t, syntheticBacktest(false), web.BacktestReportOptions{Samples: broken}))
		if !strings.Contains(text, "The telemetry could not be read: influx is down") {
			t.Errorf("the page does not say the telemetry failed:\n%s", text)
		}
	})
}
