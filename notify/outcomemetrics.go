package notify

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
)

// outcomeMetrics count, as they happen, the loyalty and effort answers and
// the fixes: counters and a histogram, so that a scrape reads no table.
// Per month is PromQL's business (increase over 30d); NPS is
// (promoters − detractors) / answers × 100 over the nps series.
type outcomeMetrics struct {
	answers    *prometheus.CounterVec   // survey, score
	fixes      *prometheus.CounterVec   // rule, model, first_visit
	alertToFix *prometheus.HistogramVec // rule
}

func newOutcomeMetrics(reg prometheus.Registerer) *outcomeMetrics {
	m := &outcomeMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Name: "survey_answers_total",
			Help: "Survey answers by survey (csat 1-5, nps 0-10, ces 1-5) and score."}, []string{"survey", "score"}),
		fixes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Name: "fixes_total",
			Help: "Visits that fixed a fault (outcome fault_confirmed or part_replaced), by rule, device model and whether it was the ticket's first visit."},
			[]string{"rule", "model", "first_visit"}),
		alertToFix: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "proactive", Name: "alert_to_fix_seconds",
			Help:    "From a ticket's opening by its alert to the visit that fixed the fault, by rule.",
			Buckets: []float64{3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 5 * 86400, 7 * 86400, 14 * 86400, 30 * 86400}},
			[]string{"rule"}),
	}
	// Every answer a survey takes starts at zero, so that rates and the
	// NPS formula see every series from the first scrape.
	for _, s := range []proactive.Survey{proactive.SurveyCSAT, proactive.SurveyNPS, proactive.SurveyCES} {
		lo, hi := s.Range()
		for v := lo; v <= hi; v++ {
			m.answers.WithLabelValues(string(s), strconv.Itoa(v))
		}
	}
	if reg != nil {
		reg.MustRegister(m.answers, m.fixes, m.alertToFix)
	}
	return m
}

// answered counts a survey answer.
func (m *outcomeMetrics) answered(s proactive.Survey, score int) {
	if s.Valid(score) {
		m.answers.WithLabelValues(string(s), strconv.Itoa(score)).Inc()
	}
}

// fixed counts a visit that fixed a fault of ticket t's rule on a device of
// model, the ticket's visits-th (1: the first), made after since.
func (m *outcomeMetrics) fixed(rule, model string, visits int, since time.Duration) {
	first := m.fixes.WithLabelValues(rule, model, "true")
	later := m.fixes.WithLabelValues(rule, model, "false") // both start at zero
	if visits == 1 {
		first.Inc()
	} else {
		later.Inc()
	}
	m.alertToFix.WithLabelValues(rule).Observe(max(since, 0).Seconds())
}

// fixOutcome reports whether a visit's outcome fixed a fault.
func fixOutcome(o proactive.Outcome) bool {
	return o == proactive.OutcomeFaultConfirmed || o == proactive.OutcomePartReplaced
}
