package rules

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"text/template"
	"time"

	"github.com/proactivehq/proactive"
)

// Rule is a compiled rule: its spec and the programs that evaluate it.
type Rule struct {
	Spec
	when    *compiled
	predict *compiled
	summary *template.Template
}

// SinceSeen reports whether the rule reads since_seen(), so that it must be
// evaluated on a timer as well as on new data.
func (r *Rule) SinceSeen() bool {
	return r.when.sinceSeen || (r.predict != nil && r.predict.sinceSeen)
}

// Matches reports whether the rule applies to a device of the given model.
func (r *Rule) Matches(model string) bool {
	if len(r.Models) == 0 {
		return true
	}
	for _, g := range r.Models {
		if ok, _ := path.Match(g, model); ok {
			return true
		}
	}
	return false
}

// RuleSet is one generation of loaded rules; reloads replace it whole.
type RuleSet struct {
	layout *layout
	rules  []*Rule
}

// compileRules compiles specs against a copy of base, so that a failure
// leaves the running layout untouched. It reports every problem.
func compileRules(base *layout, specs []Spec) (*RuleSet, Problems) {
	set := &RuleSet{layout: base.clone()}
	var probs Problems
	seen := map[string]Spec{}
	for _, s := range specs {
		if prev, dup := seen[s.Name]; dup {
			probs = append(probs, Problem{File: s.File, Line: s.Line, Rule: s.Name,
				Msg: fmt.Sprintf("name already used at %s:%d", prev.File, prev.Line)})
			continue
		}
		seen[s.Name] = s
		r := &Rule{Spec: s}
		if s.ClearFor == 0 && !s.ClearForSet {
			r.ClearFor = s.For
		}
		var err error
		env := &evalEnv{} // for checking only: each evaluator binds its own
		if r.when, err = set.layout.compileExpr(s.When, "bool", env); err != nil {
			probs = append(probs, exprProblem(s, "when", s.WhenLine, err))
		}
		if s.Predict != "" {
			if r.predict, err = set.layout.compileExpr(s.Predict, "duration", env); err != nil {
				probs = append(probs, exprProblem(s, "predict", s.PredictLine, err))
			}
		}
		if s.Summary != "" {
			if r.summary, err = template.New(s.Name).Option("missingkey=zero").Parse(s.Summary); err != nil {
				probs = append(probs, Problem{File: s.File, Line: max(s.SummaryLine, s.Line), Rule: s.Name, Msg: "summary: " + err.Error()})
			}
		}
		set.rules = append(set.rules, r)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return set, nil
}

func exprProblem(s Spec, key string, line int, err error) Problem {
	p := Problem{File: s.File, Line: max(line, s.Line), Rule: s.Name}
	if ee, ok := err.(*exprError); ok {
		if line > 0 {
			p.Line = line + ee.line - 1
		}
		p.Msg = fmt.Sprintf("%s: %s (column %d of %q)", key, ee.msg, ee.column, describe(exprSource(s, key)))
		return p
	}
	p.Msg = fmt.Sprintf("%s: %v", key, err)
	return p
}

func exprSource(s Spec, key string) string {
	if key == "predict" {
		return s.Predict
	}
	return s.When
}

// summaryData is what a summary template sees.
type summaryData struct {
	Rule       string
	Component  string
	Severity   proactive.Severity
	Device     summaryDevice
	Metrics    map[string]float64
	Prediction time.Duration
	// TimeToFailure is Prediction in words, empty without one.
	TimeToFailure string
}

type summaryDevice struct {
	ID      string
	Model   string
	AgeDays float64
}

func (r *Rule) renderSummary(d summaryData) string {
	if r.summary == nil {
		if d.TimeToFailure != "" {
			return fmt.Sprintf("%s: %s on %s, failure expected in %s", r.Name, r.Component, d.Device.ID, d.TimeToFailure)
		}
		return fmt.Sprintf("%s: %s on %s", r.Name, r.Component, d.Device.ID)
	}
	var b bytes.Buffer
	if err := r.summary.Execute(&b, d); err != nil {
		return fmt.Sprintf("%s: %s on %s (summary template failed: %v)", r.Name, r.Component, d.Device.ID, err)
	}
	return b.String()
}

// humanDuration writes a time to failure for people: "3 days", "5 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(math.Round(d.Hours()/24)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(math.Round(d.Hours())))
	default:
		return fmt.Sprintf("%d minutes", int(math.Max(1, math.Round(d.Minutes()))))
	}
}

// Compile compiles rule specs into a rule set for NewEvaluator, reporting
// every problem with its file and line.
func Compile(specs []Spec) (*RuleSet, Problems) {
	return compileRules(newLayout(), specs)
}

// Rules returns the compiled rules in load order.
func (s *RuleSet) Rules() []*Rule { return s.rules }
