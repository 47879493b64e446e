package main

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proactivehq/proactive/internal/testenv"
)

// counterName finds a counter's full name in Go source: every instrument
// is declared with its full name as one string literal.
var counterName = regexp.MustCompile(`"(proactive_[a-z0-9_]+_total)"`)

// sourceCounters lists the proactive_*_total families the non-test Go
// files of the repository declare.
func sourceCounters(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != repoRoot {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range counterName.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) < 10 {
		t.Fatalf("found only %d counters in the source: %v", len(names), names)
	}
	return names
}

// TestFreshInstanceHasEveryCounter scrapes a platform that has seen
// nothing yet: every counter family the code declares has a series already
// (labelled ones at 0 for their known label values), so that rate(),
// increase() and the alert rules see it before its first event. And no
// scrape-time gauge of a lifetime mean is left.
func TestFreshInstanceHasEveryCounter(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(repoRoot, "rules", "examples", "*.yaml")
	p := startServe(t, env)

	code, body := get(p.http, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range sourceCounters(t) {
		mf, ok := mfs[name]
		if !ok || len(mf.GetMetric()) == 0 {
			t.Errorf("%s: no series on a fresh instance; initialise its known label values at registration", name)
		}
	}
	for name := range mfs {
		if strings.HasSuffix(name, "_mean") || strings.HasSuffix(name, "_mean_seconds") || strings.HasSuffix(name, "_ratio") {
			t.Errorf("%s: a lifetime mean or ratio computed at scrape; use a counter or a histogram", name)
		}
	}
}

// failureCounter picks the counters an operator watches for trouble.
var failureCounter = regexp.MustCompile(`error|reject|refused|dropped|dead_letter|held|skipped|deferred|failed|status_callbacks|attempts|reconciled`)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr  string `json:"expr"`
			Query string `json:"query"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
			Query      any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T, name string) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "dashboards", name))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestPlatformDashboardShowsEveryFailure: each failure counter the code
// declares is drawn by some panel of the Platform dashboard.
func TestPlatformDashboardShowsEveryFailure(t *testing.T) {
	d := readDashboard(t, "platform.json")
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	n := 0
	for _, name := range sourceCounters(t) {
		if !failureCounter.MatchString(name) {
			continue
		}
		n++
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(all) {
			t.Errorf("%s: no panel of platform.json draws it", name)
		}
	}
	if n < 8 {
		t.Errorf("only %d failure counters found in the source", n)
	}
}

// TestFleetDashboardDevicePickerScales: "All" in a picker is the regex .*
// and never the list of every device pasted into each query, and each
// query matches the picker with =~ /^$var$/.
func TestFleetDashboardDevicePickerScales(t *testing.T) {
	d := readDashboard(t, "fleet-telemetry.json")
	for _, v := range d.Templating.List {
		if v.IncludeAll && v.AllValue != ".*" {
			t.Errorf("variable %s: allValue %q, want .* (else All pastes every value into each query)", v.Name, v.AllValue)
		}
	}
	uses := regexp.MustCompile(`\$\{?(device|model)\}?`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range uses.FindAllStringSubmatch(tg.Query, -1) {
				if !strings.Contains(tg.Query, `=~ /^$`+m[1]+`$/`) {
					t.Errorf("panel %q: $%s used without =~ /^$%s$/: %s", p.Title, m[1], m[1], tg.Query)
				}
			}
		}
	}
}
