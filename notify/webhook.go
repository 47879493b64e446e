package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Headers of a webhook delivery.
const (
	HeaderEvent     = "X-Proactive-Event"
	HeaderSignature = "X-Proactive-Signature"
	HeaderEventID   = "X-Proactive-Event-Id"
)

// Sign returns the X-Proactive-Signature of body: "sha256=" and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookStore is the outbox of webhook deliveries; *devices.Store
// satisfies it. Each method may block on the database.
type WebhookStore interface {
	// WebhookDue returns the due deliveries first in their order.
	WebhookDue(ctx context.Context, now time.Time, limit int) ([]devices.DueDelivery, error)
	// WebhookClaim takes a delivery for an attempt until lease; false
	// when another dispatcher has it.
	WebhookClaim(ctx context.Context, id int64, now, lease time.Time) (bool, error)
	// WebhookResult records an attempt's outcome.
	WebhookResult(ctx context.Context, id int64, r devices.DeliveryResult) error
	// WebhookWake receives when deliveries were queued in this process.
	WebhookWake() <-chan struct{}
	// PruneWebhooks deletes at most limit delivered or dead deliveries
	// finished before before, then at most limit unreferenced events
	// from before before, and returns how many of each; never a pending
	// delivery. Safe to call from several processes at once.
	PruneWebhooks(ctx context.Context, before time.Time, limit int) (deliveries, events int, err error)
}

var _ WebhookStore = (*devices.Store)(nil)

// DispatcherOptions configure a Dispatcher; zero fields get the defaults
// given on each.
type DispatcherOptions struct {
	// Attempts is how many attempts a delivery gets before it is dead,
	// default 12.
	Attempts int
	// Timeout bounds one attempt, default 10s.
	Timeout time.Duration
	// Backoff is the wait after the first failed attempt, doubled after
	// each next one up to MaxBackoff: defaults 30s and 1h (12 attempts span
	// about five hours).
	Backoff, MaxBackoff time.Duration
	// PollInterval is how often the outbox is read, default 1s; a
	// transaction of this process that queues a delivery wakes it sooner.
	PollInterval time.Duration
	// Concurrency bounds the attempts in flight, default 8; the deliveries
	// of one webhook's ticket still go one at a time, in order.
	Concurrency int
	// Client sends the requests; default an http.Client that follows no
	// redirect (a POST must not turn into a GET elsewhere).
	Client *http.Client
	// Retention is how long delivered and dead deliveries, and the events
	// no delivery refers to any more, are kept; 0 (the default) keeps them
	// all. Pending deliveries are kept whatever their age.
	Retention time.Duration
	// PruneInterval is the least time between two prunings, default 5m.
	PruneInterval time.Duration
	// Registerer gets proactive_webhook_deliveries_total and
	// proactive_webhook_deliveries_pruned_total; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o DispatcherOptions) withDefaults() DispatcherOptions {
	if o.Attempts <= 0 {
		o.Attempts = 12
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 30 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = 5 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Dispatcher delivers the outbound events of the webhook outbox: at least
// once (receivers deduplicate by the event's id), in order per webhook and
// ticket (a later event waits while an earlier one is retried), with
// retries and backoff, dead after the last attempt.
type Dispatcher struct {
	store WebhookStore
	opt   DispatcherOptions
	log   *slog.Logger
	// results counts attempts by result: delivered, retry, dead.
	results *prometheus.CounterVec
	// pruned counts the deliveries deleted by retention.
	pruned prometheus.Counter
}

// Delivery results, the values of the metric's result label.
var deliveryResults = []string{"delivered", "retry", "dead"}

// NewDispatcher returns a dispatcher over store's outbox.
func NewDispatcher(store WebhookStore, opt DispatcherOptions) *Dispatcher {
	opt = opt.withDefaults()
	d := &Dispatcher{store: store, opt: opt, log: opt.Logger.With("component", "webhooks")}
	d.results = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "proactive", Subsystem: "webhook",
		Name: "deliveries_total", Help: "Webhook delivery attempts by result: delivered, retry, dead."}, []string{"result"})
	for _, r := range deliveryResults {
		d.results.WithLabelValues(r)
	}
	d.pruned = prometheus.NewCounter(prometheus.CounterOpts{Name: "proactive_webhook_deliveries_pruned_total",
		Help: "Delivered and dead webhook deliveries deleted once older than notify.webhook_retention."})
	if opt.Registerer != nil {
		opt.Registerer.MustRegister(d.results, d.pruned)
	}
	return d
}

// Run delivers until ctx ends, prunes every PruneInterval when Retention
// is set, and returns after the attempts in flight have finished (each
// within Timeout).
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.opt.PollInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		// In-flight attempts finish when ctx ends: returning after the
		// pass is the drain.
		if _, err := d.Deliver(context.WithoutCancel(ctx)); err != nil {
			d.log.Error("deliver webhooks", "err", err)
		}
		if now := d.opt.Now(); d.opt.Retention > 0 && (lastPrune.IsZero() || now.Sub(lastPrune) >= d.opt.PruneInterval) {
			lastPrune = now
			if _, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("prune webhook deliveries", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.store.WebhookWake():
		}
	}
}

// Deliver attempts every due delivery, and the ones each success makes
// due (the next of its ticket), until none is; it returns how many
// attempts it made. Run calls it on every tick; tests call it after
// moving the clock.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	total := 0
	for range 100 { // bounded, so that a busy outbox does not starve the ticks
		due, err := d.store.WebhookDue(ctx, d.opt.Now(), 500)
		if err != nil || len(due) == 0 {
			return total, err
		}
		sem := make(chan struct{}, d.opt.Concurrency)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		made := 0
		for _, dd := range due {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				ok, err := d.attempt(ctx, dd)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					made++
				}
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		total += made
		if len(errs) > 0 || made == 0 {
			return total, errors.Join(errs...)
		}
	}
	return total, nil
}

// Bounds of one pruning: rows per statement, so that no statement holds
// its locks long, and batches per call, so that a large backlog does
// not hold up deliveries (the next calls take the rest).
const (
	pruneBatch   = 1000
	pruneBatches = 100
)

// Prune deletes the delivered and dead deliveries older than Retention,
// and the events no delivery refers to any more, in batches, and returns
// how many deliveries it deleted; with Retention 0 it deletes nothing. Run
// calls it every PruneInterval; tests call it after moving the clock.
func (d *Dispatcher) Prune(ctx context.Context) (int, error) {
	if d.opt.Retention <= 0 {
		return 0, nil
	}
	before := d.opt.Now().Add(-d.opt.Retention)
	total := 0
	for range pruneBatches {
		n, m, err := d.store.PruneWebhooks(ctx, before, pruneBatch)
		total += n
		d.pruned.Add(float64(n))
		if err != nil || n < pruneBatch && m < pruneBatch {
			return total, err
		}
	}
	return total, nil
}

// attempt claims a delivery and makes one attempt at it; false when
// another dispatcher had it.
func (d *Dispatcher) attempt(ctx context.Context, dd devices.DueDelivery) (bool, error) {
	now := d.opt.Now()
	// The lease outlives the attempt: a dispatcher that dies mid-attempt
	// leaves it to another after the lease, never to two at once.
	claimed, err := d.store.WebhookClaim(ctx, dd.ID, now, now.Add(2*d.opt.Timeout+time.Second))
	if err != nil || !claimed {
		return false, err
	}
	dd.Attempts++
	status, retryAfter, sendErr := d.send(ctx, dd)
	res := devices.DeliveryResult{Status: status, At: d.opt.Now()}
	switch {
	case sendErr == nil:
		res.State = devices.DeliveryDelivered
	case errors.Is(sendErr, errPermanent) || dd.Attempts >= d.opt.Attempts:
		res.State, res.Error = devices.DeliveryDead, sendErr.Error()
	default:
		wait := proactive.Backoff{Base: d.opt.Backoff, Max: d.opt.MaxBackoff}.Step(dd.Attempts)
		if retryAfter > wait {
			wait = min(retryAfter, d.opt.MaxBackoff)
		}
		res.State, res.Next, res.Error = devices.DeliveryPending, res.At.Add(wait), sendErr.Error()
	}
	result := map[string]string{devices.DeliveryDelivered: "delivered", devices.DeliveryPending: "retry", devices.DeliveryDead: "dead"}[res.State]
	d.results.WithLabelValues(result).Inc()
	if res.State == devices.DeliveryDead {
		// Once per delivery: the log line an operator looks for.
		d.log.Warn("webhook delivery dead", "webhook", dd.Webhook, "event", dd.Event.ID, "type", dd.Event.Type,
			"attempts", dd.Attempts, "err", res.Error)
	}
	return true, d.store.WebhookResult(ctx, dd.ID, res)
}

// errPermanent marks a refusal that no retry changes.
var errPermanent = errors.New("refused")

// send posts one delivery and returns the receiver's status, how long it
// asked to wait (Retry-After in seconds), and nil for a 2xx. A 3xx or a
// 4xx other than 408, 425 and 429 is errPermanent.
func (d *Dispatcher) send(ctx context.Context, dd devices.DueDelivery) (int, time.Duration, error) {
	body, err := Payload(dd.Format, dd.Event)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: encode: %v", errPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dd.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "proactive-webhooks/1")
	req.Header.Set(HeaderEvent, string(dd.Event.Type))
	req.Header.Set(HeaderEventID, dd.Event.ID)
	req.Header.Set(HeaderSignature, Sign(body, dd.Secret))
	resp, err := d.opt.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, 0, fmt.Errorf("no answer within %s", d.opt.Timeout)
		}
		// Without the URL, which may hold a secret (Slack's do): the error
		// goes to the delivery log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return code, 0, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		var wait time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return code, wait, fmt.Errorf("receiver answered %d", code)
	case code >= 300 && code < 400:
		return code, 0, fmt.Errorf("%w: receiver answered %d: redirects are not followed, register the final URL", errPermanent, code)
	}
	return code, 0, fmt.Errorf("%w: receiver answered %d", errPermanent, code)
}

// Payload is the body of a delivery of e in format: the event itself for
// json, {"text": ...} for slack.
func Payload(format string, e proactive.OutboundEvent) ([]byte, error) {
	if format != proactive.WebhookSlack {
		return json.Marshal(e)
	}
	return json.Marshal(map[string]string{"text": slackText(e)})
}

// slackEscaper escapes what Slack's mrkdwn reads as markup.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackText is a one-line summary of e for a chat channel.
func slackText(e proactive.OutboundEvent) string {
	var d struct {
		ID         int64  `json:"id"`
		Device     string `json:"device_id"`
		Component  string `json:"component"`
		Rule       string `json:"rule"`
		Severity   string `json:"severity"`
		Summary    string `json:"summary"`
		Technician string `json:"technician_id"`
		Outcome    string `json:"outcome"`
		Customer   string `json:"customer_id"`
		Ticket     int64  `json:"ticket_id"`
		Method     string `json:"method"`
		Applicable int    `json:"applicable_devices"`
		Visit      struct {
			Label string `json:"label"`
		} `json:"visit"`
	}
	_ = json.Unmarshal(e.Data, &d)
	var s string
	switch {
	case strings.HasPrefix(string(e.Type), "ticket."):
		s = fmt.Sprintf("Ticket #%d %s: %s %s (%s, rule %s)", d.ID, strings.TrimPrefix(string(e.Type), "ticket."),
			d.Device, d.Component, d.Severity, d.Rule)
		if d.Outcome != "" {
			s += ", outcome " + d.Outcome
		}
		if d.Technician != "" {
			s += ", technician " + d.Technician
		}
		if d.Visit.Label != "" {
			s += ", visit " + d.Visit.Label
		}
		if d.Summary != "" {
			s += ": " + d.Summary
		}
	case e.Type == proactive.EventIncidentOpened:
		s = fmt.Sprintf("Incident #%d opened: many devices fired rule %s at once; their customers are not texted", d.ID, d.Rule)
	case e.Type == proactive.EventCallbackRequested:
		s = fmt.Sprintf("Customer %s asked to be called about ticket #%d (%s)", d.Customer, d.Ticket, d.Device)
	case e.Type == proactive.EventCustomerOptedOut:
		s = fmt.Sprintf("Customer %s opted out of SMS (%s)", d.Customer, d.Method)
	default:
		s = string(e.Type)
	}
	return slackEscaper.Replace(s)
}
