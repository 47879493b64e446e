package rules

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

func mustReadFile(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func problemStrings(ps Problems) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

func specNames(specs []Spec) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

func TestParseFileEveryField(t *testing.T) {
	const name = "testdata/load/full.yaml"
	specs, probs := ParseFile(name, mustReadFile(t, name))
	if len(probs) > 0 {
		t.Fatalf("unexpected problems:\n%v", probs)
	}
	want := []Spec{
		{
			Name:        "compressor_wear",
			Component:   "compressor",
			Models:      []string{"fridge-*", "freezer-[ab]?"},
			When:        `avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "7d")`,
			Predict:     "forecast(compressor_current, 9.0)",
			For:         30 * time.Minute,
			ClearFor:    time.Hour,
			ClearForSet: true,
			Cooldown:    7 * 24 * time.Hour,
			Severity:    proactive.SeverityWarning,
			Contact:     proactive.ContactAuto,
			Summary:     "Compressor current {{ .Metrics.compressor_current }} A, above its weekly norm",
			Labels:      map[string]string{"team": "cooling", "tier": "2"},
			File:        name,
			Line:        3,
			WhenLine:    6,
			PredictLine: 10,
			SummaryLine: 11,
		},
		{
			Name:      "door_seal",
			Component: "door",
			When: "avg(cabinet_temp, \"6h\") - avg(cabinet_temp, \"7d\") > 1.5\n" +
				"  and count(door_open, \"6h\") < 20\n",
			For:         2 * time.Hour,
			ClearFor:    2 * time.Hour, // defaults to For
			Severity:    proactive.SeverityInfo,
			Contact:     proactive.ContactAuto, // the default
			Summary:     "Cabinet {{ .Metrics.cabinet_temp }} °C\non {{ .Device.ID }}\n",
			File:        name,
			Line:        15,
			WhenLine:    18, // a "|" block starts on the line after the key
			SummaryLine: 23,
		},
	}
	if !reflect.DeepEqual(specs, want) {
		t.Errorf("specs differ\n got: %+v\nwant: %+v", specs, want)
	}
}

func TestParseFileDefaults(t *testing.T) {
	head := "rules:\n  - name: r\n    component: c\n    when: x > 1\n    severity: critical\n"
	tests := []struct {
		name                    string
		extra                   string
		forD, clearFor, cooldwn time.Duration
		clearForSet             bool
		contact                 proactive.Contact
	}{
		{name: "nothing", extra: ""},
		{name: "for only", extra: "    for: 10m\n", forD: 10 * time.Minute, clearFor: 10 * time.Minute},
		{name: "clear_for zero", extra: "    for: 10m\n    clear_for: 0\n", forD: 10 * time.Minute, clearForSet: true},
		{name: "clear_for set", extra: "    clear_for: 1d12h\n", clearFor: 36 * time.Hour, clearForSet: true},
		{name: "nulls are absent", extra: "    for: ~\n    clear_for:\n    cooldown: null\n    predict:\n    summary:\n    models:\n    labels:\n"},
		{name: "cooldown", extra: "    cooldown: 2w\n", cooldwn: 14 * 24 * time.Hour},
		{name: "cooldown zero is off", extra: "    cooldown: 0\n"},
		{name: "contact review", extra: "    contact: review\n", contact: proactive.ContactReview},
		{name: "contact none", extra: "    contact: none\n", contact: proactive.ContactNone},
		{name: "contact auto", extra: "    contact: auto\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, probs := ParseFile("r.yaml", []byte(head+tt.extra))
			if len(probs) > 0 {
				t.Fatalf("unexpected problems:\n%v", probs)
			}
			if len(specs) != 1 {
				t.Fatalf("got %d specs, want 1", len(specs))
			}
			s := specs[0]
			if s.For != tt.forD || s.ClearFor != tt.clearFor || s.Cooldown != tt.cooldwn || s.ClearForSet != tt.clearForSet {
				t.Errorf("for=%v clear_for=%v (set %v) cooldown=%v; want %v %v (%v) %v",
					s.For, s.ClearFor, s.ClearForSet, s.Cooldown, tt.forD, tt.clearFor, tt.clearForSet, tt.cooldwn)
			}
			if want := tt.contact.OrAuto(); s.Contact != want {
				t.Errorf("contact = %q, want %q", s.Contact, want)
			}
			if s.Predict != "" || s.Summary != "" || s.Models != nil || s.Labels != nil || s.PredictLine != 0 || s.SummaryLine != 0 {
				t.Errorf("absent keys not zero: %+v", s)
			}
		})
	}
}

func TestParseFileEmpty(t *testing.T) {
	tests := map[string]string{
		"empty":          "",
		"comment":        "# no rules yet\n",
		"document start": "---\n",
		"null":           "~\n",
		"rules null":     "rules:\n",
		"rules empty":    "rules: []\n",
		"empty mapping":  "{}\n",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			specs, probs := ParseFile("r.yaml", []byte(src))
			if len(specs) != 0 || len(probs) != 0 {
				t.Errorf("got %d specs and problems %v; want none", len(specs), probs)
			}
		})
	}
}

// validRuleYAML is a valid rule at lines 2-5, for cases that add one key at line 6.
const validRuleYAML = "rules:\n  - name: r\n    component: c\n    when: x > 1\n    severity: info\n"

func TestParseFileProblems(t *testing.T) {
	// Rules still returned despite the problems; by default none.
	returned := map[string][]string{
		"unknown top-level key": {"r"},
		"duplicate name":        {"r"},
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// The file as a whole.
		{"yaml syntax on line 1", "a: b: c\n",
			[]string{"r.yaml:1: YAML: mapping values are not allowed in this context"}},
		{"yaml syntax later", validRuleYAML + "    when: a: b\n",
			[]string{"r.yaml:6: YAML: mapping values are not allowed in this context"}},
		{"yaml unclosed flow list", validRuleYAML + "    models: [a, b\n",
			[]string{"r.yaml:6: YAML: did not find expected ',' or ']'"}},
		{"yaml bad indentation", "rules:\n  - name: r\n    when: x > 1\n  severity: info\n",
			[]string{"r.yaml:2: YAML: did not find expected '-' indicator"}},
		{"yaml unknown anchor, which yaml gives no line", "rules:\n  - name: *nope\n",
			[]string{"r.yaml: YAML: unknown anchor 'nope' referenced"}},
		{"not utf-8", "rules:\n  - name: r\xff\n",
			[]string{"r.yaml:2: file is not UTF-8 text"}},
		{"two documents", validRuleYAML + "---\nrules: []\n",
			[]string{"r.yaml:7: a rule file holds one YAML document; found a second one"}},
		{"root is a list", "- name: r\n",
			[]string{"r.yaml:1: a rule file must be a mapping with the key rules:"}},
		{"root is a string", "hello\n",
			[]string{"r.yaml:1: a rule file must be a mapping with the key rules:"}},
		{"unknown top-level key", "groups: []\n" + validRuleYAML,
			[]string{`r.yaml:1: unknown key "groups" (a rule file has only the key rules:)`}},
		{"rules twice", "rules: []\nrules: []\n",
			[]string{`r.yaml:2: key "rules" repeated (first at line 1)`}},
		{"rules not a list", "rules:\n  name: r\n",
			[]string{"r.yaml:2: rules: must be a list of rules"}},
		{"rule not a mapping", "rules:\n  - r\n  - [a]\n",
			[]string{
				"r.yaml:2: rule #1: a rule must be a mapping of keys such as name:, when: and severity:",
				"r.yaml:3: rule #2: a rule must be a mapping of keys such as name:, when: and severity:",
			}},

		// Keys.
		{"missing required keys", "rules:\n  - for: 5m\n", []string{
			"r.yaml:2: rule #1: missing required key name:",
			"r.yaml:2: rule #1: missing required key component:",
			"r.yaml:2: rule #1: missing required key when:",
			"r.yaml:2: rule #1: missing required key severity:",
		}},
		{"unknown key, close to a known one", validRuleYAML + "    sevrity: info\n",
			[]string{`r.yaml:6: rule r: unknown key "sevrity" (did you mean "severity"?)`}},
		{"unknown key", validRuleYAML + "    owner: ops\n",
			[]string{`r.yaml:6: rule r: unknown key "owner" (a rule has name, component, models, when, for, clear_for, severity, predict, summary, cooldown, contact, labels, reset_on_maintenance)`}},
		{"contact not a policy", validRuleYAML + "    contact: sometimes\n",
			[]string{`r.yaml:6: rule r: contact: "sometimes" is not one of auto, review, none`}},
		{"contact empty", validRuleYAML + "    contact:\n",
			[]string{`r.yaml:6: rule r: contact: must not be empty`}},
		{"repeated key", validRuleYAML + "    when: y > 2\n",
			[]string{`r.yaml:6: rule r: key "when" repeated (first at line 4)`}},
		{"key not a scalar", validRuleYAML + "    [a]: b\n",
			[]string{"r.yaml:6: rule r: keys must be plain names"}},
		{"alias", "rules:\n  - name: &n r\n    component: *n\n    when: x > 1\n    severity: info\n",
			[]string{"r.yaml:3: rule r: component: YAML aliases are not supported in rule files"}},

		// name and component.
		{"empty name", "rules:\n  - name: ''\n    component: c\n    when: x > 1\n    severity: info\n",
			[]string{"r.yaml:2: rule #1: name: must not be empty"}},
		{"bad name", "rules:\n  - name: Compressor\n    component: c\n    when: x > 1\n    severity: info\n",
			[]string{`r.yaml:2: rule #1: name: "Compressor" must match [a-z][a-z0-9_]{0,63}`}},
		{"name too long", "rules:\n  - name: " + strings.Repeat("a", 65) + "\n    component: c\n    when: x > 1\n    severity: info\n",
			[]string{`r.yaml:2: rule #1: name: "` + strings.Repeat("a", 65) + `" must match [a-z][a-z0-9_]{0,63}`}},
		{"name a list", "rules:\n  - name: [r]\n    component: c\n    when: x > 1\n    severity: info\n",
			[]string{"r.yaml:2: rule #1: name: must be a single value, not a list"}},
		{"bad component", "rules:\n  - name: r\n    component: 1st-stage\n    when: x > 1\n    severity: info\n",
			[]string{`r.yaml:3: rule r: component: "1st-stage" must match [a-z][a-z0-9_]{0,63}`}},
		{"duplicate name", validRuleYAML + "  - name: r\n    component: d\n    when: y\n    severity: info\n",
			[]string{"r.yaml:6: rule r: name already used at line 2"}},

		// when and predict.
		{"empty when", "rules:\n  - name: r\n    component: c\n    when: \"\"\n    severity: info\n",
			[]string{"r.yaml:4: rule r: when: must not be empty"}},
		{"when a mapping", "rules:\n  - name: r\n    component: c\n    when:\n      a: b\n    severity: info\n",
			[]string{"r.yaml:5: rule r: when: must be a single value, not a mapping"}},
		{"when too long", "rules:\n  - name: r\n    component: c\n    when: " + strings.Repeat("x", MaxRuleExprLen+1) + "\n    severity: info\n",
			[]string{"r.yaml:4: rule r: when: expression is 4097 bytes, over the limit of 4096"}},
		{"predict too long", validRuleYAML + "    predict: " + strings.Repeat("x", MaxRuleExprLen+1) + "\n",
			[]string{"r.yaml:6: rule r: predict: expression is 4097 bytes, over the limit of 4096"}},

		// severity.
		// One run reports a rule's own problems and its expressions' together.
		{"missing severity and a bad when", "rules:\n  - name: r\n    component: c\n    when: x\n    predict: '1 +'\n",
			[]string{"r.yaml:2: rule r: missing required key severity:", `r.yaml:4: rule r: when: expected bool, but got float64 (column 1 of "x")`, "r.yaml:5: rule r: predict: unexpected token EOF (column 3 of \"1 +\")"}},
		{"bad severity", "rules:\n  - name: r\n    component: c\n    when: x > 1\n    severity: high\n",
			[]string{`r.yaml:5: rule r: severity: "high" is not one of info, warning, critical`}},
		{"severity in capitals", "rules:\n  - name: r\n    component: c\n    when: x > 1\n    severity: Warning\n",
			[]string{`r.yaml:5: rule r: severity: "Warning" is not one of info, warning, critical`}},

		// Durations.
		{"unknown unit", validRuleYAML + "    for: 7x\n",
			[]string{`r.yaml:6: rule r: for: "7x": unknown unit "x" (use s, m, h, d or w)`}},
		{"space before the unit", validRuleYAML + "    clear_for: 500 ms\n",
			[]string{`r.yaml:6: rule r: clear_for: "500 ms": unknown unit " ms" (use s, m, h, d or w)`}},
		{"negative", validRuleYAML + "    cooldown: -1h\n",
			[]string{`r.yaml:6: rule r: cooldown: "-1h": negative durations are not allowed`}},
		{"no unit", validRuleYAML + "    for: 30\n",
			[]string{`r.yaml:6: rule r: for: "30": missing unit after 30 (use s, m, h, d or w)`}},
		{"duration a list", validRuleYAML + "    for: [5m]\n",
			[]string{"r.yaml:6: rule r: for: must be a single value, not a list"}},

		// models.
		{"models not a list", validRuleYAML + "    models: fridge-*\n",
			[]string{`r.yaml:6: rule r: models: must be a list of globs, like ["fridge-*"]`}},
		{"models empty", validRuleYAML + "    models: []\n",
			[]string{"r.yaml:6: rule r: models: empty list; leave models out to match every model"}},
		{"bad glob", validRuleYAML + "    models:\n      - fridge-*\n      - fridge-[\n",
			[]string{`r.yaml:8: rule r: models: bad glob "fridge-[": syntax error in pattern`}},
		{"empty glob", validRuleYAML + "    models: [fridge-*, '']\n",
			[]string{"r.yaml:6: rule r: models: each entry must be a non-empty glob"}},

		// labels.
		{"labels not a mapping", validRuleYAML + "    labels: [team]\n",
			[]string{"r.yaml:6: rule r: labels: must be a mapping of names to values, like {team: cooling}"}},
		{"label value a list", validRuleYAML + "    labels:\n      team: cooling\n      owners: [a, b]\n",
			[]string{`r.yaml:8: rule r: labels: the value of "owners" must be a single value, not a list`}},
		{"label value an alias", validRuleYAML + "    labels: {a: &x 1, b: *x}\n",
			[]string{`r.yaml:6: rule r: labels: the value of "b" must be a single value, not a YAML alias`}},
		{"label repeated", validRuleYAML + "    labels:\n      team: cooling\n      team: heating\n",
			[]string{`r.yaml:8: rule r: labels: "team" repeated (first at line 7)`}},

		// summary.
		{"summary unclosed action", validRuleYAML + "    summary: \"{{ .Metrics.x \"\n",
			[]string{"r.yaml:6: rule r: summary: unclosed action"}},
		{"summary unknown function", validRuleYAML + "    summary: \"{{ humanize .Metrics.x }}\"\n",
			[]string{`r.yaml:6: rule r: summary: function "humanize" not defined`}},
		{"summary literal block, error on its third line", validRuleYAML + "    summary: |\n      one\n      two\n      {{ end }}\n",
			[]string{"r.yaml:9: rule r: summary: unexpected {{end}}"}},
		{"summary quoted, error on its second line", validRuleYAML + "    summary: \"one\\n{{ end }}\"\n",
			[]string{"r.yaml:6: rule r: summary: unexpected {{end}} (line 2 of the template)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, probs := ParseFile("r.yaml", []byte(tt.src))
			if got := problemStrings(probs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tt.want)
			}
			if got := specNames(specs); !reflect.DeepEqual(got, nonNil(returned[tt.name])) {
				t.Errorf("specs = %q, want %q", got, returned[tt.name])
			}
		})
	}
}

func TestParseFileSeveralProblems(t *testing.T) {
	const name = "testdata/load/bad.yaml"
	specs, probs := ParseFile(name, mustReadFile(t, name))
	want := []string{
		name + `:2: rule #1: name: "Bad-Name" must match [a-z][a-z0-9_]{0,63}`,
		name + `:5: rule #1: severity: "high" is not one of info, warning, critical`,
		name + `:6: rule #1: for: "7x": unknown unit "x" (use s, m, h, d or w)`,
		name + `:11: rule ok_rule: unknown key "sevrity" (did you mean "severity"?)`,
		name + `:12: rule ok_rule: summary: unclosed action`,
	}
	if got := problemStrings(probs); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got: %q\nwant: %q", got, want)
	}
	// The one good rule is still returned.
	if got := specNames(specs); !reflect.DeepEqual(got, []string{"good_rule"}) {
		t.Errorf("specs = %q, want [good_rule]", got)
	}
	if err := probs.Err(); err == nil || !strings.Contains(err.Error(), "\n") {
		t.Errorf("Err() = %v, want the problems one per line", err)
	}
}

func TestParseFileLimits(t *testing.T) {
	t.Run("file over 1 MiB", func(t *testing.T) {
		data := []byte(validRuleYAML + "# " + strings.Repeat("x", MaxRuleFileSize) + "\n")
		specs, probs := ParseFile("big.yaml", data)
		want := []string{"big.yaml: file is larger than 1048576 bytes (1 MiB); split it"}
		if got := problemStrings(probs); !reflect.DeepEqual(got, want) || len(specs) != 0 {
			t.Errorf("got %d specs, problems %q; want none and %q", len(specs), got, want)
		}
	})
	t.Run("more than 1000 rules", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("rules:\n")
		for i := range MaxRulesPerFile + 2 {
			// Each rule takes 4 lines; rule i starts on line 2+4i.
			b.WriteString("  - name: r_" + strconv.Itoa(i) + "\n")
			b.WriteString("    component: c\n    when: x > 1\n    severity: info\n")
		}
		specs, probs := ParseFile("many.yaml", []byte(b.String()))
		want := []string{"many.yaml:4002: more than 1000 rules in one file; split them across files"}
		if got := problemStrings(probs); !reflect.DeepEqual(got, want) {
			t.Errorf("problems = %q, want %q", got, want)
		}
		if len(specs) != MaxRulesPerFile {
			t.Errorf("got %d specs, want the first %d", len(specs), MaxRulesPerFile)
		}
	})
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "rules/x.yaml", Line: 12, Rule: "compressor_wear", Msg: "when: bad"}, "rules/x.yaml:12: rule compressor_wear: when: bad"},
		{Problem{File: "rules/x.yaml", Line: 12, Msg: "bad"}, "rules/x.yaml:12: bad"},
		{Problem{File: "rules/x.yaml", Msg: "no such file"}, "rules/x.yaml: no such file"},
		{Problem{Line: 3, Rule: "r", Msg: "bad"}, "line 3: rule r: bad"},
		{Problem{Rule: "r", Msg: "bad"}, "rule r: bad"},
		{Problem{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if err := Problems(nil).Err(); err != nil {
		t.Errorf("Problems(nil).Err() = %v, want nil", err)
	}
	ps := Problems{{File: "a", Line: 1, Msg: "x"}, {File: "b", Msg: "y"}}
	if got, want := ps.Error(), "a:1: x\nb: y"; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestLoadFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxRuleFileSize+10)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		patterns []string
		specs    []string
		problems []string
	}{
		{
			name:     "duplicate names across files",
			patterns: []string{"testdata/load/dup/*.yaml"},
			specs:    []string{"compressor_wear", "fan_stall", "door_switch"},
			problems: []string{"testdata/load/dup/b.yaml:7: rule fan_stall: name already used at testdata/load/dup/a.yaml:6"},
		},
		{
			name:     "file order follows the patterns",
			patterns: []string{"testdata/load/dup/b.yaml", "testdata/load/dup/a.yaml"},
			specs:    []string{"door_switch", "fan_stall", "compressor_wear"},
			problems: []string{"testdata/load/dup/a.yaml:6: rule fan_stall: name already used at testdata/load/dup/b.yaml:7"},
		},
		{
			name:     "glob matching nothing",
			patterns: []string{"testdata/load/none/*.yaml"},
		},
		{
			name:     "literal path missing",
			patterns: []string{"testdata/load/missing.yaml"},
			problems: []string{"testdata/load/missing.yaml: no such file"},
		},
		{
			name:     "literal directory",
			patterns: []string{"testdata/load/dup"},
			problems: []string{"testdata/load/dup: is a directory, not a rule file (use a glob such as dir/*.yaml)"},
		},
		{
			name:     "directories matched by a glob are skipped",
			patterns: []string{"testdata/load/*"},
			specs:    []string{"good_rule", "compressor_wear", "door_seal"},
			problems: []string{
				`testdata/load/bad.yaml:2: rule #1: name: "Bad-Name" must match [a-z][a-z0-9_]{0,63}`,
				`testdata/load/bad.yaml:5: rule #1: severity: "high" is not one of info, warning, critical`,
				`testdata/load/bad.yaml:6: rule #1: for: "7x": unknown unit "x" (use s, m, h, d or w)`,
				`testdata/load/bad.yaml:11: rule ok_rule: unknown key "sevrity" (did you mean "severity"?)`,
				`testdata/load/bad.yaml:12: rule ok_rule: summary: unclosed action`,
			},
		},
		{
			name:     "a file matched twice is read once",
			patterns: []string{"testdata/load/full.yaml", "testdata/load/full*.yaml", "./testdata/load/full.yaml"},
			specs:    []string{"compressor_wear", "door_seal"},
		},
		{
			name:     "bad glob",
			patterns: []string{"testdata/load/[.yaml"},
			problems: []string{"testdata/load/[.yaml: bad glob pattern: syntax error in pattern"},
		},
		{
			name:     "file too large",
			patterns: []string{big},
			problems: []string{big + ": file is larger than 1048576 bytes (1 MiB); split it"},
		},
		{
			name: "no patterns",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, probs := LoadFiles(tt.patterns)
			if got := specNames(specs); !reflect.DeepEqual(got, nonNil(tt.specs)) {
				t.Errorf("specs = %q, want %q", got, tt.specs)
			}
			if got := problemStrings(probs); !reflect.DeepEqual(got, nonNil(tt.problems)) {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tt.problems)
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ruleFileFixtures returns the contents of every file under testdata/load.
func ruleFileFixtures(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	err := filepath.WalkDir("testdata/load", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		out = append(out, mustReadFile(tb, p))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func FuzzParseFile(f *testing.F) {
	for _, data := range ruleFileFixtures(f) {
		f.Add(data)
	}
	f.Add([]byte(validRuleYAML))
	f.Add([]byte(validRuleYAML + "    summary: |\n      {{ .Metrics.x }}\n      {{ end }}\n"))
	f.Add([]byte("rules:\n  - name: &n r\n    component: *n\n"))
	f.Add([]byte("a: b: c\n"))
	f.Add([]byte("rules: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, probs := ParseFile("f.yaml", data)
		for _, p := range probs {
			if p.Line < 0 || p.Msg == "" || p.File != "f.yaml" {
				t.Errorf("bad problem %#v", p)
			}
			if strings.HasPrefix(p.Msg, "cannot parse YAML:") {
				t.Errorf("the YAML library panicked: %s", p.Msg)
			}
		}
		names := map[string]bool{}
		for _, s := range specs {
			if !validRuleName(s.Name) || !validRuleName(s.Component) || !s.Severity.Valid() || s.When == "" {
				t.Errorf("invalid spec %+v", s)
			}
			if names[s.Name] {
				t.Errorf("name %q returned twice", s.Name)
			}
			names[s.Name] = true
			if s.Line < 1 || s.WhenLine < s.Line || s.For < 0 || s.ClearFor < 0 || s.Cooldown < 0 {
				t.Errorf("bad lines or durations in %+v", s)
			}
		}
	})
}
