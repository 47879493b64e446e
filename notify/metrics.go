package notify

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// metrics are the notifier's instruments. Outcomes are counted and timed
// where they happen (a send, a reply, a ticket's move; see observeMove):
// a scrape reads memory, and the only SQL it runs counts the live rows of
// two indexed status columns (countsCollector).
type metrics struct {
	alertErrors, sendErrors, jobErrors, webhookRejected, slotTaken prometheus.Counter
	skipped, deferred, attempts, reconciled, statuses, inbound     *prometheus.CounterVec
	held, alertsDropped, offers, closed                            *prometheus.CounterVec
	// byChannel counts delivery attempts by channel and result; optOuts
	// opt-outs by channel.
	byChannel, optOuts              *prometheus.CounterVec
	alertToSMS, toVisit, resolution prometheus.Histogram
}

// Label values known in advance: each labelled counter has a series at 0
// for them from the start, so that rate() and absent() see the family
// before its first event.
var (
	heldReasons = []string{heldContactNone, heldAge, heldReview, heldUntrusted, heldNoCustomer, heldOptedOut,
		heldNoConsent, heldCooldown, heldQuietHours, heldDailyCap, heldGroupWait, reasonIncident}
	skipReasons   = append([]string{"alert_" + proactive.EInvalid, "alert_" + proactive.ENotFound}, heldReasons...)
	deferReasons  = []string{heldQuietHours, heldDailyCap}
	attemptResult = []string{"sent", "retry", "unknown", "failed"}
	reconcileRes  = []string{"found", "resent"}
	// The statuses statusRank tracks: the ones a callback can record.
	providerStatuses = []string{"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "canceled", "read"}
	inboundHandled   = []string{"stop", "start", "help", "no_conversation", "opted_out", "slot", "reschedule", "survey", "call", "no", "other", "after_end"}
	offerOutcomes    = []string{"offered", "booked", "declined", "expired"}
	closeOutcomes    = []string{string(proactive.OutcomeFaultConfirmed), string(proactive.OutcomeNoFaultFound),
		string(proactive.OutcomePartReplaced), string(proactive.OutcomeFalseAlarm)}
)

// slowBuckets span the outreach loop's durations: seconds for an SMS, days
// for a visit or a resolution.
var slowBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600}

func newMetrics(n *Notifier, reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	vec := func(name, help, label string, known []string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		for _, k := range known {
			v.WithLabelValues(k)
		}
		return v
	}
	hist := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: slowBuckets})
	}
	m := &metrics{
		alertErrors:     counter("proactive_notify_alert_errors_total", "Alerts that could not be turned into a ticket or an offer."),
		sendErrors:      counter("proactive_notify_send_errors_total", "Delivery passes that failed on the database or the policy checks."),
		jobErrors:       counter("proactive_notify_job_errors_total", "Scheduled jobs (reminders, expiries, survey timeouts) that failed."),
		webhookRejected: counter("proactive_notify_webhook_rejected_total", "Webhook requests refused for a missing or invalid signature."),
		slotTaken:       counter("proactive_notify_slot_taken_total", "Replies whose slot another booking won; a new offer followed."),
		skipped:         vec("proactive_notify_outreach_skipped_total", "New tickets whose customer was not texted, by reason.", "reason", skipReasons),
		deferred:        vec("proactive_notify_deferred_total", "Delivery attempts put off, by reason.", "reason", deferReasons),
		attempts:        vec("proactive_notify_attempts_total", "Delivery attempts by result: sent, retry, unknown, failed.", "result", attemptResult),
		reconciled:      vec("proactive_notify_reconciled_total", "Messages with an unknown outcome, settled: found at the provider or resent.", "result", reconcileRes),
		statuses:        vec("proactive_notify_status_callbacks_total", "Delivery statuses recorded from the provider.", "status", providerStatuses),
		inbound:         vec("proactive_notify_inbound_total", "Inbound SMS by how they were handled.", "handled", inboundHandled),
		held: vec("proactive_alerts_held_total",
			"Alerts whose customer was not texted at once, by reason: review, untrusted_rule, alert_age, contact_none, contact_cooldown, no_consent, quiet_hours, daily_cap, ...",
			"reason", heldReasons),
		alertsDropped: vec("proactive_notify_alerts_dropped_total",
			"Alerts given up on for an error no retry can mend (a constraint the database enforces, a refused request), by error code.",
			"code", []string{proactive.EInternal, proactive.EUnauthorized, proactive.EForbidden}),
		offers: vec("proactive_notify_offers_total",
			"Offers of a visit by outcome: offered (the ticket became offered), then booked, declined or expired. Acceptance is booked over booked+declined+expired.",
			"outcome", offerOutcomes),
		closed: vec("proactive_tickets_closed_total",
			"Tickets closed, by outcome; a rule's precision is fault_confirmed+part_replaced over all closed.", "outcome", closeOutcomes),
		byChannel: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "proactive_notify_channel_messages_total",
			Help: "Delivery attempts by channel (sms, whatsapp, email) and result: sent, retry, unknown, failed, suppressed."},
			[]string{"channel", "result"}),
		optOuts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "proactive_notify_opt_outs_total",
			Help: "Customers who opted out of a channel: a STOP keyword, a carrier's refusal, an email's unsubscribe link."},
			[]string{"channel"}),
		alertToSMS: hist("proactive_notify_alert_to_first_sms_seconds", "From an alert firing to its offer being taken by the SMS provider."),
		toVisit:    hist("proactive_notify_time_to_visit_seconds", "From a ticket's opening to its visit being marked done."),
		resolution: hist("proactive_notify_resolution_seconds", "From a ticket's opening to its closing with an outcome."),
	}
	if reg != nil {
		reg.MustRegister(m.alertErrors, m.sendErrors, m.jobErrors, m.webhookRejected, m.slotTaken, m.skipped, m.deferred,
			m.attempts, m.reconciled, m.statuses, m.inbound, m.held, m.alertsDropped, m.offers, m.closed, m.alertToSMS, m.toVisit, m.resolution, m.byChannel, m.optOuts,
			&countsCollector{n: n})
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

// observeMove counts a ticket's committed status change: offer outcomes,
// the time to a visit and to a resolution.
func (m *metrics) observeMove(mv devices.TicketMove) {
	t := mv.Ticket
	switch {
	case t.Status == proactive.TicketOffered:
		m.offers.WithLabelValues("offered").Inc()
	case mv.From == proactive.TicketOffered && t.Status == proactive.TicketScheduled:
		m.offers.WithLabelValues("booked").Inc()
	case mv.From == proactive.TicketOffered && t.Status == proactive.TicketDeclined:
		m.offers.WithLabelValues("declined").Inc()
	case mv.From == proactive.TicketOffered && t.Status == proactive.TicketExpired:
		m.offers.WithLabelValues("expired").Inc()
	case t.Status == proactive.TicketVisited:
		m.toVisit.Observe(t.UpdatedAt.Sub(t.OpenedAt).Seconds())
	case t.Status == proactive.TicketClosed:
		m.closed.WithLabelValues(string(t.Outcome)).Inc()
		m.resolution.Observe(t.ClosedAt.Sub(t.OpenedAt).Seconds())
	}
}

// channel counts a delivery attempt's result on ch.
func (m *metrics) channel(ch proactive.Channel, result string) {
	m.byChannel.WithLabelValues(string(ch.OrSMS()), result).Inc()
}

// Measures are the outcomes of the outreach loop over all tickets so far;
// see devices.Measures.
type Measures = devices.Measures

// Measures computes the outreach measures over the whole history, for the
// API's report; /metrics has the counters and histograms instead.
func (n *Notifier) Measures(ctx context.Context) (Measures, error) {
	return n.store.Measures(ctx)
}

// countsCollector exports, on each scrape, the backlog: the outbox's
// messages waiting or in doubt, and the tickets not yet ended. Both count
// only live statuses on an index that leads with status (outbox_due,
// tickets_status), so a scrape's cost follows the backlog, not the
// history; the terminal states are counters (attempts, offers, closed).
// The numbers are the database's, so every instance on one database
// reports the same: aggregate them over instances with max, not sum.
type countsCollector struct{ n *Notifier }

var (
	descOutbox = prometheus.NewDesc("proactive_notify_outbox_messages",
		"Outbox messages waiting, by status: pending, sending, unknown (sent, failed and suppressed are counted by proactive_notify_attempts_total).", []string{"state"}, nil)
	descTickets = prometheus.NewDesc("proactive_tickets", "Tickets not yet ended, by status: open, review, offered, scheduled, visited.", []string{"status"}, nil)
)

var liveOutbox = []string{statusPending, statusSending, statusUnknown}

var liveTickets = []string{string(proactive.TicketOpen), string(proactive.TicketReview), string(proactive.TicketOffered),
	string(proactive.TicketScheduled), string(proactive.TicketVisited)}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOutbox
	ch <- descTickets
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	emit := func(desc *prometheus.Desc, table string, live []string) {
		counts, err := c.n.store.CountByStatus(ctx, table, live)
		if err != nil {
			c.n.log.Error("count "+table+" for /metrics", "err", err)
			return // no sample rather than a wrong zero
		}
		for _, k := range live {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(counts[k]), k)
		}
	}
	emit(descOutbox, "outbox", liveOutbox)
	emit(descTickets, "tickets", liveTickets)
}
