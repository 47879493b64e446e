// Package notify runs the proactive outreach loop: a firing alert opens a
// ticket, the customer is offered visit slots by SMS, replies book, decline
// or opt out, and a confirmation, a reminder and a satisfaction survey
// follow. Every outgoing message goes through a persistent outbox written in
// the same transaction as the ticket change it belongs to, and a sender
// delivers it with retries, quiet hours and a daily cap.
//
// The provider is a Sender (notify/twilio, or the ConsoleSender); inbound
// messages and delivery statuses arrive through Inbound and Status, which
// notify/twilio's webhook handler calls once it has checked the request.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Options configure a Notifier. Zero fields get the defaults noted.
type Options struct {
	// Store is the registry and ticket store; the notifier's tables live in
	// the same database (migration 0004). Required.
	Store *devices.Store
	// Sender delivers outgoing SMS. Default: a ConsoleSender on stdout.
	Sender Sender
	// PublicURL is the URL the provider reaches us at, such as
	// https://proactive.example.com; status callbacks point to it, and the
	// customer links ({public_url}/c/{code}) that offers, confirmations
	// and reminders carry. Without it no status callback is requested and
	// messages carry no link.
	PublicURL string
	// Now is the clock, time.Now by default.
	Now func() time.Time
	// Logger gets the component's logs; default discard.
	Logger *slog.Logger
	// Registerer gets the notifier's metrics; none are registered when nil.
	Registerer prometheus.Registerer

	// ContactCooldown is how long after an offer about a device no new offer
	// about it is sent, default 7 days; Off turns it off. It runs on the
	// wall clock: it protects the customer.
	ContactCooldown time.Duration
	// MaxAlertAge is how old an alert may be (its FiredAt against the
	// notifier's clock) and still text the customer, default 1h; Off turns
	// the check off. An older one (a backfill, a replay, a late upload)
	// opens or updates its ticket, which waits in review.
	MaxAlertAge time.Duration
	// MinOutcomes and MinPrecision measure a rule's trust: a rule with at
	// least MinOutcomes outcomes (default 5) and a precision under
	// MinPrecision (default 0.6; Off turns trust off) has its new tickets
	// held to review until it recovers.
	MinOutcomes  int
	MinPrecision float64
	// OfferExpiry is how long an offer waits for a reply before the ticket
	// expires, default 72h; OfferReminder is how long before the expiry the
	// one reminder goes out, default 24h (none when it is not shorter than
	// OfferExpiry).
	OfferExpiry   time.Duration
	OfferReminder time.Duration
	// SlotLength is a visit window, default 2h; TravelBuffer the gap kept
	// between two visits of a technician, default 30m.
	SlotLength   time.Duration
	TravelBuffer time.Duration
	// SlotLead is how far ahead the earliest slot starts, default 2h;
	// SlotHorizon how far ahead slots are looked for, default 14 days.
	SlotLead    time.Duration
	SlotHorizon time.Duration
	// SlotCount is how many slots an offer names, 2 or 3, default 3.
	SlotCount int
	// SlotHold is how long an offered slot is kept out of other customers'
	// offers, default 4h.
	SlotHold time.Duration
	// DailyCap is the most proactive messages (offers, reminders, surveys)
	// sent to one customer in 24 hours, default 3; later ones wait.
	DailyCap int
	// CriticalInQuietHours lets an offer about a critical alert be sent in
	// the customer's quiet hours. Default false: it waits like any other.
	CriticalInQuietHours bool
	// VisitReminderAt is the local time, the day before a visit, at which
	// its reminder goes out, default 18:00.
	VisitReminderAt proactive.Clock
	// SurveyTimeout is how long the satisfaction question waits for an
	// answer before the survey ends quietly, default 48h.
	SurveyTimeout time.Duration
	// NPSInterval is the least time between two NPS questions (0–10, "how
	// likely are you to recommend us") to one customer, default 90 days;
	// Off never asks it. The question follows an answered satisfaction
	// question.
	NPSInterval time.Duration
	// CES asks the effort question (1–5, "how easy was it") after the NPS
	// answer (after the satisfaction answer when NPSInterval is Off).
	CES bool
	// HelpContact is what HELP answers with, such as "call 0800 123 456";
	// default "reply CALL and we will phone you".
	HelpContact string
	// ReplyNumber is the number customers text, which emails tell them to
	// answer by (they cannot be answered themselves); empty: emails name
	// HelpContact only.
	ReplyNumber string
	// Brand is the name the customer knows the service by, which opens the
	// offer and the HELP answer (carriers require it), default "Proactive".
	Brand string
	// AdvancedOptOut is set when the provider answers the opt-out, opt-in
	// and help keywords itself (Twilio's Advanced Opt-Out): the notifier
	// then records them without answering, so that the customer does not
	// get two answers.
	AdvancedOptOut bool
	// MaxAttempts bounds the delivery attempts of one message, default 8;
	// RetryBackoff is the first retry's delay, doubled each time up to
	// MaxBackoff (defaults 2s and 10m).
	MaxAttempts  int
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// ReconcileAfter is how long after an attempt with an unknown outcome
	// (a timeout once the request may have reached the provider) the
	// notifier asks the provider whether the message exists, default 1m.
	ReconcileAfter time.Duration
	// SendTimeout bounds one delivery attempt, default 15s; a message still
	// claimed by an attempt after twice this (its process died) is treated
	// as an unknown outcome.
	SendTimeout time.Duration
	// Concurrency is how many customers' messages are sent at once,
	// default 4 (one customer's messages always go out in order).
	Concurrency int
	// PollInterval is how often Run looks for due messages and jobs without
	// being woken, default 1s.
	PollInterval time.Duration

	// GroupWait is how long a new ticket's offer waits after its alert, so
	// that an incident can form first (a persisted job: a restart keeps
	// it). Zero, the default here, sends it at once; the configuration's
	// default is 30s.
	GroupWait time.Duration
	// When at least IncidentMinDevices devices (default 5), and at least
	// IncidentMinShare (default 0.2) of the registered devices the rule
	// applies to, fire one rule within IncidentWindow (default 15m), they
	// form an incident: its tickets wait in review and nobody is texted.
	IncidentMinDevices int
	IncidentMinShare   float64
	IncidentWindow     time.Duration

	// fixedRegistry says that no device is registered or removed while
	// the notifier runs (a replay's store), so the count of devices a rule
	// applies to is read once per rule.
	fixedRegistry bool
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Sender == nil {
		o.Sender = NewConsoleSender(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ContactCooldown == 0 {
		o.ContactCooldown = 7 * 24 * time.Hour
	}
	if o.MaxAlertAge == 0 {
		o.MaxAlertAge = time.Hour
	}
	if o.MinOutcomes <= 0 {
		o.MinOutcomes = 5
	}
	if o.MinPrecision == 0 {
		o.MinPrecision = 0.6
	}
	def(&o.OfferExpiry, 72*time.Hour)
	def(&o.OfferReminder, 24*time.Hour)
	def(&o.SlotLength, 2*time.Hour)
	def(&o.TravelBuffer, 30*time.Minute)
	def(&o.SlotLead, 2*time.Hour)
	def(&o.SlotHorizon, 14*24*time.Hour)
	def(&o.SlotHold, 4*time.Hour)
	def(&o.SurveyTimeout, 48*time.Hour)
	if o.NPSInterval == 0 {
		o.NPSInterval = 90 * 24 * time.Hour
	}
	def(&o.RetryBackoff, 2*time.Second)
	def(&o.MaxBackoff, 10*time.Minute)
	def(&o.ReconcileAfter, time.Minute)
	def(&o.SendTimeout, 15*time.Second)
	def(&o.PollInterval, time.Second)
	def(&o.IncidentWindow, 15*time.Minute)
	if o.IncidentMinDevices <= 0 {
		o.IncidentMinDevices = 5
	}
	if o.IncidentMinShare <= 0 {
		o.IncidentMinShare = 0.2
	}
	if o.SlotCount < 2 || o.SlotCount > 3 {
		o.SlotCount = 3
	}
	if o.DailyCap <= 0 {
		o.DailyCap = 3
	}
	if o.VisitReminderAt <= 0 || !o.VisitReminderAt.Valid() {
		o.VisitReminderAt = 18 * 60
	}
	if o.HelpContact == "" {
		o.HelpContact = "reply CALL and we will phone you"
	}
	if o.Brand = strings.TrimSpace(oneLine(o.Brand)); o.Brand == "" {
		o.Brand = "Proactive"
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return o
}

// Notifier is the outreach loop. Its methods are safe for concurrent use;
// Run delivers the outbox and runs the scheduled jobs.
type Notifier struct {
	opt       Options
	store     *devices.Store
	sender    Sender
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
	incidents incidentMetrics
	outcomes  *outcomeMetrics

	wake chan struct{}

	zonesMu sync.Mutex
	zones   map[string]*time.Location

	techMu    sync.Mutex
	techCache map[string]techEntry

	// applies caches the devices each rule applies to, by its models,
	// with Options.fixedRegistry.
	appliesMu sync.Mutex
	applies   map[string]int
}

// New returns a Notifier. It panics without a Store, a programming error.
func New(opt Options) *Notifier {
	if opt.Store == nil {
		panic("notify.New: Options.Store is required")
	}
	opt = opt.withDefaults()
	n := &Notifier{
		opt:    opt,
		store:  opt.Store,
		sender: opt.Sender,
		log:    opt.Logger.With("component", "notify"),
		now:    opt.Now,
		wake:   make(chan struct{}, 1),
		zones:  map[string]*time.Location{},

		techCache: map[string]techEntry{},
	}
	n.metrics = newMetrics(n, opt.Registerer)
	if opt.Registerer != nil {
		opt.Store.ObserveTransitions(n.metrics.observeMove)
	}
	n.incidents = newIncidentMetrics(opt.Registerer)
	n.outcomes = newOutcomeMetrics(opt.Registerer)
	return n
}

// clock is the notifier's time in UTC at the microsecond the store keeps.
func (n *Notifier) clock() time.Time { return n.now().UTC().Truncate(time.Microsecond) }

// zone loads an IANA zone, UTC for an unknown one (the registry validates
// zones on write, so that is only a stale row).
func (n *Notifier) zone(name string) *time.Location {
	n.zonesMu.Lock()
	defer n.zonesMu.Unlock()
	if loc, ok := n.zones[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	n.zones[name] = loc
	return loc
}

// notifyWake asks Run to look at the outbox now.
func (n *Notifier) notifyWake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run delivers the outbox and runs due jobs (offer reminders and expiries,
// visit reminders, survey timeouts) until ctx ends, then returns once the
// attempts in flight have finished. Work is in the database, so a restart
// picks up where the last run stopped.
func (n *Notifier) Run(ctx context.Context) error {
	t := time.NewTicker(n.opt.PollInterval)
	defer t.Stop()
	woken := false
	for {
		// A pass finishes its in-flight attempts even when ctx ends, so
		// returning after it is the drain.
		var err error
		if woken {
			// A new message is waiting: deliver only. Jobs and stale
			// claims are matters of time, for the ticks.
			err = n.deliver(context.WithoutCancel(ctx), false)
		} else {
			err = n.Poll(context.WithoutCancel(ctx))
		}
		if err != nil {
			n.log.Error("poll outbox and jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			woken = false
		case <-n.wake:
			woken = true
		}
	}
}

// Poll runs one pass of the due work: scheduled jobs first, then the
// messages of the outbox that are due at the notifier's clock. Run calls it
// on every tick; tests call it after moving the clock. It returns when the
// pass's delivery attempts have finished.
func (n *Notifier) Poll(ctx context.Context) error {
	errJobs := n.runJobs(ctx)
	errOut := n.deliver(ctx, true)
	return errors.Join(errJobs, errOut)
}

// Alerts takes alerts from the rule engine, in the shape of
// rules.NotifyFunc. A firing alert opens its ticket (idempotently) and, when
// the customer may be contacted, writes the offer to the outbox in the same
// transaction; the sender is then woken. Each alert is one short
// transaction, so the engine is held back only by the database.
//
// An alert that cannot succeed (a device the registry does not know) is
// logged and counted and the others go on. When the database fails, the
// alert is retried with backoff until it is stored or ctx ends: the rule
// engine notifies a firing alert once, so giving up would lose its ticket;
// holding the engine back instead backs pressure up to the broker, which
// keeps the telemetry until the database is back.
func (n *Notifier) Alerts(ctx context.Context, alerts []proactive.Alert) {
	woke := false
	for _, a := range alerts {
		if a.State != proactive.AlertFiring {
			continue
		}
		b := proactive.Backoff{
			Base: n.opt.RetryBackoff,
			Max:  min(n.opt.MaxBackoff, 30*time.Second),
			OnRetry: func(attempt int, wait time.Duration, err error) {
				n.metrics.alertErrors.Inc()
				n.log.Error("alert not stored; retrying", "alert", a,
					"attempt", attempt, "retry_in", wait, "err", err)
			},
		}
		var queued bool
		err := proactive.Retry(ctx, b, func(ctx context.Context, _ int) (retry bool, err error) {
			queued, err = n.handleAlert(ctx, a)
			return !permanent(err), err
		})
		switch code := proactive.ErrorCode(err); {
		case code == proactive.ENotFound || code == proactive.EInvalid:
			n.metrics.skipped.WithLabelValues("alert_" + code).Inc()
			n.log.Warn("alert opens no ticket", "alert", a, "err", err)
			continue
		case permanent(err):
			// Retrying would fail the same way forever and hold up the
			// alerts behind this one; it is counted and shown once.
			n.metrics.alertsDropped.WithLabelValues(code).Inc()
			n.log.Error("alert dropped: its error is permanent, not retried", "alert", a, "code", code, "err", err)
			continue
		case err != nil:
			// Retry gives up on transient errors only when ctx ends.
			n.log.Error("alert dropped at shutdown: its ticket opens when it fires again", "alert", a)
			return
		}
		woke = woke || queued
	}
	if woke {
		n.notifyWake()
	}
}

// permanent reports whether storing an alert failed in a way that no retry
// can mend: the request itself is wrong (invalid, not found, refused) or
// the database refuses its data (a constraint). Anything else may pass
// and is retried: the database unreachable or busy, a table missing during
// a migration, a conflict (a race lost to another writer; the retry reads
// afresh).
func permanent(err error) bool {
	switch proactive.ErrorCode(err) {
	case "", proactive.EUnavailable, proactive.EConflict:
		return false
	case proactive.EInternal:
		return devices.Violation(err)
	}
	return true
}

// errCode tells user-facing errors from internal ones for logs.
func wrap(op string, err error) error {
	if err == nil || proactive.ErrorCode(err) != proactive.EInternal {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}
