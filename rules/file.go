package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive"
)

// Limits on a rule file, which may come from outside: larger files and
// expressions are refused rather than parsed.
const (
	// MaxRuleFileSize is the largest rule file accepted, in bytes (1 MiB).
	MaxRuleFileSize = 1 << 20
	// MaxRuleExprLen is the longest when or predict expression accepted, in bytes.
	MaxRuleExprLen = 4096
	// MaxRulesPerFile is the most rules one file may hold.
	MaxRulesPerFile = 1000
)

// Spec is one rule as written in a file, before compilation.
type Spec struct {
	// Name identifies the rule; it is unique across all loaded files and
	// matches [a-z][a-z0-9_]{0,63}.
	Name string
	// Component is the part of the device the rule watches, with the same
	// pattern as Name.
	Component string
	// Models are path.Match globs on the device model; empty means every model.
	Models []string
	// When is the condition, an expression not yet compiled. Predict is the
	// optional time-to-failure expression, empty when absent.
	When, Predict string
	// For is how long When must hold before the alert fires; ClearFor how
	// long it must be false before the alert resolves; Cooldown how long
	// after a ticket no second one opens for the same device and component.
	For, ClearFor, Cooldown time.Duration
	// ClearForSet reports whether clear_for was given; if not, ClearFor
	// equals For.
	ClearForSet bool
	// Severity is info, warning or critical.
	Severity proactive.Severity
	// Contact is who hears of the rule's alerts: auto (the default), review
	// or none; see proactive.Contact.
	Contact proactive.Contact
	// Summary is a text/template source, checked to parse; empty when absent.
	Summary string
	// Labels are free-form; nil when absent.
	Labels map[string]string
	// ResetOnMaintenance makes every window function of the rule read only
	// the samples after the last maintenance of its component (a new part
	// starts a new baseline); see Window for the bucket at the boundary.
	ResetOnMaintenance bool

	// File is the name the rule was read from, for messages.
	File string
	// Line is the line of the rule's list item (its "- name:").
	Line int
	// WhenLine, PredictLine and SummaryLine are the lines where those
	// values' text starts (the line after "|" or ">" for a block scalar),
	// 0 when absent.
	WhenLine, PredictLine, SummaryLine int
}

// Problem is one thing wrong with a rule file, with its place.
type Problem struct {
	// File is the file's name; Line its 1-based line, 0 when the problem is
	// about the whole file.
	File string
	Line int
	// Rule names the rule concerned: its name, or "#N" (its position in the
	// file) when it has no valid name; empty for problems outside any rule.
	Rule string
	// Msg says what is wrong, starting with the key concerned if any.
	Msg string
}

// Error formats the problem as "FILE:LINE: rule NAME: MSG", leaving out the
// parts that are empty.
func (p Problem) Error() string {
	var b strings.Builder
	sep := func() {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
	}
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d", p.File, p.Line)
	case p.File != "":
		b.WriteString(p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d", p.Line)
	}
	if p.Rule != "" {
		sep()
		b.WriteString("rule ")
		b.WriteString(p.Rule)
	}
	sep()
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is a list of problems. It implements error by joining them one
// per line.
type Problems []Problem

// Error returns the problems one per line.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Err returns ps as an error, or nil when there are no problems. Use it
// rather than converting an empty Problems to error, which would not be nil.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// ruleKeys are the keys a rule may have, in the order the docs list them.
var ruleKeys = []string{
	"name", "component", "models", "when", "for", "clear_for",
	"severity", "predict", "summary", "cooldown", "contact", "labels", "reset_on_maintenance",
}

// fileParser collects the problems of one file.
type fileParser struct {
	file  string
	probs Problems
	// broken holds the rules refused for a problem of their own keys, so
	// that their expressions are still checked: one run of rules check
	// reports a missing severity: and a bad when: together.
	broken []Spec
}

func (p *fileParser) addf(line int, rule, format string, args ...any) {
	p.probs = append(p.probs, Problem{File: p.file, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// ParseFile parses one rule file's bytes. It returns every spec it could
// read and all problems found (it does not stop at the first). name is used
// in messages and as each Spec's File.
//
// A rule with any problem is left out of the returned specs, so every
// returned spec is complete and valid except for its expressions, which
// are compiled later; problems name their rule. A file with no rules, even
// an empty one, yields no specs and no problems. Names are checked to be
// unique within the file; LoadFiles checks them across files.
func ParseFile(name string, data []byte) ([]Spec, Problems) {
	p := &fileParser{file: name}
	specs := p.parse(data)
	for _, b := range p.broken {
		_, more := compileRules(newLayout(), []Spec{b})
		p.probs = append(p.probs, more...)
	}
	slices.SortStableFunc(p.probs, func(a, b Problem) int { return a.Line - b.Line })
	return specs, p.probs
}

func (p *fileParser) parse(data []byte) []Spec {
	if len(data) > MaxRuleFileSize {
		p.addf(0, "", "file is larger than %d bytes (1 MiB); split it", MaxRuleFileSize)
		return nil
	}
	if !utf8.Valid(data) {
		bad := 0
		for bad < len(data) {
			r, size := utf8.DecodeRune(data[bad:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad += size
		}
		p.addf(byteOffsetLine(data, bad), "", "file is not UTF-8 text")
		return nil
	}
	root := p.decode(data)
	if root == nil || yamlIsNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.addf(root.Line, "", "a rule file must be a mapping with the key rules:")
		return nil
	}
	var items *yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, "", "keys must be plain names")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.addf(k.Line, "", "key %q repeated (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if k.Value != "rules" {
			p.addf(k.Line, "", "unknown key %q (a rule file has only the key rules:)", k.Value)
			continue
		}
		switch {
		case v.Kind == yaml.AliasNode:
			p.addf(v.Line, "", "rules: YAML aliases are not supported in rule files")
		case yamlIsNull(v):
		case v.Kind != yaml.SequenceNode:
			p.addf(v.Line, "", "rules: must be a list of rules")
		default:
			items = v
		}
	}
	if items == nil {
		return nil
	}
	var specs []Spec
	names := map[string]int{} // rule name → line
	for i, item := range items.Content {
		if i >= MaxRulesPerFile {
			p.addf(item.Line, "", "more than %d rules in one file; split them across files", MaxRulesPerFile)
			break
		}
		spec, ok := p.rule(item, i)
		if !ok {
			if spec.When != "" {
				if !validRuleName(spec.Name) {
					spec.Name = fmt.Sprintf("#%d", i+1)
				}
				p.broken = append(p.broken, spec)
			}
			continue
		}
		if first, dup := names[spec.Name]; dup {
			p.addf(spec.Line, spec.Name, "name already used at line %d", first)
			continue
		}
		names[spec.Name] = spec.Line
		specs = append(specs, spec)
	}
	return specs
}

// decode parses data as a single YAML document and returns its root node,
// or nil when the file is empty or cannot be parsed.
func (p *fileParser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		// The input may come from outside; a bug in the YAML library must
		// not take the service down with it.
		if r := recover(); r != nil {
			p.addf(0, "", "cannot parse YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.yamlError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return nil
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		p.addf(line, "", "a rule file holds one YAML document; found a second one")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError records a YAML syntax error with the line it concerns.
//
// yaml.v3 counts lines from 0 in its marks: scanner errors add 1, parser
// errors ("did not find expected ...") do not, and a position on the
// first line is not reported at all.
func (p *fileParser) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if isYAMLParserError(m[2]) {
			line++
		}
		p.addf(line, "", "YAML: %s", m[2])
		return
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 1
	if strings.Contains(msg, "anchor") || strings.Contains(msg, "alias") ||
		strings.Contains(msg, "input error") || strings.Contains(msg, "corrupted") {
		line = 0 // errors that carry no position at all
	}
	p.addf(line, "", "YAML: %s", msg)
}

func isYAMLParserError(msg string) bool {
	switch msg {
	case "found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle", "found duplicate %TAG directive":
		return true
	}
	return strings.HasPrefix(msg, "did not find expected")
}

// byteOffsetLine returns the 1-based line of byte offset off in data.
func byteOffsetLine(data []byte, off int) int {
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

func yamlIsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yamlTextLine returns the line where a scalar's text starts: block scalars
// ("|" and ">") start on the line after their indicator.
func yamlTextLine(n *yaml.Node) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + 1
	}
	return n.Line
}

// rule reads the idx-th (0-based) rule of the file. ok is false when the rule
// has any problem.
func (p *fileParser) rule(item *yaml.Node, idx int) (spec Spec, ok bool) {
	before := len(p.probs)
	label := fmt.Sprintf("#%d", idx+1)
	if item.Kind != yaml.MappingNode {
		p.addf(item.Line, label, "a rule must be a mapping of keys such as name:, when: and severity:")
		return Spec{}, false
	}
	// Name the rule in messages by its name when it has a valid one.
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "name" {
			if v.Kind == yaml.ScalarNode && validRuleName(v.Value) {
				label = v.Value
			}
			break
		}
	}
	spec = Spec{File: p.file, Line: item.Line}
	seen := map[string]int{}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, label, "keys must be plain names")
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			p.addf(k.Line, label, "key %q repeated (first at line %d)", key, first)
			continue
		}
		seen[key] = k.Line
		if !slices.Contains(ruleKeys, key) {
			p.addf(k.Line, label, "unknown key %q%s", key, suggestKey(key))
			continue
		}
		if v.Kind == yaml.AliasNode {
			p.addf(v.Line, label, "%s: YAML aliases are not supported in rule files", key)
			continue
		}
		switch key {
		case "name", "component":
			s, ok := p.text(v, label, key, true)
			if !ok {
				continue
			}
			if !validRuleName(s) {
				p.addf(v.Line, label, "%s: %q must match [a-z][a-z0-9_]{0,63}", key, s)
				continue
			}
			if key == "name" {
				spec.Name = s
			} else {
				spec.Component = s
			}
		case "when", "predict":
			s, ok := p.text(v, label, key, key == "when")
			if !ok || s == "" {
				continue
			}
			if len(s) > MaxRuleExprLen {
				p.addf(v.Line, label, "%s: expression is %d bytes, over the limit of %d", key, len(s), MaxRuleExprLen)
				continue
			}
			if key == "when" {
				spec.When, spec.WhenLine = s, yamlTextLine(v)
			} else {
				spec.Predict, spec.PredictLine = s, yamlTextLine(v)
			}
		case "for", "clear_for", "cooldown":
			s, ok := p.text(v, label, key, false)
			if !ok || yamlIsNull(v) {
				continue
			}
			d, err := parseDuration(s)
			if err != nil {
				p.addf(v.Line, label, "%s: %v", key, err)
				continue
			}
			switch key {
			case "for":
				spec.For = d
			case "clear_for":
				spec.ClearFor, spec.ClearForSet = d, true
			default:
				spec.Cooldown = d
			}
		case "severity":
			s, ok := p.text(v, label, key, true)
			if !ok {
				continue
			}
			if sev := proactive.Severity(s); sev.Valid() {
				spec.Severity = sev
			} else {
				p.addf(v.Line, label, "severity: %q is not one of info, warning, critical", s)
			}
		case "contact":
			s, ok := p.text(v, label, key, true)
			if !ok {
				continue
			}
			if c := proactive.Contact(s); c.Valid() {
				spec.Contact = c
			} else {
				p.addf(v.Line, label, "contact: %q is not one of auto, review, none", s)
			}
		case "summary":
			s, ok := p.text(v, label, key, false)
			if !ok || s == "" {
				continue
			}
			if line, msg := checkSummary(s, yamlTextLine(v), v.Style&yaml.LiteralStyle != 0); msg != "" {
				p.addf(line, label, "summary: %s", msg)
				continue
			}
			spec.Summary, spec.SummaryLine = s, yamlTextLine(v)
		case "reset_on_maintenance":
			s, ok := p.text(v, label, key, false)
			if !ok || yamlIsNull(v) {
				continue
			}
			switch s {
			case "true":
				spec.ResetOnMaintenance = true
			case "false":
			default:
				p.addf(v.Line, label, "reset_on_maintenance: %q is not true or false", s)
			}
		case "models":
			spec.Models = p.models(v, label)
		case "labels":
			spec.Labels = p.labels(v, label)
		}
	}
	for _, key := range []string{"name", "component", "when", "severity"} {
		if _, ok := seen[key]; !ok {
			p.addf(item.Line, label, "missing required key %s:", key)
		}
	}
	if !spec.ClearForSet {
		spec.ClearFor = spec.For
	}
	spec.Contact = spec.Contact.OrAuto()
	return spec, len(p.probs) == before
}

// text returns the text of a scalar value, "" for null. It records a problem
// when v is not a scalar, or when required and the value is empty.
func (p *fileParser) text(v *yaml.Node, label, key string, required bool) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		p.addf(v.Line, label, "%s: must be a single value, not %s", key, yamlKindName(v))
		return "", false
	}
	s := v.Value
	if yamlIsNull(v) {
		s = ""
	}
	if required && s == "" {
		p.addf(v.Line, label, "%s: must not be empty", key)
		return "", false
	}
	return s, true
}

// yamlKindName names what a non-scalar node is, for "must be a single
// value, not ..." messages.
func yamlKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "a YAML alias"
	}
	return "a document"
}

func (p *fileParser) models(v *yaml.Node, label string) []string {
	if yamlIsNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.addf(v.Line, label, `models: must be a list of globs, like ["fridge-*"]`)
		return nil
	}
	if len(v.Content) == 0 {
		p.addf(v.Line, label, "models: empty list; leave models out to match every model")
		return nil
	}
	var models []string
	for _, g := range v.Content {
		if g.Kind != yaml.ScalarNode || yamlIsNull(g) || g.Value == "" {
			p.addf(g.Line, label, "models: each entry must be a non-empty glob")
			continue
		}
		if _, err := path.Match(g.Value, ""); err != nil {
			p.addf(g.Line, label, "models: bad glob %q: %v", g.Value, err)
			continue
		}
		models = append(models, g.Value)
	}
	return models
}

func (p *fileParser) labels(v *yaml.Node, label string) map[string]string {
	if yamlIsNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.addf(v.Line, label, "labels: must be a mapping of names to values, like {team: cooling}")
		return nil
	}
	labels := make(map[string]string, len(v.Content)/2)
	lines := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if k.Kind != yaml.ScalarNode || yamlIsNull(k) || k.Value == "" {
			p.addf(k.Line, label, "labels: each name must be a non-empty string")
			continue
		}
		if first, dup := lines[k.Value]; dup {
			p.addf(k.Line, label, "labels: %q repeated (first at line %d)", k.Value, first)
			continue
		}
		lines[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode {
			p.addf(val.Line, label, "labels: the value of %q must be a single value, not %s", k.Value, yamlKindName(val))
			continue
		}
		s := val.Value
		if yamlIsNull(val) {
			s = ""
		}
		labels[k.Value] = s
	}
	return labels
}

var templateErrRE = regexp.MustCompile(`^template: summary:(\d+):(?:\d+:)? ?(.*)$`)

// checkSummary parses a summary template as the engine will, returning the
// file line and message of its error, or "" when it parses. line is where
// the text starts; literal says whether the text's lines map one to one to
// the file's (a "|" block).
func checkSummary(src string, line int, literal bool) (int, string) {
	_, err := template.New("summary").Option("missingkey=zero").Parse(src)
	if err == nil {
		return 0, ""
	}
	m := templateErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return line, strings.TrimPrefix(err.Error(), "template: ")
	}
	n, _ := strconv.Atoi(m[1])
	switch {
	case n <= 1:
		return line, m[2]
	case literal:
		return line + n - 1, m[2]
	default:
		return line, fmt.Sprintf("%s (line %d of the template)", m[2], n)
	}
}

func validRuleName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// suggestKey returns ` (did you mean "x"?)` for the known key closest to an
// unknown one, or a list of the known keys when none is close.
func suggestKey(key string) string {
	best, bestDist := "", 3
	if len(key) <= 32 {
		for _, k := range ruleKeys {
			if d := proactive.EditDistance(key, k); d < bestDist {
				best, bestDist = k, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (a rule has " + strings.Join(ruleKeys, ", ") + ")"
}

// LoadFiles expands the patterns with path/filepath.Glob, reads and parses
// every file, checks that rule names are unique across files, and returns
// the specs in file then document order, with all problems found.
//
// A pattern matching nothing is not an error, but a literal path (one
// without glob characters) that cannot be read is. A file matched by
// several patterns is read once; directories and rule test files
// (IsTestFile) matched by a glob are skipped. When a name is used twice, the first rule keeps it and the
// later one is left out with a problem naming both places.
func LoadFiles(patterns []string) ([]Spec, Problems) {
	var probs Problems
	var files []string
	seenFile := map[string]bool{}
	addFile := func(f string) {
		if c := filepath.Clean(f); !seenFile[c] {
			seenFile[c] = true
			files = append(files, f)
		}
	}
	for _, pat := range patterns {
		if !hasGlobMeta(pat) {
			addFile(pat)
			continue
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			probs = append(probs, Problem{File: pat, Msg: fmt.Sprintf("bad glob pattern: %v", err)})
			continue
		}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				continue
			}
			if IsTestFile(m) {
				continue // a rule test file beside its rules
			}
			addFile(m)
		}
	}

	var specs []Spec
	type place struct {
		file string
		line int
	}
	names := map[string]place{}
	for _, f := range files {
		data, err := readRuleFile(f)
		if err != nil {
			probs = append(probs, Problem{File: f, Msg: err.Error()})
			continue
		}
		fileSpecs, fileProbs := ParseFile(f, data)
		probs = append(probs, fileProbs...)
		for _, s := range fileSpecs {
			if first, dup := names[s.Name]; dup {
				probs = append(probs, Problem{File: s.File, Line: s.Line, Rule: s.Name,
					Msg: fmt.Sprintf("name already used at %s:%d", first.file, first.line)})
				continue
			}
			names[s.Name] = place{s.File, s.Line}
			specs = append(specs, s)
		}
	}
	return specs, probs
}

// readRuleFile reads at most one byte more than MaxRuleFileSize, so that
// ParseFile can refuse a larger file without it being read whole.
func readRuleFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		// The problem names the file already; keep only the cause.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, errors.New("is a directory, not a rule file (use a glob such as dir/*.yaml)")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxRuleFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read rule file: %w", err)
	}
	return data, nil
}

// hasGlobMeta reports whether path/filepath.Glob would treat pattern as a
// pattern rather than a literal path.
func hasGlobMeta(pattern string) bool {
	magic := `*?[\`
	if runtime.GOOS == "windows" {
		magic = `*?[`
	}
	return strings.ContainsAny(pattern, magic)
}
