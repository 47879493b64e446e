package rules_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/rules"
)

func TestSeriesNotation(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name, in string
		want     []float64
	}{
		{"one value", "4.1", []float64{4.1}},
		{"values", "1 2  3\t4\n5", []float64{1, 2, 3, 4, 5}},
		{"negative and exponent", "-1.5 2e3 -1e-1", []float64{-1.5, 2000, -0.1}},
		{"repeat is n+1 values", "4x3", []float64{4, 4, 4, 4}},
		{"repeat zero times more", "4x0", []float64{4}},
		{"gap", "1 _ 2", []float64{1, nan, 2}},
		{"gaps", "_x2 1", []float64{nan, nan, nan, 1}},
		{"ramp", "4+0.5x3", []float64{4, 4.5, 5, 5.5}},
		{"falling ramp", "4-0.5x3", []float64{4, 3.5, 3, 2.5}},
		{"negative start", "-1+1x2", []float64{-1, 0, 1}},
		{"exponent in ramp", "1e1+1e0x2", []float64{10, 11, 12}},
		{"negative exponent in ramp", "1e-1-1e-1x1", []float64{0.1, 0}},
		{"explicit plus sign", "+2", []float64{2}},
		{"ramps joined", "0+1x2 3-1x2", []float64{0, 1, 2, 3, 2, 1}},
		{"group", "(1 2)", []float64{1, 2}},
		{"group repeated", "(1 2)x2", []float64{1, 2, 1, 2, 1, 2}},
		{"group with gaps and ramps", "(0+1x1 _)x1 9", []float64{0, 1, nan, 0, 1, nan, 9}},
		{"nested groups", "((1)x1 2)x1", []float64{1, 1, 2, 1, 1, 2}},
		{"groups side by side", "(1)(2)x1", []float64{1, 2, 2}},
		{"leading and trailing space", "  1 2  ", []float64{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rules.ParseSeries(tc.in)
			if err != nil {
				t.Fatalf("ParseSeries(%q): %v", tc.in, err)
			}
			if !sameSeries(got, tc.want) {
				t.Errorf("ParseSeries(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// sameSeries compares series to within float rounding, NaN equal to NaN.
func sameSeries(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool {
		return math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) <= 1e-12*math.Max(1, math.Abs(y))
	})
}

func TestSeriesLongRampDoesNotDrift(t *testing.T) {
	got, err := rules.ParseSeries("4+0.1x10000")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10001 || got[10000] != 4+10000*0.1 {
		t.Errorf("ramp of %d values ends at %v, want 10001 ending at %v", len(got), got[len(got)-1], 4+10000*0.1)
	}
}

func TestSeriesErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "empty series"},
		{"   ", "empty series"},
		{"4x", `"4x": missing count after x`},
		{"x3", `"x3": missing value before x`},
		{"4+1", `"4+1": a step needs a count, like 4+1x10`},
		{"4x-1", `count "-1" after x is not a whole number`},
		{"4x1.5", `count "1.5" after x is not a whole number`},
		{"hot", `"hot": "hot" is not a number`},
		{"NaN", `"NaN" is not a number`},
		{"Inf", `"Inf" is not a number`},
		{"1e400", `"1e400" is not a number`},
		{"_+1x2", "a gap has no step; write _xN"},
		{"1+ax2", `"+a" is not a number`},
		{"(1 2", `group not closed: missing ")"`},
		{"1 2)", `unexpected ")" at column 4`},
		{"()", "empty group at column 1"},
		{"(1)y", `"y" after a group at column 4: expected a space or xN`},
		{"(1)x", "missing count after x"},
		{"1e308+1e308x2", "the values overflow"},
		{"4x1048576", "series longer than 1048576 steps"},
		{"4x99999999999999999999", "series longer than 1048576 steps"},
		{"(1 2)x600000", "series longer than 1048576 steps"},
		{"(((((((((1)))))))))", "groups nested more than 8 deep"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := rules.ParseSeries(tc.in)
			if err == nil {
				t.Fatalf("ParseSeries(%q) = %v, want an error saying %q", tc.in, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSeries(%q): error %q does not say %q", tc.in, err, tc.want)
			}
		})
	}
}

func FuzzParseSeries(f *testing.F) {
	for _, s := range []string{"4.1", "4x3 _x2", "4+0.5x3 4-0.5x3", "(1 (2 _)x2)x3", "1e-3+1e3x4", "(", ")x", "x", "_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := rules.ParseSeries(s)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > rules.MaxTestSteps {
			t.Fatalf("ParseSeries(%q) gave %d values", s, len(got))
		}
		for _, v := range got {
			if math.IsInf(v, 0) {
				t.Fatalf("ParseSeries(%q) gave an infinite value", s)
			}
		}
	})
}

// mustWriteFiles writes files (name → content) into a new temporary
// directory and returns it.
func mustWriteFiles(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

const hotRuleYAML = `rules:
  - name: hot
    component: cabinet
    when: temp > 10
    for: 10m
    severity: warning
    predict: forecast(temp, 30, "1h")
    summary: "Cabinet at {{ .Metrics.temp }} °C"
`

// hotSeries at 5m steps: 5 until 10m, 11..16 from 15m to 40m, then 5 from
// 45m to 1h10m. The hot rule is pending from 15m, fires at 25m, is false
// from 45m and resolves at 55m.
const hotSeries = `"5x2 11+1x5 5x5"`

func TestRuleTestDiff(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{
		"hot.yaml": hotRuleYAML,
		"hot_test.yaml": `rule_files: [hot.yaml]
evaluation_interval: 5m
tests:
  - name: right
    devices:
      dev-1:
        series: {temp: ` + hotSeries + `}
    alerts:
      - {at: 25m, rule: hot, state: firing, severity: warning, summary_contains: "Cabinet at 13 °C"}
      - {at: 55m, rule: hot, state: resolved}

  - name: wrong times, severity and summary
    devices:
      dev-1:
        series: {temp: ` + hotSeries + `}
      dev-2:
        series: {temp: "5x14"}
    alerts:
      - {at: 20m, rule: hot, device: dev-1, state: firing}
      - {at: 55m, rule: hot, device: dev-1, state: resolved, severity: critical, summary_contains: "°F"}
      - {at: 1h, rule: hot, device: dev-2}

  - name: tolerances and time to failure
    devices:
      dev-1:
        series: {temp: ` + hotSeries + `}
    alerts:
      - {at: 20m ± 5m, rule: hot, time_to_failure: 1w ± 1h}
    no_other_alerts: false

  - name: no prediction wanted
    devices:
      dev-1:
        series: {temp: ` + hotSeries + `}
    alerts:
      - {at: 25m, rule: hot, time_to_failure: none}
      - {at: 55m, rule: hot, state: resolved}
`,
	})
	rep, err := rules.RunTestFile(filepath.Join(dir, "hot_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ttf := `\d+m\d+s` // forecast's answer, which this test does not pin down
	want := map[string][]string{
		"right": nil,
		"wrong times, severity and summary": {
			`missing: at 20m hot dev-1 firing (the nearest is at 25m)`,
			`unexpected: at 25m hot dev-1 firing, time_to_failure ` + ttf,
			`wrong severity at 55m hot dev-1 resolved: got warning, want critical`,
			`wrong summary at 55m hot dev-1 resolved: got "Cabinet at 5 °C", want it to contain "°F"`,
			`missing: at 1h hot dev-2 firing`,
		},
		"tolerances and time to failure": {
			`wrong time_to_failure at 25m hot dev-1 firing: got ` + ttf + `, want 1w ± 1h`,
		},
		"no prediction wanted": {
			`wrong time_to_failure at 25m hot dev-1 firing: got ` + ttf + `, want none`,
		},
	}
	if len(rep.Tests) != len(want) {
		t.Fatalf("%d tests, want %d", len(rep.Tests), len(want))
	}
	if rep.Failed() != 3 {
		t.Errorf("Failed() = %d, want 3", rep.Failed())
	}
	for _, res := range rep.Tests {
		w, ok := want[res.Name]
		if !ok {
			t.Errorf("unexpected test %q", res.Name)
			continue
		}
		if res.Passed() != (len(w) == 0) {
			t.Errorf("%s: Passed() = %v", res.Name, res.Passed())
		}
		if !matchLines(res.Diff, w) {
			t.Errorf("%s: diff\n\t%s\nwant\n\t%s", res.Name, strings.Join(res.Diff, "\n\t"), strings.Join(w, "\n\t"))
		}
	}
	if got := rep.Tests[0].Alerts; len(got) != 2 || got[0].String() != "at 25m hot dev-1 firing" || got[1].String() != "at 55m hot dev-1 resolved" {
		t.Errorf("alerts of the first test: %v", got)
	}
}

// matchLines reports whether each line matches the regular expression of
// the same index; the expressions are literal but for `\d+m\d+s`.
func matchLines(lines, res []string) bool {
	if len(lines) != len(res) {
		return false
	}
	for i, re := range res {
		quoted := strings.ReplaceAll(regexp.QuoteMeta(re), `\\d\+m\\d\+s`, `(\d+[wdhms])+`)
		if !regexp.MustCompile("^" + quoted + "$").MatchString(lines[i]) {
			return false
		}
	}
	return true
}

func TestRuleTestEvaluationErrors(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{
		"div.yaml": `rules:
  - name: div
    component: c
    when: temp > 10 && int(temp) % int(temp - temp) == 0
    severity: info
`,
		"div_test.yaml": `rule_files: [div.yaml]
tests:
  - name: broken rule
    devices: {d1: {series: {temp: "11x3"}}}
`,
	})
	rep, err := rules.RunTestFile(filepath.Join(dir, "div_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := `evaluation errors: rule div: 4 errors in 4 evaluations, the last at 3m: runtime error: integer divide by zero`
	if d := rep.Tests[0].Diff; len(d) != 1 || !strings.HasPrefix(d[0], want) {
		t.Errorf("diff %q, want one line starting %q", d, want)
	}
}

func TestRuleTestClockTicks(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{
		"silent.yaml": `rules:
  - name: silent
    component: link
    when: since_seen() > duration("2h")
    severity: info
`,
		"silent_test.yaml": `rule_files: [silent.yaml]
evaluation_interval: 1h
tests:
  - name: steps only
    run_until: 5h
    devices: {d1: {series: {x: "1x1"}}}
    alerts: [{at: 4h, rule: silent}]
  - name: an extra tick
    ticks: [3h1m]
    devices: {d1: {series: {x: "1x1"}}}
    alerts: [{at: 3h1m, rule: silent}]
  - name: trailing gaps keep the clock running
    devices: {d1: {series: {x: "1x1 _x4"}}, d2: {series: {x: "1x5"}}}
    alerts: [{at: 4h, rule: silent, device: d1}]
`,
	})
	rep, err := rules.RunTestFile(filepath.Join(dir, "silent_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Tests {
		if !res.Passed() {
			t.Errorf("%s:\n\t%s", res.Name, strings.Join(res.Diff, "\n\t"))
		}
	}
}

func TestRuleTestFileProblems(t *testing.T) {
	const head = "rule_files: [hot.yaml]\ntests:\n  - name: t\n    devices:\n      dev-1:\n"
	cases := []struct {
		name, test string
		want       []string // problems, with "F" for the test file's path
	}{
		{"unknown top key", "rule_file: [hot.yaml]\ntests: []\n", []string{
			`F:1: unknown key "rule_file" (did you mean "rule_files"?)`,
			`F:1: missing required key rule_files: (the rule files to test, relative to this file)`,
			`F:2: tests: must be a list of tests, each with name:, devices: and alerts:`,
		}},
		{"bad series and key", head + "        series: {temp: \"4x\"}\n        modle: x\n", []string{
			`F:6: series temp: "4x": missing count after x`,
			`F:7: unknown key "modle" (did you mean "model"?)`,
		}},
		{"bad alert", head + "        series: {temp: \"4\"}\n    alerts:\n      - at: 1x\n        rule: hot\n        state: pending\n        sevrity: info\n        device: dev-9\n", []string{
			`F:8: at: "1x": unknown unit "x" (use s, m, h, d or w) (write a duration such as 2d, or 2d ± 6h)`,
			`F:10: state: "pending" is not firing or resolved (pending alerts are not reported)`,
			`F:11: unknown key "sevrity" (did you mean "severity"?)`,
			`F:12: device: "dev-9" is not one of the test's devices`,
		}},
		{"unknown rule", head + "        series: {temp: \"4\"}\n    alerts: [{at: 1m, rule: hto}]\n", []string{
			`F:7: rule: "hto" is not a rule of rule_files`,
		}},
		{"two devices, no device", head + "        series: {temp: \"4\"}\n      dev-2:\n        series: {temp: \"4\"}\n    alerts: [{at: 1m, rule: hot}]\n", []string{
			`F:9: missing required key device: (it may be left out only when the test has one device)`,
		}},
		{"durations", "rule_files: [hot.yaml]\nevaluation_interval: 0\nstart: yesterday\ntests:\n  - name: t\n    run_until: 100w\n    evaluation_interval: 1s\n    devices: {d: {series: {x: \"1\"}}}\n", []string{
			`F:2: evaluation_interval: must be longer than zero`,
			`F:3: start: "yesterday" is not an RFC 3339 time such as 2026-01-01T00:00:00Z`,
			`F:5: the test runs for more than 1048576 steps of 1s; shorten run_until or ticks, or lengthen evaluation_interval`,
		}},
		{"a rule file", hotRuleYAML, []string{
			`F:1: this is a rule file, not a rule test file (which has rule_files: and tests:)`,
		}},
		{"bad rule file", "rule_files: [broken.yaml, missing.yaml]\ntests: [{name: t, devices: {d: {series: {x: \"1\"}}}}]\n", []string{
			`D/missing.yaml: no such file`,
			`D/broken.yaml:4: rule hot: when: unexpected token EOF (column 6 of "temp >")`,
		}},
		{"YAML syntax", "rule_files: [hot.yaml\n", []string{
			`F:2: YAML: did not find expected ',' or ']'`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := mustWriteFiles(t, map[string]string{
				"hot.yaml":    hotRuleYAML,
				"broken.yaml": strings.Replace(hotRuleYAML, "temp > 10", "temp >", 1),
				"x_test.yaml": tc.test,
			})
			path := filepath.Join(dir, "x_test.yaml")
			_, err := rules.RunTestFile(path)
			var probs rules.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error %v, want Problems", err)
			}
			var got []string
			for _, p := range probs {
				s := strings.ReplaceAll(p.Error(), path, "F")
				got = append(got, strings.ReplaceAll(s, dir, "D"))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
			if err := rules.CheckTestFile(path); err == nil || err.Error() != probs.Error() {
				t.Errorf("CheckTestFile: %v, want the same problems", err)
			}
		})
	}
}

func TestLoadFilesSkipsTestFilesInGlobs(t *testing.T) {
	dir := mustWriteFiles(t, map[string]string{"hot.yaml": hotRuleYAML, "hot_test.yaml": "rule_files: [hot.yaml]\n"})
	specs, probs := rules.LoadFiles([]string{filepath.Join(dir, "*.yaml")})
	if len(probs) > 0 || len(specs) != 1 || specs[0].Name != "hot" {
		t.Errorf("LoadFiles(dir/*.yaml) = %d specs, problems %v; want the rule hot alone", len(specs), probs)
	}
	for name, want := range map[string]bool{"a_test.yaml": true, "d/a_test.yml": true, "a.yaml": false, "test.yaml": false, "a_test.yaml.bak": false} {
		if rules.IsTestFile(name) != want {
			t.Errorf("IsTestFile(%q) = %v, want %v", name, !want, want)
		}
	}
}
