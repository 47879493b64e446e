package proactive_test

import (
	"testing"

	"github.com/proactivehq/proactive"
)

// NPS at its edges: promoters minus detractors, in percent of the answers.
func TestNPS(t *testing.T) {
	// score counts the answers as the store does: by category.
	score := func(answers ...int) float64 {
		var p, q, d int
		for _, a := range answers {
			switch proactive.CategoryOf(a) {
			case proactive.Promoter:
				p++
			case proactive.Passive:
				q++
			case proactive.Detractor:
				d++
			default:
				t.Fatalf("answer %d has no category", a)
			}
		}
		return proactive.NPS(p, q, d)
	}
	for _, tc := range []struct {
		name    string
		answers []int
		want    float64
	}{
		{"all promoters", []int{9, 10, 10, 9}, 100},
		{"all detractors", []int{0, 3, 6, 6}, -100},
		{"passives only", []int{7, 8, 7}, 0},
		{"no answers", nil, 0},
		{"6 is a detractor", []int{6}, -100},
		{"7 is a passive", []int{7}, 0},
		{"8 is a passive", []int{8}, 0},
		{"9 is a promoter", []int{9}, 100},
		{"half and half", []int{10, 0}, 0},
		{"one of each", []int{10, 8, 2}, 0},
		{"three promoters, one detractor", []int{9, 9, 10, 6}, 50},
		{"one promoter, two passives, one detractor", []int{9, 7, 8, 0}, 0},
		{"two promoters, one passive, one detractor", []int{10, 10, 7, 5}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := score(tc.answers...); got != tc.want {
				t.Errorf("NPS(%v) = %v, want %v", tc.answers, got, tc.want)
			}
		})
	}
	for _, s := range []int{-1, 11} {
		if c := proactive.CategoryOf(s); c != "" {
			t.Errorf("CategoryOf(%d) = %q, want none", s, c)
		}
	}
}

func TestSurveyRange(t *testing.T) {
	for _, tc := range []struct {
		s      proactive.Survey
		score  int
		wanted bool
	}{
		{proactive.SurveyNPS, 0, true}, {proactive.SurveyNPS, 10, true}, {proactive.SurveyNPS, 11, false}, {proactive.SurveyNPS, -1, false},
		{proactive.SurveyCES, 1, true}, {proactive.SurveyCES, 5, true}, {proactive.SurveyCES, 0, false}, {proactive.SurveyCES, 6, false},
		{proactive.SurveyCSAT, 1, true}, {proactive.SurveyCSAT, 6, false}, {proactive.Survey("other"), 3, false},
	} {
		if got := tc.s.Valid(tc.score); got != tc.wanted {
			t.Errorf("%s.Valid(%d) = %v, want %v", tc.s, tc.score, got, tc.wanted)
		}
	}
}
