package web

import (
	"net/http"
	"strconv"

	"github.com/proactivehq/proactive/devices"
)

// measuresView is one group's outcome measures, as the page writes them.
type measuresView struct {
	Key                          string
	CSAT, NPS, CES               string
	CSATAnswers, NPSAnswers      int
	CESAnswers                   int
	Promoters, Passives, Detract int
	FirstVisit                   string
	Fixes, FirstVisitFixes       int
	AlertToFix                   string
}

// measuresData is the measures page: all tickets, then the groups.
type measuresData struct {
	pageData
	Outreach bool
	All      measuresView
	By       devices.GroupBy
	ByName   string // "Month", "Model", "Rule"
	Groups   []measuresView
	Choices  []groupChoice
}

// groupChoice is a link to one grouping.
type groupChoice struct {
	By, Name string
	Current  bool
}

func viewOutcomes(o devices.Outcomes) measuresView {
	v := measuresView{Key: o.Key, CSATAnswers: o.CSATAnswers, NPSAnswers: o.NPSAnswers, CESAnswers: o.CESAnswers,
		Promoters: o.Promoters, Passives: o.Passives, Detract: o.Detractors, Fixes: o.Fixes, FirstVisitFixes: o.FirstVisitFixes,
		CSAT: "—", NPS: "—", CES: "—", FirstVisit: "—", AlertToFix: "—"}
	if o.CSATAnswers > 0 {
		v.CSAT = strconv.FormatFloat(o.CSAT, 'f', 2, 64)
	}
	if o.NPSAnswers > 0 {
		v.NPS = strconv.FormatFloat(o.NPS, 'f', 0, 64)
		if o.NPS > 0 {
			v.NPS = "+" + v.NPS
		}
	}
	if o.CESAnswers > 0 {
		v.CES = strconv.FormatFloat(o.CES, 'f', 2, 64)
	}
	if o.Fixes > 0 {
		v.FirstVisit = strconv.FormatFloat(100*o.FirstVisitFixRate, 'f', 0, 64) + "%"
		v.AlertToFix = humanDuration(o.AlertToFix)
	}
	return v
}

// measuresPage shows the loyalty, effort and fix measures of all tickets
// and per month (the default), model or rule.
func (s *server) measuresPage(w http.ResponseWriter, r *http.Request) {
	by := devices.GroupBy(r.URL.Query().Get("by"))
	if by == devices.ByNone {
		by = devices.ByMonth
	}
	if !by.Valid() {
		s.renderError(w, r, http.StatusBadRequest, "Group the measures by month, model or rule.")
		return
	}
	d := measuresData{pageData: s.base(r, "Measures", "measures"), By: by, Outreach: s.Outreach != nil}
	for _, c := range []groupChoice{{By: "month", Name: "Month"}, {By: "model", Name: "Model"}, {By: "rule", Name: "Rule"}} {
		c.Current = devices.GroupBy(c.By) == by
		if c.Current {
			d.ByName = c.Name
		}
		d.Choices = append(d.Choices, c)
	}
	if s.Outreach != nil {
		ctx := r.Context()
		all, err := s.Outreach.Outcomes(ctx, devices.ByNone)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.All = viewOutcomes(devices.Outcomes{})
		if len(all) == 1 {
			d.All = viewOutcomes(all[0])
		}
		groups, err := s.Outreach.Outcomes(ctx, by)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, g := range groups {
			v := viewOutcomes(g)
			if v.Key == "" {
				v.Key = "(none)"
			}
			d.Groups = append(d.Groups, v)
		}
	}
	s.render(w, r, http.StatusOK, "measures", d)
}
