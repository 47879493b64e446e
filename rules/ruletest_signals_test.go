package rules_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/rules"
)

// A rule test feeds events and maintenance at their times, with the
// samples: an event-gated rule fires on the event, a reset rule forgets
// the old part's readings.
func TestRuleTestEventsAndMaintenance(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{
		"r.yaml": `rules:
  - name: gated
    component: compressor
    when: temp > 10 && events("E1*", "1h") >= 2
    severity: warning
  - name: worn
    component: fan
    when: avg(rpm, "2h") > 100 && since_maintenance() > duration("30m")
    reset_on_maintenance: true
    severity: warning
`,
		"r_test.yaml": `rule_files: [r.yaml]
evaluation_interval: 10m
tests:
  - name: signals
    devices:
      dev-1:
        series: {temp: "11x12"}
        events:
          - {at: 5m, code: E101}
          - {at: 25m, code: E2}
          - {at: 35m, code: E17}
          - {at: 2h, code: E1}
      dev-2:
        series: {rpm: "200x6 50x12"}
        maintenance:
          - {at: 55m, component: fan}
    alerts:
      - {at: 35m, rule: gated, device: dev-1}
      - {at: 1h10m, rule: gated, device: dev-1, state: resolved}
      - {at: 0s, rule: worn, device: dev-2}
      - {at: 1h, rule: worn, device: dev-2, state: resolved}
`,
	})
	rep, err := rules.RunTestFile(filepath.Join(dir, "r_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tests {
		if !tr.Passed() {
			t.Errorf("%s: %s\n(alerts %v)", tr.Name, strings.Join(tr.Diff, "\n"), tr.Alerts)
		}
	}
}

func TestRuleTestSignalProblems(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{
		"r.yaml": "rules:\n  - {name: r, component: c, when: 'events(\"E1\", \"1h\") > 0', severity: info}\n",
		"r_test.yaml": `rule_files: [r.yaml]
tests:
  - name: t
    devices:
      dev-1:
        events:
          - {at: 5m, code: "E 1"}
          - {code: E1}
          - {at: 1m, cod: E1}
        maintenance:
          - {at: 1m, component: Fan, kind: swapped}
`,
	})
	err := rules.CheckTestFile(filepath.Join(dir, "r_test.yaml"))
	var got []string
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			got = append(got, strings.TrimPrefix(line, filepath.Join(dir, "r_test.yaml")))
		}
	}
	want := []string{
		`:7: code: "E 1" is not an event code ([A-Za-z0-9_.:-]{1,64})`,
		`:8: events: missing required key at:`,
		`:9: unknown key "cod" (did you mean "code"?)`,
		`:9: events: missing required key code:`,
		`:11: component: "Fan" is not a component name ([a-z][a-z0-9_]{0,63})`,
		`:11: kind: "swapped" is not one of replaced, repaired, inspected`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
