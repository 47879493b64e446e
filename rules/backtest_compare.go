package rules

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Comparison is a second rule set's backtest over the same history, to be
// shown beside the first (rules backtest --compare DIR).
type Comparison struct {
	// Label names each set: where its rules came from.
	Label, OtherLabel string
	Other             *BacktestReport
}

// writeComparison prints one line per rule name of either set, each set's
// figures side by side; a rule missing from one set shows "-" there.
func (rep *BacktestReport) writeComparison(w io.Writer) error {
	c := rep.Compare
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nComparison: A = %s, B = %s\n", c.Label, c.OtherLabel)
	fmt.Fprintf(tw, "RULE\tFIRES A\tFIRES B\tTICKETS A\tTICKETS B\tTEXTS A\tTEXTS B\tRECALL A\tRECALL B\tPRECISION A\tPRECISION B\tFALSE A\tFALSE B\tLEAD A\tLEAD B\n")
	a, b := byRule(rep.Rules), byRule(c.Other.Rules)
	var names []string
	for _, r := range rep.Rules {
		names = append(names, r.Rule)
	}
	for _, r := range c.Other.Rules {
		if _, ok := a[r.Rule]; !ok {
			names = append(names, r.Rule)
		}
	}
	for _, n := range names {
		ra, rb := a[n], b[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, fires(ra), fires(rb),
			countCell(rep, ra, tickets), countCell(c.Other, rb, tickets), countCell(rep, ra, texts), countCell(c.Other, rb, texts),
			scoreCell(ra, func(s *Score) string { return FormatRatio(s.Recall) }), scoreCell(rb, func(s *Score) string { return FormatRatio(s.Recall) }),
			scoreCell(ra, func(s *Score) string { return FormatRatio(s.Precision) }), scoreCell(rb, func(s *Score) string { return FormatRatio(s.Precision) }),
			scoreCell(ra, func(s *Score) string { return fmt.Sprint(s.FalseAlerts) }), scoreCell(rb, func(s *Score) string { return fmt.Sprint(s.FalseAlerts) }),
			scoreCell(ra, func(s *Score) string { return FormatLead(s.LeadMedian) }), scoreCell(rb, func(s *Score) string { return FormatLead(s.LeadMedian) }))
	}
	return tw.Flush()
}

func byRule(rs []RuleReport) map[string]*RuleReport {
	m := make(map[string]*RuleReport, len(rs))
	for i := range rs {
		m[rs[i].Rule] = &rs[i]
	}
	return m
}

func fires(r *RuleReport) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(r.Fires)
}

func tickets(r *RuleReport) int { return r.Tickets }
func texts(r *RuleReport) int   { return r.Texts }

// countCell prints a rule's tickets or texts: "-" for a rule missing from
// its set, or a set not replayed through the notifier.
func countCell(rep *BacktestReport, r *RuleReport, n func(*RuleReport) int) string {
	if r == nil || rep.Outreach == nil {
		return "-"
	}
	return fmt.Sprint(n(r))
}

func scoreCell(r *RuleReport, f func(*Score) string) string {
	if r == nil || r.Score == nil {
		return "-"
	}
	return f(r.Score)
}
