package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// `rules backtest --report` against a real influxd writes the HTML page,
// with the telemetry around the failure the rules missed read back from
// InfluxDB.
func TestRulesBacktestReport(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(72 * time.Hour)
	writeBacktestSamples(t, influx, backtestFleet(start))
	ruleFile := writeBacktestFile(t, "fleet.yaml", backtestRules)
	missedAt := start.Add(60 * time.Hour)
	failures := writeBacktestFile(t, "failures.csv", fmt.Sprintf("device,time,component\n"+
		"fridge-2,%s,compressor\n"+ // caught by compressor_wear
		"fridge-0,%s,compressor\n"+ // missed
		"fridge-3,%s,connectivity\n", // caught by silent_device
		start.Add(70*time.Hour).Format(time.RFC3339), missedAt.Format(time.RFC3339), start.Add(60*time.Hour).Format(time.RFC3339)))
	getenv := envMap(map[string]string{
		"PROACTIVE_INFLUX_URL":    influx.URL(),
		"PROACTIVE_INFLUX_BUCKET": influx.Bucket(),
	})
	backtest := func(args ...string) (stdout, stderr string, err error) {
		var out, errOut bytes.Buffer
		args = append([]string{"proactive", "rules", "backtest", "--rules", ruleFile, "--from", start.Format(time.RFC3339),
			"--to", end.Format(time.RFC3339), "--no-save"}, args...)
		err = run(t.Context(), args, getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	report := filepath.Join(t.TempDir(), "report.html")
	stdout, stderr, err := backtest("--failures", failures, "--horizon", "2d", "--report", report)
	if err != nil {
		t.Fatalf("backtest: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "rule compressor_wear") {
		t.Errorf("with --report the table is still printed; stdout:\n%s", stdout)
	}
	if !regexp.MustCompile(`(?m)^backtest: report written to ` + regexp.QuoteMeta(report) + ` \(\d+ KiB\)$`).MatchString(stderr) {
		t.Errorf("stderr does not say where the report went:\n%s", stderr)
	}
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="report-data">(.*?)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no data block in the report:\n%.2000s", page)
	}
	var data struct {
		Horizon float64 `json:"horizon_s"`
		Missed  []struct {
			Device    string `json:"device"`
			Component string `json:"component"`
			T         int64  `json:"t"`
			From      int64  `json:"from"`
			Series    []struct {
				Metric string    `json:"metric"`
				T      []int64   `json:"t"`
				V      []float64 `json:"v"`
			} `json:"series"`
		} `json:"missed"`
	}
	if err := json.Unmarshal(m[1], &data); err != nil {
		t.Fatalf("data block: %v", err)
	}
	if data.Horizon != 2*24*3600 || len(data.Missed) != 1 {
		t.Fatalf("horizon %v s, missed %+v; want 2d and fridge-0's failure", data.Horizon, data.Missed)
	}
	miss := data.Missed[0]
	if miss.Device != "fridge-0" || miss.Component != "compressor" || miss.T != missedAt.Unix() || miss.From != missedAt.Add(-48*time.Hour).Unix() {
		t.Errorf("missed failure %s %s at %d from %d", miss.Device, miss.Component, miss.T, miss.From)
	}
	// The window is [12 h, 84 h), 360 means of 12 minutes; fridge-0 sent
	// every 5 minutes until 72 h: 300 of them.
	if len(miss.Series) == 0 {
		t.Fatal("no telemetry of fridge-0 in the report")
	}
	if len(miss.Series) != 1 || miss.Series[0].Metric != "compressor_current" || len(miss.Series[0].T) != 300 ||
		miss.Series[0].V[0] < 3.8 || miss.Series[0].V[0] > 4.2 {
		s := miss.Series
		t.Fatalf("fridge-0's telemetry in the report: %d series, the first %s of %d points", len(s), s[0].Metric, len(s[0].T))
	}
	if !bytes.Contains(page, []byte("fridge-0, compressor, failed 2026-10-03 12:00 UTC")) {
		t.Errorf("the report does not name the missed failure")
	}

	// A report that could not be written is refused before the backtest.
	_, _, err = backtest("--failures", failures, "--report", filepath.Join(t.TempDir(), "no-such-dir", "r.html"))
	if err == nil || !strings.Contains(err.Error(), "--report") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("--report in a missing directory: %v", err)
	}
}
