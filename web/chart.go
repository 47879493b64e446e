package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
)

// Telemetry reads devices' telemetry back from the time-series store;
// *influx.Store satisfies it. Both methods block on the store and
// honour ctx; errors carry a proactive.Error code where the input was at
// fault.
type Telemetry interface {
	// Latest returns the last value of each metric the device sent
	// recently, by metric name; none for a silent device.
	Latest(ctx context.Context, device proactive.DeviceID) ([]influx.MetricValue, error)
	// Range returns the device's metrics (all when metrics is empty) in
	// [from, to) as at most maxPoints window means per metric, oldest
	// first, and the window length.
	Range(ctx context.Context, device proactive.DeviceID, metrics []string, from, to time.Time, maxPoints int) ([]influx.MetricSeries, time.Duration, error)
}

var _ Telemetry = (*influx.Store)(nil)

// Chart geometry: the server-drawn SVG's view box, and the points asked
// of the store per metric.
const (
	chartW, chartH = 1000, 200
	chartPad       = 10
	chartPoints    = 240
)

// chartSpans are the choices of how far before the alert a ticket's chart
// starts, the default being defaultSpan.
var chartSpans = []struct {
	Value string
	Span  time.Duration
}{
	{"1d", 24 * time.Hour},
	{"3d", 3 * 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
	{"30d", 30 * 24 * time.Hour},
}

const defaultSpan = "7d"

// chart is a ticket's telemetry: one panel per metric of its rule, over the
// chosen span before the alert and the time since, as an SVG for every
// browser and as data for the script that draws it interactively.
type chart struct {
	From, To  time.Time
	Alert     time.Time
	Predicted time.Time
	// PredictedOff is set when the predicted failure lies past the chart's
	// end, too far to draw.
	PredictedOff bool
	// AlertX and PredictedX are the markers' x in the view box.
	AlertX, PredictedX float64
	Panels             []chartPanel
	// Missing names the rule's metrics without data in the range.
	Missing []string
	// Spans link the same chart over other spans; Span is the current.
	Spans []chartSpanLink
	Span  string
	// Problem is shown instead of the panels when the store failed.
	Problem string
	// Data is what the script draws: see chartData.
	Data chartData
}

type chartSpanLink struct {
	Value, Link string
	Current     bool
}

// chartPanel is one metric's line.
type chartPanel struct {
	Metric string
	// Points is the SVG polyline's points attribute.
	Points string
	// Min, Max, First and Last are the values, for the description;
	// YMin and YMax the axis' ends.
	Min, Max, First, Last, YMin, YMax string
	LastAt                            time.Time
	Count                             int
}

// chartData is the JSON the ticket page's script reads: times in Unix
// seconds, one series per metric.
type chartData struct {
	From      int64         `json:"from"`
	To        int64         `json:"to"`
	Alert     int64         `json:"alert"`
	Predicted int64         `json:"predicted,omitempty"`
	TimeZone  string        `json:"tz"`
	Series    []chartSeries `json:"series"`
}

type chartSeries struct {
	Metric string    `json:"metric"`
	Times  []int64   `json:"t"`
	Values []float64 `json:"v"`
}

// alertFacts are what the ticket's first alert event says about when it
// fired and on which metrics.
func alertFacts(t proactive.Ticket) (at time.Time, metrics []string) {
	for _, e := range t.Timeline {
		if e.Kind != proactive.TicketEventAlert {
			continue
		}
		var b struct {
			FiredAt time.Time          `json:"fired_at"`
			Metrics map[string]float64 `json:"metrics"`
		}
		_ = json.Unmarshal(e.Body, &b)
		at = b.FiredAt
		if at.IsZero() {
			at = e.At
		}
		for m := range b.Metrics {
			if proactive.ValidMetricName(m) {
				metrics = append(metrics, m)
			}
		}
		slices.Sort(metrics)
		return at, metrics
	}
	return t.OpenedAt, nil
}

// ticketChart reads the ticket's metrics around its alert. A store that
// fails gives a chart with a Problem, logged here, not an error: the rest
// of the page still shows.
func (s *server) ticketChart(ctx context.Context, t proactive.Ticket, q url.Values, loc *time.Location) *chart {
	alertAt, metrics := alertFacts(t)
	if len(metrics) == 0 {
		return nil
	}
	c := &chart{Alert: alertAt, Predicted: t.PredictedFailure, Span: defaultSpan}
	if v := q.Get("span"); v != "" {
		c.Span = v
	}
	var span time.Duration
	for _, sp := range chartSpans {
		if c.Span == sp.Value {
			span = sp.Span
		}
	}
	if span == 0 {
		c.Span, span = defaultSpan, 7*24*time.Hour
	}
	for _, sp := range chartSpans {
		v := url.Values{"span": {sp.Value}}
		c.Spans = append(c.Spans, chartSpanLink{Value: sp.Value, Link: fmt.Sprintf("/tickets/%d?%s#s-chart", t.ID, v.Encode()),
			Current: sp.Value == c.Span})
	}
	// The data ends now, or a day after the ticket finished; the axis goes
	// on to the predicted failure when that is near enough to show.
	now := s.Now()
	end := now
	if !t.ClosedAt.IsZero() && t.ClosedAt.Add(24*time.Hour).Before(now) {
		end = t.ClosedAt.Add(24 * time.Hour)
	}
	c.From = alertAt.Add(-span)
	if !end.After(alertAt) {
		end = alertAt.Add(time.Hour)
	}
	c.To = end
	if !c.Predicted.IsZero() {
		if c.Predicted.After(c.To) && c.Predicted.Sub(c.From) <= 3*c.To.Sub(c.From) {
			c.To = c.Predicted.Add(c.Predicted.Sub(c.From) / 50)
		} else if c.Predicted.After(c.To) {
			c.PredictedOff = true
		}
	}
	c.AlertX = xOf(alertAt, c.From, c.To)
	if !c.Predicted.IsZero() && !c.PredictedOff {
		c.PredictedX = xOf(c.Predicted, c.From, c.To)
	}
	c.Data = chartData{From: c.From.Unix(), To: c.To.Unix(), Alert: alertAt.Unix(), TimeZone: zoneName(loc)}
	if !c.Predicted.IsZero() && !c.PredictedOff {
		c.Data.Predicted = c.Predicted.Unix()
	}
	if s.Telemetry == nil {
		c.Problem = "Telemetry is not available on this server."
		return c
	}
	qctx, cancel := context.WithTimeout(ctx, chartTimeout)
	defer cancel()
	series, _, err := s.Telemetry.Range(qctx, t.Device, metrics, c.From, end, chartPoints)
	if err != nil {
		s.log.Warn("read telemetry for the chart", "ticket_id", t.ID, "device_id", t.Device, "err", err)
		c.Problem = "The telemetry could not be read just now. Reload the page to try again."
		return c
	}
	have := map[string]bool{}
	for _, sr := range series {
		if len(sr.Points) == 0 {
			continue
		}
		have[sr.Metric] = true
		c.Panels = append(c.Panels, panelOf(sr, c.From, c.To))
		cs := chartSeries{Metric: sr.Metric}
		for _, p := range sr.Points {
			cs.Times = append(cs.Times, p.Time.Unix())
			cs.Values = append(cs.Values, p.Value)
		}
		c.Data.Series = append(c.Data.Series, cs)
	}
	// The caption's "last" is the device's latest sample, not the mean of
	// the last window at that window's start (on the 7-day span over an
	// hour before it).
	if latest, err := s.Telemetry.Latest(qctx, t.Device); err == nil {
		for i := range c.Panels {
			p := &c.Panels[i]
			for _, v := range latest {
				if v.Metric == p.Metric && !v.Time.Before(p.LastAt) && v.Time.Before(end) {
					p.Last, p.LastAt = num(v.Value), v.Time
				}
			}
		}
	}
	for _, m := range metrics {
		if !have[m] {
			c.Missing = append(c.Missing, m)
		}
	}
	return c
}

// zoneName is loc's IANA name for the script, or "" when loc has none
// (time.Local is named "Local", which browsers reject): the script then
// shows times in the browser's own zone.
func zoneName(loc *time.Location) string {
	if loc == nil || loc.String() == "Local" {
		return ""
	}
	return loc.String()
}

// chartTimeout bounds the chart's query, so that a slow store delays the
// ticket page by at most this.
const chartTimeout = 3 * time.Second

// xOf places t on the view box's x axis for [from, to].
func xOf(t, from, to time.Time) float64 {
	x := float64(t.Sub(from)) / float64(to.Sub(from)) * chartW
	return math.Round(math.Max(0, math.Min(chartW, x))*10) / 10
}

// panelOf draws one series.
func panelOf(sr influx.MetricSeries, from, to time.Time) chartPanel {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range sr.Points {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	ylo, yhi := lo, hi
	if yhi-ylo < 1e-9 {
		ylo, yhi = ylo-1, yhi+1
	}
	var b strings.Builder
	for i, p := range sr.Points {
		if i > 0 {
			b.WriteByte(' ')
		}
		y := chartH - chartPad - (p.Value-ylo)/(yhi-ylo)*(chartH-2*chartPad)
		fmt.Fprintf(&b, "%s,%s", num(xOf(p.Time, from, to)), num(math.Round(y*10)/10))
	}
	first, last := sr.Points[0], sr.Points[len(sr.Points)-1]
	return chartPanel{Metric: sr.Metric, Points: b.String(), Min: num(lo), Max: num(hi), First: num(first.Value),
		Last: num(last.Value), LastAt: last.Time, Count: len(sr.Points), YMin: num(ylo), YMax: num(yhi)}
}

// num formats a value with at most 3 decimals and no trailing zeros.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
