package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// grafanaInfluxQL expands what Grafana puts into the fleet dashboard's
// InfluxQL: the time filter of the last hour, a one-minute interval, every
// model and device (the variables' "All" is .*), and metric "current".
var grafanaInfluxQL = strings.NewReplacer(
	"$timeFilter", "time > now() - 1h",
	"$__interval", "1m",
	"$model", ".*",
	"$device", ".*",
	"${metric}", "current",
	"$metric", "current",
)

// Every InfluxQL query of the fleet dashboard runs on an influxd with Flux
// off and finds what ingest wrote: the variables list the models, devices
// and metrics, the stat panels count the devices, every panel has rows.
func TestFleetDashboardQueriesRun(t *testing.T) {
	srv := testenv.Influx(t)
	now := time.Now().Add(-5 * time.Minute).UnixMilli()
	srv.Write(t, fmt.Sprintf(`telemetry,device_id=fr-1,model=fridge-a current=5.2,temp=4.1 %[1]d
telemetry,device_id=fr-2 current=3.1 %[1]d
telemetry,device_id=fr-3,model=fridge-a temp=3.9 %[1]d
status,device_id=fr-1 online=true %[1]d
status,device_id=fr-2 online=true %[2]d
status,device_id=fr-2 online=false %[1]d
`, now, now-60_000))

	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/dashboards/fleet-telemetry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	// run runs a query of the dashboard as Grafana would.
	run := func(where, q string) []testenv.Series {
		t.Helper()
		q = grafanaInfluxQL.Replace(q)
		if grafanaVar.MatchString(q) {
			t.Fatalf("%s: %q: a variable is left", where, q)
		}
		return srv.Query(t, q) // fails the test on any error influxd reports
	}
	// firstColumn returns the values of a variable's query (its first
	// column) or of a table's "value" column, sorted.
	firstColumn := func(series []testenv.Series) []string {
		var out []string
		for _, s := range series {
			for _, row := range s.Values {
				if i := slices.Index(s.Columns, "value"); i >= 0 {
					out = append(out, fmt.Sprint(row[i]))
				} else {
					out = append(out, fmt.Sprint(row[0]))
				}
			}
		}
		slices.Sort(out)
		return out
	}
	wantVars := map[string][]string{"model": {"fridge-a"}, "device": {"fr-1", "fr-2", "fr-3"}, "metric": {"current", "temp"}}
	for _, v := range d.Templating.List {
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		if got := firstColumn(run("variable "+v.Name, q)); !slices.Equal(got, wantVars[v.Name]) {
			t.Errorf("variable %s: %v, want %v", v.Name, got, wantVars[v.Name])
		}
	}
	wantStat := map[string]string{"Devices reporting ${metric} (last 15 min)": "2", "Devices offline (last status)": "1"}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			series := run(where, tg.Query)
			if len(series) == 0 {
				t.Errorf("%s: no rows", where)
				continue
			}
			if want, ok := wantStat[p.Title]; ok {
				if got := fmt.Sprint(series[0].Values[0][1]); len(series) != 1 || len(series[0].Values) != 1 || got != want {
					t.Errorf("%s: %+v, want %s", where, series, want)
				}
			}
		}
	}
}
