package notify

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
)

type metrics struct {
	alertErrors, sendErrors, jobErrors, webhookRejected, slotTaken prometheus.Counter
	skipped, deferred, attempts, reconciled, statuses, inbound     *prometheus.CounterVec
	alertToSMS                                                     prometheus.Histogram
}

func newMetrics(n *Notifier, reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "proactive", Subsystem: "notify", Name: name, Help: help})
	}
	vec := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Subsystem: "notify", Name: name, Help: help}, []string{label})
	}
	m := &metrics{
		alertErrors:     counter("alert_errors_total", "Alerts that could not be turned into a ticket or an offer."),
		sendErrors:      counter("send_errors_total", "Delivery passes that failed on the database or the policy checks."),
		jobErrors:       counter("job_errors_total", "Scheduled jobs (reminders, expiries, survey timeouts) that failed."),
		webhookRejected: counter("webhook_rejected_total", "Webhook requests refused for a missing or invalid signature."),
		slotTaken:       counter("slot_taken_total", "Replies whose slot another booking won; a new offer followed."),
		skipped:         vec("outreach_skipped_total", "New tickets whose customer was not texted, by reason.", "reason"),
		deferred:        vec("deferred_total", "Delivery attempts put off, by reason.", "reason"),
		attempts:        vec("attempts_total", "Delivery attempts by result: sent, retry, unknown, failed.", "result"),
		reconciled:      vec("reconciled_total", "Messages with an unknown outcome, settled: found at the provider or resent.", "result"),
		statuses:        vec("status_callbacks_total", "Delivery statuses recorded from the provider.", "status"),
		inbound:         vec("inbound_total", "Inbound SMS by how they were handled.", "handled"),
		alertToSMS: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "proactive", Subsystem: "notify",
			Name: "alert_to_first_sms_seconds", Help: "From an alert firing to its offer being taken by the SMS provider.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 24 * 3600}}),
	}
	if reg != nil {
		reg.MustRegister(m.alertErrors, m.sendErrors, m.jobErrors, m.webhookRejected, m.slotTaken, m.skipped, m.deferred,
			m.attempts, m.reconciled, m.statuses, m.inbound, m.alertToSMS, &measuresCollector{n: n}, &countsCollector{n: n})
	}
	return m
}

// Measures are the outcomes of the outreach loop over all tickets so far.
// Durations are means; rates are in [0, 1]; a measure without data is 0.
type Measures struct {
	// AlertToFirstSMS is from an alert firing to its offer being taken by
	// the provider; P50 and P99 too.
	AlertToFirstSMS    time.Duration `json:"alert_to_first_sms"`
	AlertToFirstSMSP50 time.Duration `json:"alert_to_first_sms_p50"`
	AlertToFirstSMSP99 time.Duration `json:"alert_to_first_sms_p99"`
	// Offers counts conversations that got an offer; OfferAcceptance is the
	// share of the decided ones (booked, declined or expired) that booked.
	Offers          int     `json:"offers"`
	OfferAcceptance float64 `json:"offer_acceptance"`
	// TimeToVisit is from a ticket's opening to its visit being done.
	TimeToVisit time.Duration `json:"time_to_visit"`
	// ResolutionTime is from a ticket's opening to its closing with an
	// outcome.
	ResolutionTime time.Duration `json:"resolution_time"`
	// FirstVisitFixRate is the share of closed tickets that needed one visit
	// and whose outcome was not no_fault_found.
	FirstVisitFixRate float64 `json:"first_visit_fix_rate"`
	// CSAT is the mean satisfaction answer (1–5), of CSATAnswers answers.
	CSAT        float64 `json:"csat"`
	CSATAnswers int     `json:"csat_answers"`
	// RulePrecision is, per rule, the share of its closed tickets whose
	// outcome confirmed a fault (fault_confirmed or part_replaced).
	RulePrecision map[string]float64 `json:"rule_precision"`
}

// Measures computes the outreach measures from the database.
func (n *Notifier) Measures(ctx context.Context) (Measures, error) {
	m := Measures{RulePrecision: map[string]float64{}}
	// Latency to the first SMS.
	var lat []time.Duration
	if err := n.scan(ctx, `SELECT alert_at, first_sms_at FROM outreach WHERE first_sms_at IS NOT NULL`, func(s func(...any) error) error {
		var a, f time.Time
		if err := s(&a, &f); err != nil {
			return err
		}
		lat = append(lat, f.Sub(a))
		return nil
	}); err != nil {
		return m, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		m.AlertToFirstSMS = sum / time.Duration(len(lat))
		m.AlertToFirstSMSP50 = lat[(len(lat)-1)*50/100]
		m.AlertToFirstSMSP99 = lat[(len(lat)-1)*99/100]
	}
	// Offer acceptance.
	var decided, booked int
	if err := n.scan(ctx, `SELECT o.stage, (SELECT COUNT(*) FROM appointments a WHERE a.ticket_id = o.ticket_id)
		FROM outreach o WHERE o.offered_at IS NOT NULL`, func(s func(...any) error) error {
		var stage string
		var appts int
		if err := s(&stage, &appts); err != nil {
			return err
		}
		m.Offers++
		switch {
		case appts > 0:
			decided++
			booked++
		case stage == stageDone:
			decided++
		}
		return nil
	}); err != nil {
		return m, err
	}
	if decided > 0 {
		m.OfferAcceptance = float64(booked) / float64(decided)
	}
	// Visits, resolution, first-visit fixes and precision per rule. Rows
	// are joined here: aggregates over timestamps lose their type on SQLite.
	type visitCount struct {
		n     int
		first time.Time
	}
	done := map[int64]*visitCount{}
	if err := n.scan(ctx, `SELECT ticket_id, done_at FROM appointments WHERE status = 'done'`, func(s func(...any) error) error {
		var id int64
		var at time.Time
		if err := s(&id, &at); err != nil {
			return err
		}
		v := done[id]
		if v == nil {
			v = &visitCount{first: at}
			done[id] = v
		}
		v.n++
		if at.Before(v.first) {
			v.first = at
		}
		return nil
	}); err != nil {
		return m, err
	}
	var visits, resolved, fixedFirst int
	var toVisit, toResolve time.Duration
	type ruleCount struct{ closed, confirmed int }
	rules := map[string]*ruleCount{}
	if err := n.scan(ctx, `SELECT id, rule, opened_at, closed_at, COALESCE(outcome, ''), status
		FROM tickets WHERE status IN ('visited', 'closed')`, func(s func(...any) error) error {
		var id int64
		var rule, outcome, status string
		var opened time.Time
		var closed sql.NullTime
		if err := s(&id, &rule, &opened, &closed, &outcome, &status); err != nil {
			return err
		}
		v := done[id]
		if v != nil {
			visits++
			toVisit += v.first.Sub(opened)
		}
		if status != "closed" || !closed.Valid {
			return nil
		}
		resolved++
		toResolve += closed.Time.Sub(opened)
		if v != nil && v.n == 1 && outcome != "no_fault_found" {
			fixedFirst++
		}
		rc := rules[rule]
		if rc == nil {
			rc = &ruleCount{}
			rules[rule] = rc
		}
		rc.closed++
		if outcome == "fault_confirmed" || outcome == "part_replaced" {
			rc.confirmed++
		}
		return nil
	}); err != nil {
		return m, err
	}
	if visits > 0 {
		m.TimeToVisit = toVisit / time.Duration(visits)
	}
	if resolved > 0 {
		m.ResolutionTime = toResolve / time.Duration(resolved)
		m.FirstVisitFixRate = float64(fixedFirst) / float64(resolved)
	}
	for r, c := range rules {
		m.RulePrecision[r] = float64(c.confirmed) / float64(c.closed)
	}
	var sum int
	if err := n.scan(ctx, `SELECT csat FROM outreach WHERE csat IS NOT NULL`, func(s func(...any) error) error {
		var v int
		if err := s(&v); err != nil {
			return err
		}
		sum += v
		m.CSATAnswers++
		return nil
	}); err != nil {
		return m, err
	}
	if m.CSATAnswers > 0 {
		m.CSAT = float64(sum) / float64(m.CSATAnswers)
	}
	return m, nil
}

// scan runs a read query and calls row for each row with its Scan.
func (n *Notifier) scan(ctx context.Context, q string, row func(scan func(...any) error) error) error {
	rows, err := n.store.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("measures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return fmt.Errorf("measures: %w", err)
		}
	}
	return rows.Err()
}

// measuresCollector exports Measures on each scrape.
type measuresCollector struct{ n *Notifier }

var (
	descAlertToSMS = prometheus.NewDesc("proactive_notify_alert_to_first_sms_mean_seconds", "Mean time from an alert to its first SMS.", nil, nil)
	descAcceptance = prometheus.NewDesc("proactive_notify_offer_acceptance_ratio", "Share of decided offers that booked a visit.", nil, nil)
	descToVisit    = prometheus.NewDesc("proactive_notify_time_to_visit_mean_seconds", "Mean time from a ticket's opening to its visit.", nil, nil)
	descResolution = prometheus.NewDesc("proactive_notify_resolution_time_mean_seconds", "Mean time from a ticket's opening to its closing.", nil, nil)
	descFirstFix   = prometheus.NewDesc("proactive_notify_first_visit_fix_ratio", "Share of closed tickets fixed in one visit.", nil, nil)
	descCSAT       = prometheus.NewDesc("proactive_notify_csat_mean", "Mean satisfaction answer, 1 to 5.", nil, nil)
	descPrecision  = prometheus.NewDesc("proactive_notify_rule_precision_ratio", "Per rule, the share of closed tickets whose outcome confirmed a fault.", []string{"rule"}, nil)
)

func (c *measuresCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAlertToSMS, descAcceptance, descToVisit, descResolution, descFirstFix, descCSAT, descPrecision} {
		ch <- d
	}
}

func (c *measuresCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.n.Measures(ctx)
	if err != nil {
		c.n.log.Error("compute measures for /metrics", "err", err)
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(descAlertToSMS, m.AlertToFirstSMS.Seconds())
	g(descAcceptance, m.OfferAcceptance)
	g(descToVisit, m.TimeToVisit.Seconds())
	g(descResolution, m.ResolutionTime.Seconds())
	g(descFirstFix, m.FirstVisitFixRate)
	g(descCSAT, m.CSAT)
	for r, v := range m.RulePrecision {
		g(descPrecision, v, r)
	}
}

// countsCollector exports, on each scrape, the outbox's messages by status
// and the tickets by status: two GROUP BY counts over indexed columns. The
// numbers are the database's, so every instance on one database reports
// the same: aggregate them over instances with max, not sum.
type countsCollector struct{ n *Notifier }

var (
	descOutbox = prometheus.NewDesc("proactive_notify_outbox_messages",
		"Outbox messages by status: pending, sending, unknown, sent, failed, suppressed.", []string{"state"}, nil)
	descTickets = prometheus.NewDesc("proactive_tickets", "Tickets by status.", []string{"status"}, nil)
)

var outboxStatuses = []string{statusPending, statusSending, statusUnknown, statusSent, statusFailed, statusSuppressed}

var ticketStatuses = []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketOffered, proactive.TicketScheduled,
	proactive.TicketVisited, proactive.TicketClosed, proactive.TicketDeclined, proactive.TicketExpired, proactive.TicketCancelled}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOutbox
	ch <- descTickets
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	emit := func(desc *prometheus.Desc, table string, known []string) {
		counts, err := c.n.countBy(ctx, table)
		if err != nil {
			c.n.log.Error("count "+table+" for /metrics", "err", err)
			return // no sample rather than a wrong zero
		}
		for _, k := range known {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(counts[k]), k)
			delete(counts, k)
		}
		for k, v := range counts { // a status this binary does not know
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), k)
		}
	}
	emit(descOutbox, "outbox", outboxStatuses)
	known := make([]string, len(ticketStatuses))
	for i, s := range ticketStatuses {
		known[i] = string(s)
	}
	emit(descTickets, "tickets", known)
}

// countBy counts the rows of table (outbox or tickets) by status.
func (n *Notifier) countBy(ctx context.Context, table string) (map[string]int64, error) {
	rows, err := n.store.QueryContext(ctx, `SELECT status, COUNT(*) FROM `+table+` GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var k int64
		if err := rows.Scan(&s, &k); err != nil {
			return nil, err
		}
		out[s] = k
	}
	return out, rows.Err()
}
