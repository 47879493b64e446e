package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/web"
)

// telemetryFunc is a fake Telemetry whose Range is a function and whose
// Latest answers from a table; without one, Latest fails.
type telemetryFunc struct {
	rng    func(dev proactive.DeviceID, metrics []string, from, to time.Time) ([]influx.MetricSeries, error)
	latest latestTable
}

// latestTable answers Latest.
type latestTable interface {
	get(dev proactive.DeviceID) []influx.MetricValue
}

// latestMap is the last values of some devices.
type latestMap map[proactive.DeviceID][]influx.MetricValue

func (m latestMap) get(dev proactive.DeviceID) []influx.MetricValue { return m[dev] }

// allSeen says every device sent a value a minute before monday0830.
type allSeen struct{}

func (allSeen) get(proactive.DeviceID) []influx.MetricValue {
	return []influx.MetricValue{{Metric: "pressure", Value: 3, Time: monday0830.Add(-time.Minute)}}
}

func (f telemetryFunc) Latest(_ context.Context, dev proactive.DeviceID) ([]influx.MetricValue, error) {
	if f.latest == nil {
		return nil, errors.New("influx down")
	}
	return f.latest.get(dev), nil
}

func (f telemetryFunc) Range(_ context.Context, dev proactive.DeviceID, metrics []string, from, to time.Time, _ int) ([]influx.MetricSeries, time.Duration, error) {
	s, err := f.rng(dev, metrics, from, to)
	return s, time.Minute, err
}

// withInflux starts a real influxd, writes the fixture's telemetry
// (compressor_current of fridge-1 every 10 minutes over the 8 days before
// the alert, rising) and sets the pages' Telemetry to read it.
func withInflux(t *testing.T) func(*web.Options) {
	t.Helper()
	srv := testenv.Influx(t)
	var lp strings.Builder
	start := monday0830.Add(-8 * 24 * time.Hour)
	for ts, i := start, 0; ts.Before(monday0830); ts, i = ts.Add(10*time.Minute), i+1 {
		fmt.Fprintf(&lp, "telemetry,device_id=fridge-1,model=fridge-a200 compressor_current=%.4f,cabinet_temp=4 %d\n",
			5+float64(i)/1152*1.5, ts.UnixMilli())
	}
	srv.Write(t, lp.String())
	reader := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(reader.Close)
	return func(o *web.Options) { o.Telemetry = reader }
}

var pointsRE = regexp.MustCompile(`<polyline class="line" points="([^"]*)"`)

func TestTicketChart(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), withInflux(t))
	b := e.signedIn("dispatcher")
	resp, page := b.get(fmt.Sprintf("/tickets/%d", e.offered))
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `<h2 id="s-chart-title">Telemetry</h2>`, `class="m-alert"`, `class="m-predicted"`,
		`<strong>compressor_current</strong>`, `/static/uplot.min.js?v=`, `/static/chart.js?v=`, `aria-current="true">7d</a>`)
	wantNotIn(t, page, "cabinet_temp") // not a metric of the rule
	m := pointsRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no line drawn\n%s", excerpt(page))
	}
	// 7 days before the alert and the time since, to the predicted
	// failure 5 days on: 240 windows of about an hour and a quarter, the
	// first 7 days (about 140) with data.
	if n := len(strings.Fields(m[1])); n < 100 || n > 240 {
		t.Errorf("%d points drawn, want the 7 days before the alert", n)
	}
	i := strings.Index(page, `<script type="application/json" id="chart-data">`)
	if i < 0 {
		t.Fatal("no chart data for the script")
	}
	raw := page[i+len(`<script type="application/json" id="chart-data">`):]
	raw = raw[:strings.Index(raw, "</script>")]
	var data struct {
		From, To, Alert, Predicted int64
		TZ                         string `json:"tz"`
		Series                     []struct {
			Metric string
			T      []int64
			V      []float64
		}
	}
	if err := json.Unmarshal([]byte(raw), &data); err != nil {
		t.Fatalf("chart data %s: %v", raw, err)
	}
	if data.Alert != monday0830.Unix() || data.Predicted != monday0830.Add(5*24*time.Hour).Unix() || data.TZ != "Europe/Paris" ||
		data.From != monday0830.Add(-7*24*time.Hour).Unix() || len(data.Series) != 1 || data.Series[0].Metric != "compressor_current" {
		t.Errorf("chart data %+v", data)
	}
	if s := data.Series[0]; len(s.T) != len(s.V) || s.V[0] > s.V[len(s.V)-1] || s.V[0] < 5 {
		t.Errorf("series %v / %v: want a rising current from 5 A", s.T, s.V)
	}

	t.Run("a day's span", func(t *testing.T) {
		_, page := b.get(fmt.Sprintf("/tickets/%d?span=1d", e.offered))
		// The predicted failure, 5 days on, is too far to show.
		wantIn(t, page, `aria-current="true">1d</a>`, "(past the chart's end)")
		wantNotIn(t, page, `class="m-predicted"`)
		// 240 windows of 6 minutes over a day and an hour; data every 10.
		if m := pointsRE.FindStringSubmatch(page); m == nil || len(strings.Fields(m[1])) != 144 {
			t.Errorf("a day's span drew %d points, want 144", len(strings.Fields(m[1])))
		}
	})
	t.Run("a device without telemetry", func(t *testing.T) {
		_, page := b.get(fmt.Sprintf("/tickets/%d", e.open))
		wantIn(t, page, "No telemetry from this device in this time.", "No data in this time for fan_current.")
		wantNotIn(t, page, "uplot.min.js", `id="chart-data"`)
	})
	t.Run("the page's refresh skips the chart", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(e.ctx, http.MethodGet, fmt.Sprintf("%s/tickets/%d", e.srv.URL, e.offered), nil)
		req.Header.Set("X-Requested-With", "fetch")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %s, %v", resp.Status, err)
		}
		if page := string(body); !strings.Contains(page, `id="story"`) || strings.Contains(page, "s-chart-title") {
			t.Error("a refresh drew the chart")
		}
	})
}

// The caption's "last" is the device's latest sample, not the mean of the
// last window at that window's start; a latest value outside the chart's
// time (here: after its end) leaves the window's.
func TestTicketChartCaptionNamesLatestSample(t *testing.T) {
	windows := telemetryFunc{rng: func(_ proactive.DeviceID, metrics []string, from, to time.Time) ([]influx.MetricSeries, error) {
		return []influx.MetricSeries{{Metric: "compressor_current", Points: []influx.SeriesPoint{
			{Time: monday0830.Add(-3 * time.Hour), Value: 5}, {Time: monday0830.Add(-90 * time.Minute), Value: 5.5}}}}, nil
	}}
	for name, c := range map[string]struct {
		latest latestMap
		want   string
	}{
		"latest in the chart": {latestMap{"fridge-1": {{Metric: "compressor_current", Value: 6.25, Time: monday0830.Add(-2 * time.Minute)}}},
			`last 6.25 at <time datetime="` + monday0830.Add(-2*time.Minute).UTC().Format(time.RFC3339) + `">`},
		"latest after the chart": {latestMap{"fridge-1": {{Metric: "compressor_current", Value: 7, Time: monday0830.Add(48 * time.Hour)}}},
			`last 5.5 at <time datetime="` + monday0830.Add(-90*time.Minute).UTC().Format(time.RFC3339) + `">`},
	} {
		t.Run(name, func(t *testing.T) {
			tel := windows
			tel.latest = c.latest
			e := newEnv(t, testenv.SQLite(t), func(o *web.Options) { o.Telemetry = tel })
			resp, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.offered))
			wantStatus(t, resp, page, http.StatusOK)
			wantIn(t, page, c.want)
		})
	}
}

func TestTicketChartWhenTelemetryFails(t *testing.T) {
	fail := telemetryFunc{rng: func(proactive.DeviceID, []string, time.Time, time.Time) ([]influx.MetricSeries, error) {
		return nil, errors.New("influx down")
	}}
	for name, tune := range map[string]func(*web.Options){
		"failing": func(o *web.Options) { o.Telemetry = fail },
		"absent":  func(o *web.Options) {},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, testenv.SQLite(t), tune)
			resp, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.offered))
			wantStatus(t, resp, page, http.StatusOK)
			want := "could not be read just now"
			if name == "absent" {
				want = "Telemetry is not available on this server."
			}
			wantIn(t, page, want, "compressor wearing out on fridge-1")
			wantNotIn(t, page, "influx down", "uplot.min.js")
		})
	}
}

// TestChartZoneLocal: on a server in Go's "Local" zone, which browsers do
// not know and which makes the script's drawing throw, the chart is in the
// site's zone (every device has one), as the rest of the page.
func TestChartZoneLocal(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(o *web.Options) {
		o.Location = time.Local
		o.Telemetry = telemetryFunc{rng: func(_ proactive.DeviceID, metrics []string, from, to time.Time) ([]influx.MetricSeries, error) {
			return []influx.MetricSeries{{Metric: metrics[0], Points: []influx.SeriesPoint{{Time: from.Add(time.Hour), Value: 5}}}}, nil
		}}
	})
	_, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.offered))
	wantIn(t, page, `id="chart-data"`, `"tz":"Europe/Paris"`)
	wantNotIn(t, page, `"tz":"Local"`)
}
