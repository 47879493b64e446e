package rules

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive"
)

// Rule unit tests, in the spirit of `promtool test rules`: a YAML file names
// rule files, and each of its tests gives devices with series of samples and
// the alerts they must cause. rules/examples/README.md documents the format.

// DefaultTestInterval is the spacing of the steps of a rule test file
// without evaluation_interval.
const DefaultTestInterval = time.Minute

// defaultTestStart is time zero of a rule test file without start:.
var defaultTestStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// IsTestFile reports whether a file name is that of a rule test file:
// NAME_test.yaml or NAME_test.yml. Like Go's _test.go files, they may sit
// beside the rules they test; LoadFiles skips them when a glob matches them.
func IsTestFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, "_test.yaml") || strings.HasSuffix(base, "_test.yml")
}

// TestReport is the outcome of one rule test file.
type TestReport struct {
	// File is the test file's path as given to RunTestFile.
	File string
	// Tests are the file's tests, in file order.
	Tests []TestResult
}

// Failed returns how many of the file's tests failed.
func (r TestReport) Failed() int {
	n := 0
	for _, t := range r.Tests {
		if !t.Passed() {
			n++
		}
	}
	return n
}

// TestResult is the outcome of one test.
type TestResult struct {
	// Name is the test's name; Line the line of its list item.
	Name string
	Line int
	// Alerts are every alert the rules produced, in time order.
	Alerts []TestAlert
	// Diff says how Alerts differ from the expected alerts, one line per
	// difference, in time order; it is empty when the test passed.
	Diff []string
}

// Passed reports whether the test's alerts were as expected.
func (r TestResult) Passed() bool { return len(r.Diff) == 0 }

// TestAlert is an alert a rule test produced, with its time.
type TestAlert struct {
	// At is the evaluation time that produced the alert, since the start of
	// the test.
	At time.Duration
	proactive.Alert
}

// String describes the alert as the diff does: "at 7d2h compressor_wear
// fridge-001 firing".
func (a TestAlert) String() string {
	return fmt.Sprintf("at %s %s %s %s", proactive.FormatDuration(a.At), a.Rule, a.Device, a.State)
}

// RunTestFile runs the rule test file at path. The rule files it names are
// loaded relative to its directory and compiled; each test then feeds its
// devices' samples, in time order and interleaved across devices, through
// a fresh Evaluator, ticks the clock at every step, and compares the alerts
// with the expected ones.
//
// The error is for a file that cannot run: unreadable, not valid YAML,
// with unknown keys or bad values, or naming rule files with problems. It
// is then a Problems listing every problem with its file and line. Tests
// that run and fail are reported in TestReport, not as an error.
func RunTestFile(path string) (TestReport, error) {
	tf, err := loadTestFile(path)
	if err != nil {
		return TestReport{File: path}, err
	}
	rep := TestReport{File: path}
	for _, t := range tf.tests {
		rep.Tests = append(rep.Tests, t.run(tf.set))
	}
	return rep, nil
}

// CheckTestFile reads the rule test file at path and loads the rule files it
// names, as RunTestFile does, without running the tests. The error, when
// not nil, is a Problems.
func CheckTestFile(path string) error {
	_, err := loadTestFile(path)
	return err
}

// testFile is a parsed rule test file.
type testFile struct {
	set   *RuleSet
	tests []*ruleTest
}

type ruleTest struct {
	name     string
	line     int
	start    time.Time
	interval time.Duration
	devices  []*testDevice
	// ticks are extra clock ticks besides the one at every step; runUntil
	// is how long the clock runs after the series end.
	ticks    []time.Duration
	runUntil time.Duration
	alerts   []*wantAlert
	noOther  bool
}

type testDevice struct {
	id      proactive.DeviceID
	model   string
	ageDays float64 // NaN when not given
	series  []testSeries
	// events and maint are the device's events and maintenance, at times
	// since the test's start (Time holds the offset from the zero time).
	events []proactive.Event
	maint  []proactive.Maintenance
}

type testSeries struct {
	metric string
	values []float64 // NaN for a step without a sample
}

// wantAlert is an expected alert.
type wantAlert struct {
	line        int
	at, atTol   time.Duration
	rule        string
	device      proactive.DeviceID
	state       proactive.AlertState
	severity    proactive.Severity // "" when not checked
	ttfSet      bool
	ttfNone     bool // time_to_failure: none
	ttf, ttfTol time.Duration
	ttfTolSet   bool
	summary     string // a substring; "" when not checked
}

func (w *wantAlert) String() string {
	at := proactive.FormatDuration(w.at)
	if w.atTol > 0 {
		at += " ± " + proactive.FormatDuration(w.atTol)
	}
	return fmt.Sprintf("at %s %s %s %s", at, w.rule, w.device, w.state)
}

func (w *wantAlert) ttfString() string {
	if w.ttfNone {
		return "none"
	}
	s := proactive.FormatDuration(w.ttf)
	if w.ttfTolSet {
		s += " ± " + proactive.FormatDuration(w.ttfTol)
	}
	return s
}

var (
	testFileKeys   = []string{"rule_files", "evaluation_interval", "start", "tests"}
	testKeys       = []string{"name", "evaluation_interval", "devices", "ticks", "run_until", "alerts", "no_other_alerts"}
	testDeviceKeys = []string{"model", "age_days", "series", "events", "maintenance"}
	testEventKeys  = []string{"at", "code"}
	testMaintKeys  = []string{"at", "component", "kind"}
	testAlertKeys  = []string{"at", "rule", "device", "state", "severity", "time_to_failure", "summary_contains"}
)

// testParser collects the problems of one rule test file.
type testParser struct {
	fileParser
}

func (p *testParser) addf(line int, format string, args ...any) {
	p.fileParser.addf(line, "", format, args...)
}

func loadTestFile(path string) (*testFile, error) {
	p := &testParser{fileParser{file: path}}
	data, err := readRuleFile(path)
	if err != nil {
		p.addf(0, "%v", err)
		return nil, p.probs
	}
	if len(data) > MaxRuleFileSize {
		p.addf(0, "file is larger than %d bytes (1 MiB); split it", MaxRuleFileSize)
		return nil, p.probs
	}
	tf, patterns := p.parse(data)
	slices.SortStableFunc(p.probs, func(a, b Problem) int { return a.Line - b.Line })
	probs := p.probs
	if len(patterns) > 0 {
		dir := filepath.Dir(path)
		for i, pat := range patterns {
			if !filepath.IsAbs(pat) {
				patterns[i] = filepath.Join(dir, pat)
			}
		}
		specs, ruleProbs := LoadFiles(patterns)
		set, compileProbs := Compile(specs)
		tf.set = set
		ruleProbs = append(ruleProbs, compileProbs...)
		probs = append(probs, ruleProbs...)
		if len(ruleProbs) == 0 && len(specs) == 0 {
			probs = append(probs, Problem{File: path, Msg: fmt.Sprintf("rule_files: no rules in %s", strings.Join(patterns, ", "))})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	// Expected alerts must name rules that exist: a typo would otherwise
	// only show as a missing alert.
	names := map[string]bool{}
	for _, r := range tf.set.Rules() {
		names[r.Name] = true
	}
	for _, t := range tf.tests {
		for _, w := range t.alerts {
			if !names[w.rule] {
				p.addf(w.line, "rule: %q is not a rule of rule_files", w.rule)
			}
		}
	}
	if len(p.probs) > 0 {
		return nil, p.probs
	}
	return tf, nil
}

// parse reads the file's structure; it returns the rule_files patterns as
// written, nil when there is a problem with them.
func (p *testParser) parse(data []byte) (*testFile, []string) {
	tf := &testFile{}
	root := p.decode(data)
	if root == nil || yamlIsNull(root) {
		if len(p.probs) == 0 {
			p.addf(1, "empty rule test file: it needs rule_files: and tests:")
		}
		return tf, nil
	}
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "rules" {
				p.addf(k.Line, "this is a rule file, not a rule test file (which has rule_files: and tests:)")
				return tf, nil
			}
		}
	}
	f, ok := p.fields(root, "a rule test file", testFileKeys)
	if !ok {
		return tf, nil
	}
	interval, start := DefaultTestInterval, defaultTestStart
	if v := f["evaluation_interval"]; v != nil {
		interval = p.interval(v, "evaluation_interval", interval)
	}
	if v := f["start"]; v != nil {
		if s, ok := p.scalar(v, "start"); ok {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				p.addf(v.Line, "start: %q is not an RFC 3339 time such as 2026-01-01T00:00:00Z", s)
			} else {
				start = t
			}
		}
	}
	var patterns []string
	switch v := f["rule_files"]; {
	case v == nil:
		p.addf(root.Line, "missing required key rule_files: (the rule files to test, relative to this file)")
	case v.Kind != yaml.SequenceNode || len(v.Content) == 0:
		p.addf(v.Line, "rule_files: must be a list of files, like [compressor_wear.yaml]")
	default:
		for _, n := range v.Content {
			if s, ok := p.scalar(n, "rule_files"); ok && s != "" {
				patterns = append(patterns, s)
			} else if ok {
				p.addf(n.Line, "rule_files: empty file name")
			}
		}
	}
	switch v := f["tests"]; {
	case v == nil:
		p.addf(root.Line, "missing required key tests:")
	case v.Kind != yaml.SequenceNode || len(v.Content) == 0:
		p.addf(v.Line, "tests: must be a list of tests, each with name:, devices: and alerts:")
	default:
		names := map[string]int{}
		for _, n := range v.Content {
			t := p.test(n, start, interval)
			if t == nil {
				continue
			}
			if first, dup := names[t.name]; dup {
				p.addf(t.line, "test %q: name already used at line %d", t.name, first)
				continue
			}
			names[t.name] = t.line
			tf.tests = append(tf.tests, t)
		}
	}
	return tf, patterns
}

func (p *testParser) test(n *yaml.Node, start time.Time, interval time.Duration) *ruleTest {
	f, ok := p.fields(n, "a test", testKeys)
	if !ok {
		return nil
	}
	t := &ruleTest{line: n.Line, start: start, interval: interval, noOther: true}
	if v := f["name"]; v == nil {
		p.addf(n.Line, "missing required key name: (what the test shows)")
	} else if s, ok := p.scalar(v, "name"); ok {
		if s == "" {
			p.addf(v.Line, "name: must not be empty")
		}
		t.name = s
	}
	if v := f["evaluation_interval"]; v != nil {
		t.interval = p.interval(v, "evaluation_interval", interval)
	}
	if v := f["no_other_alerts"]; v != nil {
		if err := v.Decode(&t.noOther); err != nil || v.Kind != yaml.ScalarNode {
			p.addf(v.Line, "no_other_alerts: must be true or false")
		}
	}
	if v := f["run_until"]; v != nil {
		t.runUntil, _ = p.duration(v, "run_until")
	}
	if v := f["ticks"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			p.addf(v.Line, "ticks: must be a list of times, like [2h1m, 3h]")
		} else {
			for _, tn := range v.Content {
				if d, ok := p.duration(tn, "ticks"); ok {
					t.ticks = append(t.ticks, d)
				}
			}
			slices.Sort(t.ticks)
		}
	}
	steps := int64(t.runUntil / t.interval)
	for _, d := range t.ticks {
		steps = max(steps, int64(d/t.interval))
	}
	if steps >= MaxTestSteps {
		p.addf(n.Line, "the test runs for more than %d steps of %s; shorten run_until or ticks, or lengthen evaluation_interval",
			MaxTestSteps, proactive.FormatDuration(t.interval))
	}
	switch v := f["devices"]; {
	case v == nil:
		p.addf(n.Line, "missing required key devices:")
	case v.Kind != yaml.MappingNode || len(v.Content) == 0:
		p.addf(v.Line, "devices: must be a mapping of device ids to their model and series")
	default:
		for i := 0; i+1 < len(v.Content); i += 2 {
			if d := p.device(v.Content[i], v.Content[i+1], t.devices); d != nil {
				t.devices = append(t.devices, d)
			}
		}
	}
	if v := f["alerts"]; v != nil && !yamlIsNull(v) {
		if v.Kind != yaml.SequenceNode {
			p.addf(v.Line, "alerts: must be a list of expected alerts, each with at:, rule: and state:")
		} else {
			for _, an := range v.Content {
				if w := p.alert(an, t.devices); w != nil {
					t.alerts = append(t.alerts, w)
				}
			}
		}
	}
	return t
}

func (p *testParser) device(k, v *yaml.Node, seen []*testDevice) *testDevice {
	id, ok := p.scalar(k, "devices")
	if !ok {
		return nil
	}
	if !proactive.ValidDeviceID(id) {
		p.addf(k.Line, "devices: %q is not a device id ([A-Za-z0-9_.-]{1,64})", id)
		return nil
	}
	for _, d := range seen {
		if string(d.id) == id {
			p.addf(k.Line, "devices: %q repeated", id)
			return nil
		}
	}
	f, ok := p.fields(v, "a device", testDeviceKeys)
	if !ok {
		return nil
	}
	d := &testDevice{id: proactive.DeviceID(id), ageDays: math.NaN()}
	if m := f["model"]; m != nil {
		d.model, _ = p.scalar(m, "model")
	}
	if a := f["age_days"]; a != nil {
		if s, ok := p.scalar(a, "age_days"); ok {
			age, err := strconv.ParseFloat(s, 64)
			if err != nil || !(age >= 0) || math.IsInf(age, 0) {
				p.addf(a.Line, "age_days: %q is not a number of days", s)
			} else {
				d.ageDays = age
			}
		}
	}
	d.events, d.maint = p.signals(f, d.id)
	switch s := f["series"]; {
	case s == nil && (f["events"] != nil || f["maintenance"] != nil):
	case s == nil:
		p.addf(v.Line, "device %s: missing required key series:", id)
	case s.Kind != yaml.MappingNode || len(s.Content) == 0:
		p.addf(s.Line, "series: must be a mapping of metric names to series, like compressor_current: \"4x59 4+0.1x10\"")
	default:
		metrics := map[string]bool{}
		for i := 0; i+1 < len(s.Content); i += 2 {
			mk, mv := s.Content[i], s.Content[i+1]
			name, ok := p.scalar(mk, "series")
			if !ok {
				continue
			}
			if !proactive.ValidMetricName(name) {
				p.addf(mk.Line, "series: %q is not a metric name ([a-z][a-z0-9_]{0,63})", name)
				continue
			}
			if metrics[name] {
				p.addf(mk.Line, "series: %q repeated", name)
				continue
			}
			metrics[name] = true
			src, ok := p.scalar(mv, name)
			if !ok {
				continue
			}
			values, err := ParseSeries(src)
			if err != nil {
				p.addf(mv.Line, "series %s: %v", name, err)
				continue
			}
			d.series = append(d.series, testSeries{metric: name, values: values})
		}
	}
	return d
}

// signals reads a device's events: (a list of {at, code}) and maintenance:
// (a list of {at, component, kind}, kind replaced unless given).
func (p *testParser) signals(f map[string]*yaml.Node, id proactive.DeviceID) ([]proactive.Event, []proactive.Maintenance) {
	var events []proactive.Event
	var maint []proactive.Maintenance
	list := func(key, what string, each func(f map[string]*yaml.Node, line int)) {
		v := f[key]
		if v == nil || yamlIsNull(v) {
			return
		}
		if v.Kind != yaml.SequenceNode {
			p.addf(v.Line, "%s: must be a list of %s", key, what)
			return
		}
		keys := testEventKeys
		if key == "maintenance" {
			keys = testMaintKeys
		}
		for _, n := range v.Content {
			if ef, ok := p.fields(n, "an entry of "+key, keys); ok {
				each(ef, n.Line)
			}
		}
	}
	at := func(f map[string]*yaml.Node, line int, key string) (time.Duration, bool) {
		a := f["at"]
		if a == nil {
			p.addf(line, "%s: missing required key at:", key)
			return 0, false
		}
		d, ok := p.duration(a, "at")
		if ok && d < 0 {
			p.addf(a.Line, "at: must not be negative")
			return 0, false
		}
		return d, ok
	}
	list("events", "events like {at: 1h, code: E101}", func(f map[string]*yaml.Node, line int) {
		d, ok := at(f, line, "events")
		c := f["code"]
		if c == nil {
			p.addf(line, "events: missing required key code:")
			return
		}
		code, cok := p.scalar(c, "code")
		if cok && !proactive.ValidEventCode(code) {
			p.addf(c.Line, "code: %q is not an event code ([A-Za-z0-9_.:-]{1,64})", code)
			cok = false
		}
		if ok && cok {
			events = append(events, proactive.Event{Device: id, Time: time.Time{}.Add(d), Code: code})
		}
	})
	list("maintenance", "records like {at: 2h, component: compressor, kind: replaced}", func(f map[string]*yaml.Node, line int) {
		d, ok := at(f, line, "maintenance")
		m := proactive.Maintenance{ID: int64(len(maint) + 1), Device: id, Time: time.Time{}.Add(d), Kind: proactive.MaintenanceReplaced}
		if c := f["component"]; c == nil {
			p.addf(line, "maintenance: missing required key component:")
			ok = false
		} else if comp, cok := p.scalar(c, "component"); !cok || !proactive.ValidMetricName(comp) {
			p.addf(c.Line, "component: %q is not a component name ([a-z][a-z0-9_]{0,63})", comp)
			ok = false
		} else {
			m.Component = comp
		}
		if k := f["kind"]; k != nil {
			kind, kok := p.scalar(k, "kind")
			if !kok || !proactive.MaintenanceKind(kind).Valid() {
				p.addf(k.Line, "kind: %q is not one of replaced, repaired, inspected", kind)
				ok = false
			}
			m.Kind = proactive.MaintenanceKind(kind)
		}
		if ok {
			maint = append(maint, m)
		}
	})
	slices.SortStableFunc(events, func(a, b proactive.Event) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(maint, func(a, b proactive.Maintenance) int { return a.Time.Compare(b.Time) })
	return events, maint
}

func (p *testParser) alert(n *yaml.Node, devices []*testDevice) *wantAlert {
	f, ok := p.fields(n, "an expected alert", testAlertKeys)
	if !ok {
		return nil
	}
	w := &wantAlert{line: n.Line, state: proactive.AlertFiring}
	for _, key := range []string{"at", "rule"} {
		if f[key] == nil {
			p.addf(n.Line, "missing required key %s:", key)
		}
	}
	if v := f["at"]; v != nil {
		w.at, w.atTol, _, _ = p.tolerance(v, "at")
	}
	if v := f["rule"]; v != nil {
		w.rule, _ = p.scalar(v, "rule")
	}
	switch v := f["device"]; {
	case v != nil:
		if s, ok := p.scalar(v, "device"); ok {
			w.device = proactive.DeviceID(s)
			if !slices.ContainsFunc(devices, func(d *testDevice) bool { return d.id == w.device }) {
				p.addf(v.Line, "device: %q is not one of the test's devices", s)
			}
		}
	case len(devices) == 1:
		w.device = devices[0].id
	default:
		p.addf(n.Line, "missing required key device: (it may be left out only when the test has one device)")
	}
	if v := f["state"]; v != nil {
		if s, ok := p.scalar(v, "state"); ok {
			switch st := proactive.AlertState(s); st {
			case proactive.AlertFiring, proactive.AlertResolved:
				w.state = st
			default:
				p.addf(v.Line, "state: %q is not firing or resolved (pending alerts are not reported)", s)
			}
		}
	}
	if v := f["severity"]; v != nil {
		if s, ok := p.scalar(v, "severity"); ok {
			if sev := proactive.Severity(s); sev.Valid() {
				w.severity = sev
			} else {
				p.addf(v.Line, "severity: %q is not one of info, warning, critical", s)
			}
		}
	}
	if v := f["time_to_failure"]; v != nil {
		if s, ok := p.scalar(v, "time_to_failure"); ok && s == "none" {
			w.ttfSet, w.ttfNone = true, true
		} else if ok {
			var tolSet bool
			w.ttf, w.ttfTol, tolSet, w.ttfSet = p.tolerance(v, "time_to_failure")
			w.ttfTolSet = tolSet
			if !tolSet {
				w.ttfTol = time.Second // as exact as the printed form
			}
		}
	}
	if v := f["summary_contains"]; v != nil {
		w.summary, _ = p.scalar(v, "summary_contains")
	}
	return w
}

// fields checks that n is a mapping whose keys are all in keys, each once,
// and returns its values by key. what names the mapping for messages.
func (p *testParser) fields(n *yaml.Node, what string, keys []string) (map[string]*yaml.Node, bool) {
	if n.Kind == yaml.AliasNode {
		p.addf(n.Line, "YAML aliases are not supported in rule test files")
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, "%s must be a mapping with the keys %s", what, strings.Join(keys, ", "))
		return nil, false
	}
	out := map[string]*yaml.Node{}
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, "keys must be plain names")
			continue
		}
		if first, dup := lines[k.Value]; dup {
			p.addf(k.Line, "key %q repeated (first at line %d)", k.Value, first)
			continue
		}
		lines[k.Value] = k.Line
		if !slices.Contains(keys, k.Value) {
			p.addf(k.Line, "unknown key %q%s", k.Value, closestKey(k.Value, keys))
			continue
		}
		if v.Kind == yaml.AliasNode {
			p.addf(v.Line, "%s: YAML aliases are not supported in rule test files", k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out, true
}

// closestKey returns ` (did you mean "x"?)` for the key of keys closest to
// key, or the list of keys when none is close.
func closestKey(key string, keys []string) string {
	best, bestDist := "", 3
	if len(key) <= 32 {
		for _, k := range keys {
			if d := proactive.EditDistance(key, k); d < bestDist {
				best, bestDist = k, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (the keys here are " + strings.Join(keys, ", ") + ")"
}

// scalar returns the text of a single value, "" for null.
func (p *testParser) scalar(v *yaml.Node, key string) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		p.addf(v.Line, "%s: must be a single value, not %s", key, yamlKindName(v))
		return "", false
	}
	if yamlIsNull(v) {
		return "", true
	}
	return v.Value, true
}

func (p *testParser) duration(v *yaml.Node, key string) (time.Duration, bool) {
	s, ok := p.scalar(v, key)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(s)
	if err != nil {
		p.addf(v.Line, "%s: %v", key, err)
		return 0, false
	}
	return d, true
}

func (p *testParser) interval(v *yaml.Node, key string, def time.Duration) time.Duration {
	d, ok := p.duration(v, key)
	if !ok {
		return def
	}
	if d <= 0 {
		p.addf(v.Line, "%s: must be longer than zero", key)
		return def
	}
	return d
}

// tolerance reads "D" or "D ± T" (also written "D +- T").
func (p *testParser) tolerance(v *yaml.Node, key string) (d, tol time.Duration, tolSet, ok bool) {
	s, ok := p.scalar(v, key)
	if !ok {
		return 0, 0, false, false
	}
	val, tolText, tolSet := strings.Cut(s, "±")
	if !tolSet {
		val, tolText, tolSet = strings.Cut(s, "+-")
	}
	d, err := parseDuration(strings.TrimSpace(val))
	if err == nil && tolSet {
		tol, err = parseDuration(strings.TrimSpace(tolText))
	}
	if err != nil {
		p.addf(v.Line, "%s: %v (write a duration such as 2d, or 2d ± 6h)", key, err)
		return 0, 0, false, false
	}
	return d, tol, tolSet, true
}

// run runs the test against set.
func (t *ruleTest) run(set *RuleSet) TestResult {
	byID := make(map[proactive.DeviceID]*testDevice, len(t.devices))
	steps := int64(t.runUntil / t.interval)
	for _, d := range t.devices {
		byID[d.id] = d
		for _, s := range d.series {
			steps = max(steps, int64(len(s.values))-1)
		}
		for _, e := range d.events {
			steps = max(steps, int64((e.Time.Sub(time.Time{})+t.interval-1)/t.interval))
		}
		for _, m := range d.maint {
			steps = max(steps, int64((m.Time.Sub(time.Time{})+t.interval-1)/t.interval))
		}
	}
	// Events and maintenance go in at their times, before the samples of
	// the step at or after them; next are the indexes of the first not yet
	// fed, per device.
	nextEvent := make([]int, len(t.devices))
	nextMaint := make([]int, len(t.devices))
	signalsUpTo := func(ev *Evaluator, at time.Duration, collect func(time.Duration, []proactive.Alert)) {
		for {
			// The earliest pending entry across devices, maintenance first
			// at equal times.
			bi, bm, best := -1, false, time.Duration(math.MaxInt64)
			for i, d := range t.devices {
				if j := nextMaint[i]; j < len(d.maint) {
					if o := d.maint[j].Time.Sub(time.Time{}); o <= at && (o < best || o == best && !bm) {
						bi, bm, best = i, true, o
					}
				}
				if j := nextEvent[i]; j < len(d.events) {
					if o := d.events[j].Time.Sub(time.Time{}); o <= at && o < best {
						bi, bm, best = i, false, o
					}
				}
			}
			if bi < 0 {
				return
			}
			d := t.devices[bi]
			if bm {
				m := d.maint[nextMaint[bi]]
				m.Time = t.start.Add(best)
				ev.ObserveMaintenance(m)
				nextMaint[bi]++
			} else {
				e := d.events[nextEvent[bi]]
				e.Time = t.start.Add(best)
				collect(best, ev.ObserveEvent(e))
				nextEvent[bi]++
			}
		}
	}
	lookup := func(id proactive.DeviceID) (DeviceInfo, bool) {
		d, ok := byID[id]
		if !ok || d.model == "" && math.IsNaN(d.ageDays) {
			return DeviceInfo{}, false
		}
		return DeviceInfo{Model: d.model, AgeDays: d.ageDays}, true
	}
	ev := NewEvaluator(set, lookup, 0)
	var got []TestAlert
	collect := func(at time.Duration, alerts []proactive.Alert) {
		for _, a := range alerts {
			got = append(got, TestAlert{At: at, Alert: a})
		}
	}
	tick := 0
	for i := range steps + 1 {
		at := time.Duration(i) * t.interval
		for ; tick < len(t.ticks) && t.ticks[tick] < at; tick++ {
			signalsUpTo(ev, t.ticks[tick], collect)
			collect(t.ticks[tick], ev.Tick(t.start.Add(t.ticks[tick])))
		}
		signalsUpTo(ev, at, collect)
		for _, d := range t.devices {
			var metrics map[string]float64
			for _, s := range d.series {
				if i < int64(len(s.values)) && !math.IsNaN(s.values[i]) {
					if metrics == nil {
						metrics = map[string]float64{}
					}
					metrics[s.metric] = s.values[i]
				}
			}
			if metrics != nil {
				collect(at, ev.Observe(proactive.Sample{Device: d.id, Model: d.model, Time: t.start.Add(at), Metrics: metrics}))
			}
		}
		// The engine's clock ticks too, for rules that read since_seen().
		collect(at, ev.Tick(t.start.Add(at)))
		for ; tick < len(t.ticks) && t.ticks[tick] == at; tick++ {
		}
	}
	for ; tick < len(t.ticks); tick++ {
		collect(t.ticks[tick], ev.Tick(t.start.Add(t.ticks[tick])))
	}
	diff := t.diff(got)
	// A rule whose evaluation fails never changes its alert: say so rather
	// than leave the test to report only missing alerts.
	for _, r := range set.Rules() {
		if st := ev.stats[r.Name]; st != nil && st.errors > 0 {
			diff = append(diff, fmt.Sprintf("evaluation errors: rule %s: %d errors in %d evaluations, the last at %s: %v",
				r.Name, st.errors, st.evaluations, proactive.FormatDuration(st.lastErrAt.Sub(t.start)), oneLine(st.lastErr)))
		}
	}
	return TestResult{Name: t.name, Line: t.line, Alerts: got, Diff: diff}
}

// oneLine keeps the first line of an error: expr's errors go on to draw
// the expression with a caret under the fault.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// diff compares the alerts a test produced with the expected ones.
func (t *ruleTest) diff(got []TestAlert) []string {
	type line struct {
		at  time.Duration
		msg string
	}
	var lines []line
	add := func(at time.Duration, format string, args ...any) {
		lines = append(lines, line{at, fmt.Sprintf(format, args...)})
	}
	abs := func(d time.Duration) time.Duration { return max(d, -d) }
	same := func(w *wantAlert, g *TestAlert) bool {
		return g.Rule == w.rule && g.Device == w.device && g.State == w.state
	}
	want := slices.Clone(t.alerts)
	slices.SortStableFunc(want, func(a, b *wantAlert) int { return cmp.Compare(a.at, b.at) })
	matched := make([]bool, len(got))
	for _, w := range want {
		best := -1
		for j := range got {
			g := &got[j]
			if matched[j] || !same(w, g) || abs(g.At-w.at) > w.atTol {
				continue
			}
			if best < 0 || abs(g.At-w.at) < abs(got[best].At-w.at) {
				best = j
			}
		}
		if best < 0 {
			hint := ""
			nearest := -1
			for j := range got {
				if !matched[j] && same(w, &got[j]) && (nearest < 0 || abs(got[j].At-w.at) < abs(got[nearest].At-w.at)) {
					nearest = j
				}
			}
			if nearest >= 0 {
				hint = fmt.Sprintf(" (the nearest is at %s)", proactive.FormatDuration(got[nearest].At))
			}
			add(w.at, "missing: %s%s", w, hint)
			continue
		}
		matched[best] = true
		g := &got[best]
		if w.severity != "" && g.Severity != w.severity {
			add(g.At, "wrong severity %s: got %s, want %s", g, g.Severity, w.severity)
		}
		if w.ttfSet {
			ok := g.TimeToFailure == 0
			if !w.ttfNone {
				ok = g.TimeToFailure > 0 && abs(g.TimeToFailure-w.ttf) <= w.ttfTol
			}
			if !ok {
				add(g.At, "wrong time_to_failure %s: got %s, want %s", g, ttfString(g.TimeToFailure), w.ttfString())
			}
		}
		if w.summary != "" && !strings.Contains(g.Summary, w.summary) {
			add(g.At, "wrong summary %s: got %q, want it to contain %q", g, g.Summary, w.summary)
		}
	}
	if t.noOther {
		for j := range got {
			if matched[j] {
				continue
			}
			g := &got[j]
			extra := ""
			if g.State == proactive.AlertFiring && g.TimeToFailure > 0 {
				extra = ", time_to_failure " + ttfString(g.TimeToFailure)
			}
			add(g.At, "unexpected: %s%s", g, extra)
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.msg
	}
	return out
}

// ttfString prints a time to failure to the second, or "none".
func ttfString(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return proactive.FormatDuration(max(d.Round(time.Second), time.Second))
}
