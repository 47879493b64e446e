package notify

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

type metrics struct {
	alertErrors, sendErrors, jobErrors, webhookRejected, slotTaken prometheus.Counter
	skipped, deferred, attempts, reconciled, statuses, inbound     *prometheus.CounterVec
	held                                                           *prometheus.CounterVec
	// byChannel counts delivery attempts by channel and result; optOuts
	// opt-outs by channel.
	byChannel, optOuts *prometheus.CounterVec
	alertToSMS         prometheus.Histogram
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
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Name: "alerts_held_total",
			Help: "Alerts whose customer was not texted at once, by reason: review, untrusted_rule, alert_age, contact_none, contact_cooldown, no_consent, quiet_hours, daily_cap, ..."},
			[]string{"reason"}),
		byChannel: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Subsystem: "notify", Name: "channel_messages_total",
			Help: "Delivery attempts by channel (sms, whatsapp, email) and result: sent, retry, unknown, failed, suppressed."},
			[]string{"channel", "result"}),
		optOuts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Subsystem: "notify", Name: "opt_outs_total",
			Help: "Customers who opted out of a channel: a STOP keyword, a carrier's refusal, an email's unsubscribe link."},
			[]string{"channel"}),
		alertToSMS: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "proactive", Subsystem: "notify",
			Name: "alert_to_first_sms_seconds", Help: "From an alert firing to its offer being taken by the SMS provider.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 24 * 3600}}),
	}
	if reg != nil {
		reg.MustRegister(m.alertErrors, m.sendErrors, m.jobErrors, m.webhookRejected, m.slotTaken, m.skipped, m.deferred,
			m.attempts, m.reconciled, m.statuses, m.inbound, m.held, m.alertToSMS, m.byChannel, m.optOuts,
			&measuresCollector{n: n}, &countsCollector{n: n})
	}
	// Every channel's series exist from the start, at zero, so that rates
	// and alerts on them work before the first message.
	for _, ch := range proactive.Channels {
		for _, r := range []string{"sent", "retry", "unknown", "failed", "suppressed"} {
			m.byChannel.WithLabelValues(string(ch), r)
		}
		m.optOuts.WithLabelValues(string(ch))
	}
	return m
}

// channel counts a delivery attempt's result on ch.
func (m *metrics) channel(ch proactive.Channel, result string) {
	m.byChannel.WithLabelValues(string(ch.OrSMS()), result).Inc()
}

// Measures are the outcomes of the outreach loop over all tickets so far;
// see devices.Measures.
type Measures = devices.Measures

// Measures computes the outreach measures: aggregates in the database, not
// its tables loaded here, since every /metrics scrape asks.
func (n *Notifier) Measures(ctx context.Context) (Measures, error) {
	return n.store.Measures(ctx)
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

var ticketStatuses = []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketReview, proactive.TicketOffered, proactive.TicketScheduled,
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
	return n.store.CountByStatus(ctx, table)
}
