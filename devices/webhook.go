package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
)

// Webhook delivery states: pending waits for its next attempt (or is in
// flight, its next attempt then the end of the attempt's lease); delivered
// got a 2xx; dead gave up after the last attempt or a refusal no retry
// can change.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
)

// Bounds of a webhook's fields.
const (
	minWebhookSecret = 16
	maxWebhookSecret = 256
	maxWebhookURL    = 2000
)

// validateWebhook checks a webhook to register; it sets the default format.
func validateWebhook(w *proactive.Webhook, secret string) error {
	v := newValidator("webhook")
	w.URL = strings.TrimSpace(w.URL)
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		v.addf("url", "%q is not an absolute http:// or https:// URL without credentials", clipText(w.URL, 100))
	} else if len(w.URL) > maxWebhookURL {
		v.addf("url", "longer than %d characters", maxWebhookURL)
	}
	valid := make([]string, len(proactive.EventTypes))
	for i, e := range proactive.EventTypes {
		valid[i] = string(e)
	}
	if len(w.Events) == 0 {
		v.addf("events", "at least one of %s", strings.Join(valid, ", "))
	}
	var unknown []string
	for _, e := range w.Events {
		if !e.Valid() {
			unknown = append(unknown, strconv.Quote(clipText(string(e), 60)))
		}
	}
	if len(unknown) > 0 {
		v.addf("events", "unknown event type %s: the types are %s", strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}
	slices.Sort(w.Events)
	w.Events = slices.Compact(w.Events)
	if n := utf8.RuneCountInString(secret); n < minWebhookSecret || n > maxWebhookSecret {
		v.addf("secret", "must be %d to %d characters (a random string the receiver checks signatures with)", minWebhookSecret, maxWebhookSecret)
	}
	switch w.Format {
	case "":
		w.Format = proactive.WebhookJSON
	case proactive.WebhookJSON, proactive.WebhookSlack:
	default:
		v.addf("format", "%q is not json or slack", clipText(w.Format, 40))
	}
	return v.err()
}

// clipText cuts s to n runes for an error message.
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

const webhookColumns = `id, url, events, format, enabled, created_at, created_by`

func scanWebhook(row interface{ Scan(...any) error }) (proactive.Webhook, error) {
	var w proactive.Webhook
	var events string
	if err := row.Scan(&w.ID, &w.URL, &events, &w.Format, &w.Enabled, &w.Created, &w.CreatedBy); err != nil {
		return proactive.Webhook{}, err
	}
	for _, e := range strings.Split(events, ",") {
		w.Events = append(w.Events, proactive.EventType(e))
	}
	w.Created = w.Created.UTC()
	return w, nil
}

// CreateWebhook registers a webhook, enabled, with its signing secret.
// EInvalid (with each bad field) for a URL that is not http(s), no or
// unknown event types, a secret of the wrong length or an unknown format.
func (s *Store) CreateWebhook(ctx context.Context, w proactive.Webhook, secret string) (proactive.Webhook, error) {
	if err := validateWebhook(&w, secret); err != nil {
		return proactive.Webhook{}, err
	}
	events := make([]string, len(w.Events))
	for i, e := range w.Events {
		events[i] = string(e)
	}
	w.Created, w.Enabled = dbTime(s.clock()), true
	err := s.db.QueryRowContext(ctx, `INSERT INTO webhooks (url, events, secret, format, enabled, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		w.URL, strings.Join(events, ","), secret, w.Format, true, w.Created, w.CreatedBy).Scan(&w.ID)
	if err != nil {
		return proactive.Webhook{}, fmt.Errorf("create webhook: %w", err)
	}
	return w, nil
}

// Webhooks lists the webhooks, oldest first, without their secrets.
func (s *Store) Webhooks(ctx context.Context) ([]proactive.Webhook, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	var out []proactive.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// Webhook returns a webhook without its secret; ENotFound for none.
func (s *Store) Webhook(ctx context.Context, id int64) (proactive.Webhook, error) {
	w, err := scanWebhook(s.read.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Webhook{}, notFound("webhook", id)
	} else if err != nil {
		return proactive.Webhook{}, fmt.Errorf("read webhook: %w", err)
	}
	return w, nil
}

// EnableWebhook enables or disables a webhook and returns it. A disabled
// webhook gets no new events; those already queued for it stay queued and
// go out when it is enabled again. ENotFound for none.
func (s *Store) EnableWebhook(ctx context.Context, id int64, enabled bool) (proactive.Webhook, error) {
	ok, err := s.update(ctx, `UPDATE webhooks SET enabled = $2 WHERE id = $1`, id, enabled)
	if err != nil {
		return proactive.Webhook{}, fmt.Errorf("enable webhook: %w", err)
	} else if !ok {
		return proactive.Webhook{}, notFound("webhook", id)
	}
	return s.Webhook(ctx, id)
}

// DeleteWebhook deletes a webhook with its deliveries, pending ones
// included. ENotFound for none.
func (s *Store) DeleteWebhook(ctx context.Context, id int64) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = $1`, id); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		return rowsAffected(res, err, "webhook", id)
	})
}

// emit records an event of type typ in tx, with data (encoded as JSON) as
// its payload, and queues a delivery of it for every enabled webhook that
// subscribes to it. key orders deliveries: one webhook gets the events of
// a key in the order they were emitted. Nothing is written when no webhook
// wants the event.
func (tx *Tx) emit(ctx context.Context, typ proactive.EventType, key string, data any) error {
	return tx.emitWith(ctx, typ, key, func() (any, error) { return data, nil })
}

// emitWith is emit with a payload that build reads only when a webhook
// wants the event: a platform without webhooks does no work for it.
func (tx *Tx) emitWith(ctx context.Context, typ proactive.EventType, key string, build func() (any, error)) error {
	rows, err := tx.tx.QueryContext(ctx, `SELECT id, events FROM webhooks WHERE enabled = $1`, true)
	if err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	var hooks []int64
	for rows.Next() {
		var id int64
		var events string
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return fmt.Errorf("emit %s: %w", typ, err)
		}
		if slices.Contains(strings.Split(events, ","), string(typ)) {
			hooks = append(hooks, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	if len(hooks) == 0 {
		return nil
	}
	data, err := build()
	if err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	now := dbTime(tx.s.clock())
	var event int64
	if err := tx.tx.QueryRowContext(ctx, `INSERT INTO webhook_events (type, at, order_key, data) VALUES ($1, $2, $3, $4) RETURNING id`,
		string(typ), now, key, string(raw)).Scan(&event); err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	for _, h := range hooks {
		if _, err := tx.tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (webhook_id, event_id, order_key, state, next_attempt_at, created_at)
			VALUES ($1, $2, $3, 'pending', $4, $4)`, h, event, key, now); err != nil {
			return fmt.Errorf("emit %s: %w", typ, err)
		}
	}
	tx.onCommit(tx.s.wakeWebhooks)
	return nil
}

// Order keys of the events: a ticket's, an incident's and a customer's
// events are each delivered in order.
func ticketKey(id int64) string    { return "ticket:" + strconv.FormatInt(id, 10) }
func incidentKey(id int64) string  { return "incident:" + strconv.FormatInt(id, 10) }
func customerKey(id string) string { return "customer:" + id }

// eventID is the public id of event row id.
func eventID(id int64) string { return "evt_" + strconv.FormatInt(id, 10) }

// wakeWebhooks tells a waiting dispatcher that deliveries were queued.
func (s *Store) wakeWebhooks() {
	select {
	case s.webhookWake <- struct{}{}:
	default:
	}
}

// WebhookWake receives a value when a transaction that queued webhook
// deliveries has committed in this process, so that a dispatcher need not
// wait for its next poll. Deliveries queued by other processes are seen
// only by polling. A zero Store (no channel) never receives.
func (s *Store) WebhookWake() <-chan struct{} { return s.webhookWake }

// emitTicket emits the event of ticket t reaching its status.
func (tx *Tx) emitTicket(ctx context.Context, t proactive.Ticket) error {
	t.Timeline = nil
	return tx.emitWith(ctx, proactive.TicketEventType(t.Status), ticketKey(t.ID), func() (any, error) {
		d := proactive.TicketEventData{Ticket: t}
		if t.Status != proactive.TicketScheduled && t.Status != proactive.TicketVisited {
			return d, nil
		}
		// The booking is written before the status changes (Apply), so
		// the visit is here in the same transaction.
		a, err := scanAppointment(tx.tx.QueryRowContext(ctx, `SELECT `+appointmentColumns+` FROM appointments
			WHERE ticket_id = $1 AND status IN ('booked', 'done') ORDER BY id DESC LIMIT 1`, t.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return d, nil
		} else if err != nil {
			return nil, err
		}
		var zone string
		if err := tx.tx.QueryRowContext(ctx, `SELECT time_zone FROM devices WHERE id = $1`, string(t.Device)).Scan(&zone); err != nil &&
			!errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		loc := proactive.LoadZone(zone, time.UTC)
		d.Visit = &proactive.Visit{TechnicianID: a.Technician, Start: a.Start.UTC(), End: a.End.UTC(),
			TimeZone: loc.String(), Label: proactive.FormatLocalSpan(a.Start, a.End, loc)}
		return d, nil
	})
}

// DueDelivery is a webhook delivery as the dispatcher sends it.
type DueDelivery struct {
	ID      int64
	Webhook int64
	URL     string
	Secret  string
	Format  string
	// Event is the payload, its ID the same on every attempt.
	Event    proactive.OutboundEvent
	Attempts int
}

// WebhookDue returns, oldest first and at most limit, the pending
// deliveries of enabled webhooks due at now that are first in their
// order: no earlier delivery of the same webhook and key is pending.
func (c *conn) WebhookDue(ctx context.Context, now time.Time, limit int) ([]DueDelivery, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT d.id, d.webhook_id, w.url, w.secret, w.format, e.id, e.type, e.at, e.data, d.attempts
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id
		WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND w.enabled = $3 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
			WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key AND p.state = 'pending' AND p.id < d.id)
		ORDER BY d.id LIMIT $2`, dbTime(now), limit, true)
	if err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", err)
	}
	defer rows.Close()
	var out []DueDelivery
	for rows.Next() {
		var d DueDelivery
		var event int64
		var data string
		if err := rows.Scan(&d.ID, &d.Webhook, &d.URL, &d.Secret, &d.Format, &event, &d.Event.Type, &d.Event.Time, &data, &d.Attempts); err != nil {
			return nil, fmt.Errorf("read due deliveries: %w", err)
		}
		d.Event.ID, d.Event.Time, d.Event.Data = eventID(event), d.Event.Time.UTC(), json.RawMessage(data)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", err)
	}
	return out, nil
}

// WebhookClaim takes a due delivery for one attempt at now, counting it,
// until lease: if the process dies mid-attempt, the delivery is due again
// then. False when it was not due (another dispatcher has it).
func (c *conn) WebhookClaim(ctx context.Context, id int64, now, lease time.Time) (bool, error) {
	ok, err := c.update(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2, next_attempt_at = $3
		WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2`, id, dbTime(now), dbTime(lease))
	if err != nil {
		return false, fmt.Errorf("claim delivery: %w", err)
	}
	return ok, nil
}

// DeliveryResult is the outcome of an attempt.
type DeliveryResult struct {
	// State is delivered, dead, or pending for a retry at Next.
	State string
	Next  time.Time
	// Status is the receiver's HTTP status, 0 when none came.
	Status int
	Error  string
	At     time.Time
}

// WebhookResult records the outcome of a claimed delivery's attempt.
func (c *conn) WebhookResult(ctx context.Context, id int64, r DeliveryResult) error {
	var finished sql.NullTime
	next := r.Next
	if r.State != DeliveryPending {
		finished, next = nullTime(dbTime(r.At)), r.At
	}
	if _, err := c.update(ctx, `UPDATE webhook_deliveries SET state = $2, next_attempt_at = $3, last_status = $4, last_error = $5,
		finished_at = $6 WHERE id = $1 AND state = 'pending'`, id, r.State, dbTime(next), r.Status, clipText(r.Error, 500), finished); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

// Delivery is one event's delivery to a webhook, as its log shows it.
type Delivery struct {
	ID       int64               `json:"id"`
	EventID  string              `json:"event_id"`
	Type     proactive.EventType `json:"type"`
	State    string              `json:"state"`
	Attempts int                 `json:"attempts"`
	// LastStatus is the receiver's last HTTP status, 0 when none came.
	LastStatus  int       `json:"last_status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Created     time.Time `json:"created_at"`
	LastAttempt time.Time `json:"last_attempt_at,omitzero"`
	// NextAttempt is when a pending delivery is tried next.
	NextAttempt time.Time `json:"next_attempt_at,omitzero"`
	Finished    time.Time `json:"finished_at,omitzero"`
}

// RetryWebhookDelivery puts dead delivery id of webhook back to pending,
// its attempts reset and due now, and returns it. It keeps its event, so
// its id (receivers deduplicate by it), and its row, so its place in its
// order: the key's later deliveries still pending wait for it again, and
// those already delivered stay delivered (it arrives after them). The
// last answer stays in the log until the next attempt replaces it.
// ENotFound for no such delivery of that webhook; EConflict for one that
// is not dead.
func (s *Store) RetryWebhookDelivery(ctx context.Context, webhook, id int64) (Delivery, error) {
	ok, err := s.update(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3, finished_at = NULL
		WHERE id = $1 AND webhook_id = $2 AND state = 'dead'`, id, webhook, dbTime(s.clock()))
	if err != nil {
		return Delivery{}, fmt.Errorf("retry delivery: %w", err)
	}
	if ok {
		s.wakeWebhooks()
	}
	d, err := s.webhookDelivery(ctx, webhook, id)
	if err == nil && !ok {
		return Delivery{}, proactive.Errorf(proactive.EConflict, "delivery %d is %s, not dead: only a dead delivery can be retried", id, d.State)
	}
	return d, err
}

// webhookDelivery returns delivery id of webhook; ENotFound for none.
func (s *Store) webhookDelivery(ctx context.Context, webhook, id int64) (Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+`
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.id = $1 AND d.webhook_id = $2`, id, webhook))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, proactive.Errorf(proactive.ENotFound, "webhook %d has no delivery %d", webhook, id)
	} else if err != nil {
		return Delivery{}, fmt.Errorf("read delivery: %w", err)
	}
	return d, nil
}

const deliveryColumns = `d.id, d.event_id, e.type, d.state, d.attempts, d.last_status, d.last_error,
		d.created_at, d.last_attempt_at, d.next_attempt_at, d.finished_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var event int64
	var last, finished sql.NullTime
	if err := row.Scan(&d.ID, &event, &d.Type, &d.State, &d.Attempts, &d.LastStatus, &d.LastError,
		&d.Created, &last, &d.NextAttempt, &finished); err != nil {
		return Delivery{}, err
	}
	d.EventID, d.Created, d.LastAttempt, d.Finished = eventID(event), d.Created.UTC(), fromNull(last), fromNull(finished)
	d.NextAttempt = d.NextAttempt.UTC()
	if d.State != DeliveryPending {
		d.NextAttempt = time.Time{}
	}
	return d, nil
}

// WebhookDeliveries returns a webhook's delivery log, newest first, a page
// at a time. ENotFound for no such webhook; EInvalid for a bad cursor.
func (s *Store) WebhookDeliveries(ctx context.Context, webhook int64, opt ListOptions) (Page[Delivery], error) {
	var before int64 = 1<<63 - 1
	if opt.Cursor != "" {
		n, err := strconv.ParseInt(opt.Cursor, 10, 64)
		if err != nil || n <= 0 {
			v := newValidator("delivery log")
			v.addf("cursor", "%q is not a cursor from a previous page", clipText(opt.Cursor, 40))
			return Page[Delivery]{}, v.err()
		}
		before = n
	}
	if _, err := s.Webhook(ctx, webhook); err != nil {
		return Page[Delivery]{}, err
	}
	limit := opt.limit()
	rows, err := s.read.QueryContext(ctx, `SELECT `+deliveryColumns+`
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.webhook_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3`, webhook, before, limit+1)
	if err != nil {
		return Page[Delivery]{}, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var page Page[Delivery]
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return Page[Delivery]{}, fmt.Errorf("list deliveries: %w", err)
		}
		page.Items = append(page.Items, d)
	}
	if err := rows.Err(); err != nil {
		return Page[Delivery]{}, fmt.Errorf("list deliveries: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = strconv.FormatInt(page.Items[limit-1].ID, 10)
	}
	return page, nil
}

// PruneWebhooks deletes at most limit delivered or dead deliveries that
// finished before before, then at most limit events from before before
// that no delivery refers to any more, and returns how many of each it
// deleted. A pending delivery (retrying, or put back by a retry) is never
// deleted, nor its event. Each statement commits on its own and touches at
// most limit rows, so that a large backlog is pruned by repeated calls
// without holding a long lock; processes may prune at once (a row is
// deleted by one of them).
func (c *conn) PruneWebhooks(ctx context.Context, before time.Time, limit int) (deliveries, events int, err error) {
	// The outer conditions repeat the inner ones: on PostgreSQL a row that
	// a concurrent retry put back to pending is checked again, not deleted.
	res, err := c.write.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
			WHERE finished_at < $1 AND state IN ('delivered', 'dead') LIMIT $2)
		AND finished_at < $1 AND state IN ('delivered', 'dead')`, dbTime(before), limit)
	if err != nil {
		return 0, 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	// Only old events: a new one is written with its deliveries in one
	// transaction, and nothing queues a delivery of an old one.
	res, err = c.write.ExecContext(ctx, `DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e
		WHERE e.at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) LIMIT $2)`, dbTime(before), limit)
	if err != nil {
		return int(n), 0, fmt.Errorf("prune webhook events: %w", err)
	}
	m, err := res.RowsAffected()
	if err != nil {
		return int(n), 0, fmt.Errorf("prune webhook events: %w", err)
	}
	return int(n), int(m), nil
}
