package web

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// The backtest report's page: its template, script and style, inlined into
// the one file with uPlot's (static/), so that it opens without a network.
//
//go:embed report
var reportFS embed.FS

// Defaults of BacktestReportOptions.
const (
	// ReportDevices is how many devices the time line shows.
	ReportDevices = 50
	// ReportMissed is how many missed failures get their telemetry charted.
	ReportMissed = 30
	// ReportAfter is how long after a missed failure its telemetry is
	// shown.
	ReportAfter = 24 * time.Hour
	// reportPoints is the most points per metric of a missed failure's
	// chart; more samples are averaged into as many windows.
	reportPoints = 360
)

// DeviceSamples streams one device's telemetry in [from, to), in time
// order, calling fn for each sample; it stops at fn's first error and
// returns it, and honours ctx.
type DeviceSamples func(ctx context.Context, device proactive.DeviceID, from, to time.Time, fn func(proactive.Sample) error) error

// BacktestReportOptions say how the report was scored and what it shows.
type BacktestReportOptions struct {
	// Horizon and MinLead are the scoring's (rules.ScoreOptions); a zero
	// Horizon is rules.DefaultHorizon.
	Horizon, MinLead time.Duration
	// Samples reads the telemetry around each missed failure, over
	// [failure - Horizon, failure + After); nil leaves those charts out.
	Samples DeviceSamples
	// MaxDevices, MaxMissed and After default to ReportDevices,
	// ReportMissed and ReportAfter.
	MaxDevices, MaxMissed int
	After                 time.Duration
	// Generated, when set, is printed as when the report was made.
	Generated time.Time
}

func (o BacktestReportOptions) withDefaults() BacktestReportOptions {
	if o.Horizon <= 0 {
		o.Horizon = rules.DefaultHorizon
	}
	if o.MaxDevices <= 0 {
		o.MaxDevices = ReportDevices
	}
	if o.MaxMissed <= 0 {
		o.MaxMissed = ReportMissed
	}
	if o.After <= 0 {
		o.After = ReportAfter
	}
	return o
}

// WriteBacktestReport writes rep as one self-contained HTML page: the
// scores per rule and per component as tables, and charts (uPlot, inlined)
// of the lead times per rule, the alerts per day, each device's alerts
// against its failures, and the telemetry around every missed failure (up
// to MaxMissed), read through o.Samples. With rep.Compare, both rule sets
// side by side. The page's data is a JSON block its script reads. An
// error reading one failure's telemetry is shown on the page, not
// returned; ctx ending is.
func WriteBacktestReport(ctx context.Context, w io.Writer, rep *rules.BacktestReport, o BacktestReportOptions) error {
	if rep == nil || rep.From.IsZero() || !rep.From.Before(rep.To) {
		return fmt.Errorf("backtest report: no report, or no period")
	}
	o = o.withDefaults()
	page, err := newReportPage(ctx, rep, o)
	if err != nil {
		return err
	}
	t, err := template.New("backtest.html").Funcs(template.FuncMap{"join": strings.Join}).ParseFS(reportFS, "report/backtest.html")
	if err != nil {
		return fmt.Errorf("backtest report template: %w", err)
	}
	if err := t.Execute(w, page); err != nil {
		return fmt.Errorf("write the backtest report: %w", err)
	}
	return nil
}

// reportPage is what the template shows: text for people (tables and the
// charts' captions) and Data for the script that draws the charts.
type reportPage struct {
	Period, Horizon, MinLead, After, Generated string
	// Outreach says how tickets and texts were counted, "" when they
	// were not (rules.Outreach.Note).
	Outreach string
	Samples  int64
	Devices  int
	Scored   bool
	// Labels name the rule sets, A then B, when compared.
	Labels []string
	Rules  reportTable
	Comps  reportTable
	// Leads are the captions of the lead histograms, one per rule name.
	Leads []reportFigure
	// PerDay has a caption per rule set.
	PerDay   []reportFigure
	Timeline reportFigure
	// DevicesNote says how many devices the time line leaves out.
	DevicesNote string
	Missed      []reportMissedView
	MissedNote  string
	Data        reportData
	Style       template.CSS
	UPlot       template.JS
	Script      template.JS
}

// reportTable is a scores table; compared, each column has an A and a B
// cell.
type reportTable struct {
	Caption, Key string
	Head         []string
	Rows         []reportRow
	Compare      bool
}

type reportRow struct {
	Name  string
	Cells []string
}

// reportFigure is one chart's caption; Index finds its data.
type reportFigure struct {
	Title, Caption string
	Index          int
}

type reportMissedView struct {
	Title, Problem string
	Index          int
	Metrics        []reportFigure
}

// reportData is the JSON the page's script reads; times in Unix seconds,
// lead times in hours.
type reportData struct {
	From     int64          `json:"from"`
	To       int64          `json:"to"`
	Scored   bool           `json:"scored"`
	Horizon  float64        `json:"horizon_s"`
	MinLead  float64        `json:"min_lead_s"`
	Labels   []string       `json:"labels"`
	Bins     []float64      `json:"bins_h"`
	Leads    []reportLeads  `json:"leads"`
	PerDay   []reportPerDay `json:"per_day"`
	Timeline reportTimeline `json:"timeline"`
	Missed   []reportMissed `json:"missed"`
}

// reportLeads are one rule's lead times in hours and their histogram over
// Bins, per rule set (nil where the set lacks the rule).
type reportLeads struct {
	Rule   string      `json:"rule"`
	Leads  [][]float64 `json:"leads_h"`
	Counts [][]int     `json:"counts"`
}

type reportPerDay struct {
	Days   []int64        `json:"days"`
	Series []reportSeries `json:"series"`
}

type reportSeries struct {
	Name   string `json:"name"`
	Counts []int  `json:"counts"`
}

// reportTimeline is the devices' lanes, top first, and what happened on
// them.
type reportTimeline struct {
	Devices  []string        `json:"devices"`
	Failures []reportFailure `json:"failures"`
	Alerts   []reportAlert   `json:"alerts"`
}

type reportFailure struct {
	Lane      int     `json:"lane"`
	T         int64   `json:"t"`
	Component string  `json:"component"`
	Detected  bool    `json:"detected"`
	Rule      string  `json:"rule,omitempty"`
	LeadH     float64 `json:"lead_h,omitempty"`
}

type reportAlert struct {
	Lane  int    `json:"lane"`
	T     int64  `json:"t"`
	Rule  string `json:"rule"`
	Set   int    `json:"set"`
	False bool   `json:"false"`
}

// reportMissed is a missed failure with its device's telemetry around it.
type reportMissed struct {
	Device    string         `json:"device"`
	Component string         `json:"component"`
	T         int64          `json:"t"`
	From      int64          `json:"from"`
	To        int64          `json:"to"`
	Alerts    []int64        `json:"alerts"`
	Series    []reportMetric `json:"series"`
}

type reportMetric struct {
	Metric string    `json:"metric"`
	T      []int64   `json:"t"`
	V      []float64 `json:"v"`
}

const reportTime = "2006-01-02 15:04 UTC"

func newReportPage(ctx context.Context, rep *rules.BacktestReport, o BacktestReportOptions) (*reportPage, error) {
	sets := []*rules.BacktestReport{rep}
	p := &reportPage{
		Period: fmt.Sprintf("%s to %s (%s)", rep.From.UTC().Format(reportTime), rep.To.UTC().Format(reportTime),
			proactive.FormatDuration(rep.To.Sub(rep.From).Round(time.Minute))),
		Horizon: proactive.FormatDuration(o.Horizon), MinLead: proactive.FormatDuration(o.MinLead), After: proactive.FormatDuration(o.After),
		Samples: rep.Samples, Devices: rep.Devices, Scored: rep.Scored(),
	}
	if rep.Outreach != nil {
		p.Outreach = rep.Outreach.Note
	}
	if c := rep.Compare; c != nil && c.Other != nil {
		sets = append(sets, c.Other)
		p.Labels = []string{c.Label, c.OtherLabel}
	}
	if !o.Generated.IsZero() {
		p.Generated = o.Generated.UTC().Format(reportTime)
	}
	p.Data = reportData{From: rep.From.Unix(), To: rep.To.Unix(), Scored: p.Scored, Horizon: o.Horizon.Seconds(),
		MinLead: o.MinLead.Seconds(), Labels: p.Labels}
	p.Rules, p.Comps = ruleTable(sets, p.Scored), componentTable(sets, p.Scored)
	if p.Scored {
		p.leads(sets, o)
	}
	p.perDay(sets)
	p.timeline(sets, o)
	if p.Scored {
		if err := p.missed(ctx, rep, o); err != nil {
			return nil, err
		}
	}
	if err := p.assets(); err != nil {
		return nil, err
	}
	return p, nil
}

// assets inlines the style and the scripts.
func (p *reportPage) assets() error {
	read := func(fsys embed.FS, name string) (string, error) {
		b, err := fsys.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("backtest report: %w", err)
		}
		return string(b), nil
	}
	var parts [4]string
	for i, f := range []struct {
		fs   embed.FS
		name string
	}{{staticFS, "static/uplot.min.css"}, {reportFS, "report/backtest.css"}, {staticFS, "static/uplot.min.js"}, {reportFS, "report/backtest.js"}} {
		s, err := read(f.fs, f.name)
		if err != nil {
			return err
		}
		parts[i] = s
	}
	// The files are the module's own, never input: safe to inline as is.
	p.Style = template.CSS(parts[0] + "\n" + parts[1])
	p.UPlot, p.Script = template.JS(parts[2]), template.JS(parts[3])
	return nil
}

// ruleNames are the rules of every set, in the first set's order, then the
// others' new ones.
func ruleNames(sets []*rules.BacktestReport) []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range sets {
		for _, r := range s.Rules {
			if !seen[r.Rule] {
				seen[r.Rule] = true
				names = append(names, r.Rule)
			}
		}
	}
	return names
}

func findRule(s *rules.BacktestReport, name string) *rules.RuleReport {
	for i := range s.Rules {
		if s.Rules[i].Rule == name {
			return &s.Rules[i]
		}
	}
	return nil
}

func findComponent(s *rules.BacktestReport, name string) *rules.Score {
	for i := range s.Components {
		if s.Components[i].Component == name {
			return &s.Components[i]
		}
	}
	return nil
}

var scoreHead = []string{"Failures", "Detected", "Recall", "Alerts", "False alerts", "Precision", "Lead median", "Lead p10", "Lead p90"}

// scoreCells are a score's cells under scoreHead, dashes without one.
func scoreCells(s *rules.Score) []string {
	if s == nil {
		return slices.Repeat([]string{"-"}, len(scoreHead))
	}
	return []string{fmt.Sprint(s.Failures), fmt.Sprint(s.Detected), rules.FormatRatio(s.Recall), fmt.Sprint(s.Alerts),
		fmt.Sprint(s.FalseAlerts), rules.FormatRatio(s.Precision), rules.FormatLead(s.LeadMedian), rules.FormatLead(s.LeadP10),
		rules.FormatLead(s.LeadP90)}
}

// interleave makes a compared row: each column's A cell, then its B cell.
func interleave(cols [][]string) []string {
	if len(cols) == 1 {
		return cols[0]
	}
	var out []string
	for i := range cols[0] {
		for _, c := range cols {
			out = append(out, c[i])
		}
	}
	return out
}

func ruleTable(sets []*rules.BacktestReport, scored bool) reportTable {
	t := reportTable{Caption: "Per rule", Key: "Rule", Head: []string{"Component", "Fires", "Devices", "Tickets/day", "Texts/day"},
		Compare: len(sets) > 1}
	if scored {
		t.Head = append(t.Head, scoreHead...)
	}
	for _, name := range ruleNames(sets) {
		var cols [][]string
		for _, s := range sets {
			r := findRule(s, name)
			if r == nil {
				cols = append(cols, slices.Repeat([]string{"-"}, len(t.Head)))
				continue
			}
			// Tickets and texts come from the replay through the notifier,
			// dashes without one.
			tickets, texts := "-", "-"
			if s.Outreach != nil {
				tickets, texts = fmt.Sprintf("%.2f", r.TicketsPerDay), fmt.Sprintf("%.2f", r.TextsPerDay)
			}
			c := []string{r.Component, fmt.Sprint(r.Fires), fmt.Sprint(r.Devices), tickets, texts}
			if scored {
				c = append(c, scoreCells(r.Score)...)
			}
			cols = append(cols, c)
		}
		t.Rows = append(t.Rows, reportRow{Name: name, Cells: interleave(cols)})
	}
	return t
}

func componentTable(sets []*rules.BacktestReport, scored bool) reportTable {
	t := reportTable{Caption: "Per component (all the rules watching it)", Key: "Component", Head: scoreHead, Compare: len(sets) > 1}
	if !scored {
		return t
	}
	var names []string
	for _, s := range sets {
		for _, c := range s.Components {
			if !slices.Contains(names, c.Component) {
				names = append(names, c.Component)
			}
		}
	}
	slices.Sort(names)
	for _, name := range names {
		var cols [][]string
		for _, s := range sets {
			cols = append(cols, scoreCells(findComponent(s, name)))
		}
		t.Rows = append(t.Rows, reportRow{Name: name, Cells: interleave(cols)})
	}
	return t
}

// leadBins are the histogram's bin edges in hours: a round width that
// splits the horizon in at most 20 bins, narrow enough on a phone.
func leadBins(horizon time.Duration) []float64 {
	h := horizon.Hours()
	width := h
	for _, w := range []float64{1, 2, 3, 6, 12, 24, 48, 7 * 24, 14 * 24, 28 * 24} {
		if h/w <= 20 {
			width = w
			break
		}
	}
	if h < 1 {
		width = h / 4
	}
	var edges []float64
	for e := 0.0; e < h-1e-9; e += width {
		edges = append(edges, e)
	}
	return append(edges, h)
}

// histogram counts leads (hours) in the bins; the last bin takes the
// horizon itself.
func histogram(leads []float64, edges []float64) []int {
	counts := make([]int, len(edges)-1)
	for _, l := range leads {
		i, _ := slices.BinarySearch(edges, l)
		if i < len(edges) && edges[i] == l {
			i++
		}
		counts[min(max(i-1, 0), len(counts)-1)]++
	}
	return counts
}

func (p *reportPage) leads(sets []*rules.BacktestReport, o BacktestReportOptions) {
	p.Data.Bins = leadBins(o.Horizon)
	for i, name := range ruleNames(sets) {
		l := reportLeads{Rule: name}
		var parts []string
		for si, s := range sets {
			r := findRule(s, name)
			if r == nil || r.Score == nil {
				l.Leads, l.Counts = append(l.Leads, nil), append(l.Counts, nil)
				if len(sets) > 1 {
					parts = append(parts, fmt.Sprintf("%s: not in this rule set", p.Labels[si]))
				}
				continue
			}
			hs := make([]float64, 0, len(r.Score.Leads))
			for _, d := range r.Score.Leads {
				hs = append(hs, math.Round(d.Hours()*100)/100)
			}
			l.Leads, l.Counts = append(l.Leads, hs), append(l.Counts, histogram(hs, p.Data.Bins))
			sc := r.Score
			text := fmt.Sprintf("%d of %d failures detected", sc.Detected, sc.Failures)
			if sc.Detected > 0 {
				text += fmt.Sprintf(", lead median %s (p10 %s, p90 %s)", rules.FormatLead(sc.LeadMedian), rules.FormatLead(sc.LeadP10),
					rules.FormatLead(sc.LeadP90))
			}
			if len(sets) > 1 {
				text = p.Labels[si] + ": " + text
			}
			parts = append(parts, text)
		}
		p.Data.Leads = append(p.Data.Leads, l)
		p.Leads = append(p.Leads, reportFigure{Title: name, Index: i,
			Caption: fmt.Sprintf("Lead times of rule %s, in bins of %s up to the horizon of %s. %s.", name,
				proactive.FormatDuration(time.Duration(p.Data.Bins[1]*float64(time.Hour))), p.Horizon, strings.Join(parts, "; "))})
	}
}

// firing are a report's firing alerts of its period.
func firing(rep *rules.BacktestReport) []proactive.Alert {
	var out []proactive.Alert
	for _, a := range rep.Alerts {
		if a.State == proactive.AlertFiring && !a.FiredAt.Before(rep.From) && a.FiredAt.Before(rep.To) {
			out = append(out, a)
		}
	}
	return out
}

func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func (p *reportPage) perDay(sets []*rules.BacktestReport) {
	first := dayOf(sets[0].From.UTC())
	var days []int64
	for d := first; d.Before(sets[0].To); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Unix())
	}
	for si, s := range sets {
		pd := reportPerDay{Days: days}
		idx := map[string]int{}
		for _, r := range s.Rules {
			idx[r.Rule] = len(pd.Series)
			pd.Series = append(pd.Series, reportSeries{Name: r.Rule, Counts: make([]int, len(days))})
		}
		total := 0
		for _, a := range firing(s) {
			i, ok := idx[a.Rule]
			d := int(dayOf(a.FiredAt.UTC()).Sub(first) / (24 * time.Hour))
			if !ok || d < 0 || d >= len(days) {
				continue
			}
			pd.Series[i].Counts[d]++
			total++
		}
		var parts []string
		for _, sr := range pd.Series {
			n, peak, at := 0, 0, 0
			for d, c := range sr.Counts {
				n += c
				if c > peak {
					peak, at = c, d
				}
			}
			text := fmt.Sprintf("%s %d", sr.Name, n)
			if peak > 0 {
				text += fmt.Sprintf(" (most, %d, on %s)", peak, time.Unix(days[at], 0).UTC().Format("2006-01-02"))
			}
			parts = append(parts, text)
		}
		title := "Alerts per day"
		if len(sets) > 1 {
			title += ", " + p.Labels[si]
		}
		caption := fmt.Sprintf("Alerts fired per day (UTC) over %d days, %d in all", len(days), total)
		if len(parts) > 0 {
			caption += ": " + strings.Join(parts, "; ")
		}
		p.Data.PerDay = append(p.Data.PerDay, pd)
		p.PerDay = append(p.PerDay, reportFigure{Title: title, Caption: caption + ".", Index: si})
	}
}

type alertKey struct {
	set    int
	rule   string
	device proactive.DeviceID
	at     int64 // Unix ns: a time.Time key would compare its location too
}

func (p *reportPage) timeline(sets []*rules.BacktestReport, o BacktestReportOptions) {
	rep := sets[0]
	type tally struct {
		failures, events int
	}
	count := map[proactive.DeviceID]*tally{}
	get := func(d proactive.DeviceID) *tally {
		if count[d] == nil {
			count[d] = &tally{}
		}
		return count[d]
	}
	var failures []rules.FailureOutcome
	for _, c := range rep.Components {
		failures = append(failures, c.Outcomes...)
	}
	for _, f := range failures {
		t := get(f.Device)
		t.failures++
		t.events++
	}
	alerts := make([][]proactive.Alert, len(sets))
	falses := map[alertKey]bool{}
	for si, s := range sets {
		alerts[si] = firing(s)
		for _, a := range alerts[si] {
			get(a.Device).events++
		}
		for _, r := range s.Rules {
			if r.Score == nil {
				continue
			}
			for _, a := range r.Score.False {
				falses[alertKey{si, r.Rule, a.Device, a.FiredAt.UnixNano()}] = true
			}
		}
	}
	devs := make([]proactive.DeviceID, 0, len(count))
	for d := range count {
		devs = append(devs, d)
	}
	slices.SortFunc(devs, func(a, b proactive.DeviceID) int {
		ta, tb := count[a], count[b]
		return cmp.Or(cmp.Compare(tb.failures, ta.failures), cmp.Compare(tb.events, ta.events), strings.Compare(string(a), string(b)))
	})
	shown := devs[:min(len(devs), o.MaxDevices)]
	lane := map[proactive.DeviceID]int{}
	tl := reportTimeline{Devices: []string{}, Failures: []reportFailure{}, Alerts: []reportAlert{}}
	for i, d := range shown {
		lane[d] = i
		tl.Devices = append(tl.Devices, string(d))
	}
	detected, missed := 0, 0
	for _, f := range failures {
		i, ok := lane[f.Device]
		if !ok {
			continue
		}
		rf := reportFailure{Lane: i, T: f.Time.Unix(), Component: f.Component, Detected: f.Detected}
		if f.Detected {
			detected++
			rf.Rule, rf.LeadH = f.Rule, math.Round(f.Lead.Hours()*100)/100
		} else {
			missed++
		}
		tl.Failures = append(tl.Failures, rf)
	}
	nAlerts, nFalse := 0, 0
	for si := range sets {
		for _, a := range alerts[si] {
			i, ok := lane[a.Device]
			if !ok {
				continue
			}
			f := falses[alertKey{si, a.Rule, a.Device, a.FiredAt.UnixNano()}]
			if si == 0 {
				nAlerts++
				if f {
					nFalse++
				}
			}
			tl.Alerts = append(tl.Alerts, reportAlert{Lane: i, T: a.FiredAt.Unix(), Rule: a.Rule, Set: si, False: f})
		}
	}
	p.Data.Timeline = tl
	what := "alert"
	if p.Scored {
		what = "failure or an alert"
	}
	caption := fmt.Sprintf("%d device(s) with a %s, one row each", len(shown), what)
	if p.Scored {
		caption += fmt.Sprintf(": %d failure(s) detected, %d missed; %d alert(s), %d of them false", detected, missed, nAlerts, nFalse)
	} else {
		caption += fmt.Sprintf(": %d alert(s)", nAlerts)
	}
	if len(sets) > 1 {
		caption += fmt.Sprintf("; the alerts of %s are drawn above each row's", p.Labels[1])
	}
	p.Timeline = reportFigure{Title: "Alerts and failures per device", Caption: caption + "."}
	if len(devs) > len(shown) {
		order := "the most alerts"
		if p.Scored {
			order = "failures first, then the most events"
		}
		p.DevicesNote = fmt.Sprintf("Showing %d of %d devices: those with %s.", len(shown), len(devs), order)
	}
}

// missed reads the telemetry around the first MaxMissed failures that no
// rule caught (per component: no rule of the set), in time order.
func (p *reportPage) missed(ctx context.Context, rep *rules.BacktestReport, o BacktestReportOptions) error {
	var all []rules.FailureOutcome
	for _, c := range rep.Components {
		for _, f := range c.Outcomes {
			if !f.Detected {
				all = append(all, f)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b rules.FailureOutcome) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(string(a.Device), string(b.Device)))
	})
	p.Data.Missed = []reportMissed{}
	if len(all) > o.MaxMissed {
		p.MissedNote = fmt.Sprintf("Showing the first %d of %d missed failures.", o.MaxMissed, len(all))
		all = all[:o.MaxMissed]
	}
	alerts := firing(rep)
	for i, f := range all {
		from, to := f.Time.Add(-o.Horizon), f.Time.Add(o.After)
		m := reportMissed{Device: string(f.Device), Component: f.Component, T: f.Time.Unix(), From: from.Unix(), To: to.Unix(),
			Alerts: []int64{}, Series: []reportMetric{}}
		for _, a := range alerts {
			if a.Device == f.Device && !a.FiredAt.Before(from) && a.FiredAt.Before(to) {
				m.Alerts = append(m.Alerts, a.FiredAt.Unix())
			}
		}
		v := reportMissedView{Index: i, Title: fmt.Sprintf("%s, %s, failed %s", f.Device, f.Component, f.Time.UTC().Format(reportTime))}
		why := "no alert of its component"
		if f.Late {
			why = fmt.Sprintf("an alert of rule %s came only %s after it", f.Rule, rules.FormatLead(-f.Lead))
		} else if len(m.Alerts) > 0 {
			why = "the device's alerts in this window were of other components or too late"
		}
		switch {
		case o.Samples == nil:
			v.Problem = "No telemetry source was given."
		default:
			series, err := readMetrics(ctx, o.Samples, f.Device, from, to)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				v.Problem = "The telemetry could not be read: " + err.Error()
			} else if len(series) == 0 {
				v.Problem = "The device sent no telemetry in this window."
			}
			m.Series = series
		}
		for j, s := range m.Series {
			lo, hi := slices.Min(s.V), slices.Max(s.V)
			v.Metrics = append(v.Metrics, reportFigure{Title: s.Metric, Index: j, Caption: fmt.Sprintf(
				"%s of %s from %s to %s, %d point(s), from %s to %s; the failure at %s is marked with a solid line, %s (%d alert(s) of the device in the window, dashed lines).",
				s.Metric, f.Device, from.UTC().Format(reportTime), to.UTC().Format(reportTime), len(s.T), num(lo), num(hi),
				f.Time.UTC().Format(reportTime), why, len(m.Alerts))})
		}
		p.Data.Missed = append(p.Data.Missed, m)
		p.Missed = append(p.Missed, v)
	}
	return nil
}

// readMetrics reads a device's samples in [from, to) as one series per
// metric, in name order; a metric with more than reportPoints samples is
// averaged down to as many windows, each at its middle.
func readMetrics(ctx context.Context, read DeviceSamples, device proactive.DeviceID, from, to time.Time) ([]reportMetric, error) {
	byMetric := map[string]*reportMetric{}
	err := read(ctx, device, from, to, func(s proactive.Sample) error {
		if s.Time.Before(from) || !s.Time.Before(to) {
			return nil
		}
		for k, v := range s.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			m := byMetric[k]
			if m == nil {
				m = &reportMetric{Metric: k}
				byMetric[k] = m
			}
			m.T = append(m.T, s.Time.Unix())
			m.V = append(m.V, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(byMetric))
	for k := range byMetric {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]reportMetric, 0, len(names))
	for _, k := range names {
		out = append(out, reduce(*byMetric[k], from.Unix(), to.Unix(), reportPoints))
	}
	return out, nil
}

// reduce averages m into n windows of [from, to) when it has more points.
func reduce(m reportMetric, from, to int64, n int) reportMetric {
	if len(m.T) <= n || to <= from {
		return m
	}
	sum, count := make([]float64, n), make([]int, n)
	for i, t := range m.T {
		w := min(max(int((t-from)*int64(n)/(to-from)), 0), n-1)
		sum[w] += m.V[i]
		count[w]++
	}
	out := reportMetric{Metric: m.Metric}
	for w := range n {
		if count[w] == 0 {
			continue
		}
		out.T = append(out.T, from+(to-from)*int64(2*w+1)/int64(2*n))
		out.V = append(out.V, sum[w]/float64(count[w]))
	}
	return out
}
