package proactive

// The customer surveys that follow a closed visit: satisfaction (CSAT,
// 1–5), loyalty (NPS, 0–10) and effort (CES, 1–5).

// Survey names a survey question.
type Survey string

// The surveys, as the store, the API and the metrics name them.
const (
	SurveyCSAT Survey = "csat"
	SurveyNPS  Survey = "nps"
	SurveyCES  Survey = "ces"
)

// Range is the lowest and highest answer a survey takes.
func (s Survey) Range() (lo, hi int) {
	if s == SurveyNPS {
		return 0, 10
	}
	return 1, 5
}

// Valid reports whether score is an answer to s.
func (s Survey) Valid(score int) bool {
	lo, hi := s.Range()
	return (s == SurveyCSAT || s == SurveyNPS || s == SurveyCES) && score >= lo && score <= hi
}

// NPSCategory is what an NPS answer (0–10) counts as.
type NPSCategory string

// The NPS categories: promoters answer 9 or 10, passives 7 or 8,
// detractors 0 to 6.
const (
	Promoter  NPSCategory = "promoter"
	Passive   NPSCategory = "passive"
	Detractor NPSCategory = "detractor"
)

// CategoryOf returns the category of an NPS answer; out-of-range answers
// are not answers and get "".
func CategoryOf(score int) NPSCategory {
	switch {
	case score < 0 || score > 10:
		return ""
	case score >= 9:
		return Promoter
	case score >= 7:
		return Passive
	}
	return Detractor
}

// NPS is the Net Promoter Score of the answers counted: the percentage of
// promoters minus the percentage of detractors, from −100 (all detractors)
// to 100 (all promoters); 0 without answers.
func NPS(promoters, passives, detractors int) float64 {
	n := promoters + passives + detractors
	if n <= 0 {
		return 0
	}
	return 100 * float64(promoters-detractors) / float64(n)
}
