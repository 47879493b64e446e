package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// A replay runs a backtest's alerts through the notifier's own decision
// code in data time: a throwaway store holds the registry, the clock stands
// at each alert's time, and a sender records instead of texting. What it
// counts is what the live pipeline would have made of the alerts: tickets
// (cooldowns, absorption) and offers sent (contact policy, incidents,
// group_wait, contact cooldown, consent, daily cap, quiet hours).

// ReplayOptions configure Replay. Zero fields get the defaults noted.
type ReplayOptions struct {
	// Notify configures the notifier as the platform's configuration does
	// live; Replay sets its Store, Sender, Now and Registerer.
	Notify Options
	// Registry, when set, is the platform's store: its devices and their
	// customers (with their consent and quiet hours) are copied into the
	// replay's store. Technicians are not: slots change what an offer
	// says, not whether it is sent.
	Registry *devices.Store
	// Fleet lists devices with their models ("" unknown). Those and the
	// alerts' devices that the registry does not have are registered with
	// a customer of their own who consents to SMS, so that texts are
	// counted as if every customer could be reached.
	Fleet map[proactive.DeviceID]string
	// To is the end of the period: due jobs and messages run up to it.
	To time.Time
	// True, when set, says whether an alert was true (a failure followed):
	// what a dispatcher or a visit finds of its ticket (see HandleAfter).
	True func(proactive.Alert) bool
	// HandleAfter is how long after its alert a ticket that waits for a
	// person is handled, default 24h; Off leaves every ticket as the
	// notifier left it. With True, every ticket still active then is
	// settled as its truth says: a true one visited and closed with
	// fault_confirmed, a false one dismissed as a false alarm (one
	// offered: visited, no_fault_found), which the rule's measured trust
	// counts; without True, tickets open or in review are cancelled and
	// offered ones left to expire. Without handling, an open ticket would
	// absorb all the later alerts of its device.
	HandleAfter time.Duration
	// Step is the most the clock moves between two polls of due jobs and
	// messages (offer expiries, quiet hours' ends), default 1h.
	Step time.Duration
	// Dir is where the throwaway database goes, a temporary directory by
	// default (removed at the end).
	Dir string
}

// ReplayTicket is a ticket a replay opened.
type ReplayTicket struct {
	ID        int64
	Rule      string
	Device    proactive.DeviceID
	Component string
	// FiredAt is the time of the alert that opened it.
	FiredAt time.Time
	// Status is where it ended, Held why its offer was held ("" when it
	// was not), Incident its incident (0 for none).
	Status   proactive.TicketStatus
	Held     string
	Incident int64
	// Texted is set when its offer was sent.
	Texted bool
}

// ReplayResult is what a replay made of the alerts.
type ReplayResult struct {
	// Tickets are the tickets opened, in the order they opened.
	Tickets []ReplayTicket
	// Copied counts the devices copied from the registry, Synthetic those
	// registered with a consenting customer of their own.
	Copied, Synthetic int
}

// replayClock is the notifier's and the store's clock in a replay.
type replayClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *replayClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *replayClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Replay feeds the firing alerts, in time order, to a notifier on a
// throwaway store, its clock at each alert's time, and reports the tickets
// it opened and whether each texted its customer. Before each alert the
// clock steps through the time since the last one (ReplayOptions.Step),
// running due jobs, sending due messages and handling waiting tickets
// (HandleAfter); once more at To.
//
// An alert's age is then 0: the live MaxAlertAge holds back alerts that
// reach the notifier late, which alerts replayed at their own time never
// do.
func Replay(ctx context.Context, alerts []proactive.Alert, o ReplayOptions) (ReplayResult, error) {
	if o.HandleAfter == 0 {
		o.HandleAfter = 24 * time.Hour
	}
	if o.Step <= 0 {
		o.Step = time.Hour
	}
	var firing []proactive.Alert
	for _, a := range alerts {
		if a.State == proactive.AlertFiring && !a.FiredAt.IsZero() {
			firing = append(firing, a)
		}
	}
	slices.SortStableFunc(firing, func(a, b proactive.Alert) int { return a.FiredAt.Compare(b.FiredAt) })

	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "proactive-replay-")
		if err != nil {
			return ReplayResult{}, fmt.Errorf("replay: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	clock := &replayClock{t: laterOf(time.Now().UTC(), o.To)} // the registry is written "now"
	store, err := devices.OpenOptions(ctx, filepath.Join(dir, "replay.db"), devices.Options{Now: clock.now})
	if err != nil {
		return ReplayResult{}, fmt.Errorf("replay: open its database: %w", err)
	}
	defer store.Close()
	var res ReplayResult
	if res.Copied, res.Synthetic, err = registerFleet(ctx, store, o.Registry, o.Fleet, firing); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: registry: %w", err)
	}

	no := o.Notify
	no.Store, no.Now, no.Registerer, no.fixedRegistry = store, clock.now, nil, true
	no.Sender = SenderFunc(func(_ context.Context, m Message) (Receipt, error) {
		return Receipt{SID: "replay-" + strconv.FormatInt(m.ID, 10), Status: "sent"}, nil
	})
	r := &replayer{n: New(no), store: store, clock: clock, o: o}
	for _, a := range firing {
		if err := r.advance(ctx, a.FiredAt); err != nil {
			return ReplayResult{}, err
		}
		r.n.Alerts(ctx, []proactive.Alert{a})
		r.opened = append(r.opened, a.FiredAt)
		if err := ctx.Err(); err != nil {
			return ReplayResult{}, fmt.Errorf("replay: %w", err)
		}
	}
	if len(firing) > 0 && o.To.After(r.last) {
		if err := r.advance(ctx, o.To); err != nil {
			return ReplayResult{}, err
		}
	}
	if res.Tickets, err = r.tickets(ctx); err != nil {
		return ReplayResult{}, fmt.Errorf("replay: read its tickets: %w", err)
	}
	return res, nil
}

// replayer is one replay's notifier and clock.
type replayer struct {
	n     *Notifier
	store *devices.Store
	clock *replayClock
	o     ReplayOptions
	last  time.Time // the last poll, zero before the first
	// opened are the times of the alerts fed and not yet handled, in
	// order: a ticket opens only at an alert's time, so there is nothing
	// to handle before the first of them is HandleAfter old.
	opened []time.Time
}

// advance moves the clock to t in steps of at most Step, polling and
// handling tickets at each.
func (r *replayer) advance(ctx context.Context, t time.Time) error {
	if !r.last.IsZero() {
		for next := r.last.Add(r.o.Step); next.Before(t); next = next.Add(r.o.Step) {
			if err := r.tick(ctx, next); err != nil {
				return err
			}
		}
	}
	if t.Equal(r.last) {
		return nil
	}
	return r.tick(ctx, t)
}

func (r *replayer) tick(ctx context.Context, t time.Time) error {
	r.clock.set(t)
	r.last = t
	if err := r.n.Poll(ctx); err != nil {
		return fmt.Errorf("replay: poll at %s: %w", t.Format(time.RFC3339), err)
	}
	if err := r.handle(ctx, t); err != nil {
		return fmt.Errorf("replay: handle tickets at %s: %w", t.Format(time.RFC3339), err)
	}
	return nil
}

// replayActor is who handles tickets in a replay.
const replayActor = "backtest"

// handle settles the tickets that have waited HandleAfter (see
// ReplayOptions.HandleAfter).
func (r *replayer) handle(ctx context.Context, now time.Time) error {
	if r.o.HandleAfter < 0 {
		return nil
	}
	cutoff := now.Add(-r.o.HandleAfter)
	i := 0
	for i < len(r.opened) && r.opened[i].Before(cutoff) {
		i++
	}
	if i == 0 {
		return nil
	}
	r.opened = r.opened[i:]
	status := []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketReview}
	if r.o.True != nil {
		status = append(status, proactive.TicketOffered)
	}
	for {
		page, err := r.store.ListTickets(ctx, devices.TicketFilter{Status: status, OpenedBefore: cutoff,
			ListOptions: devices.ListOptions{Limit: 500}})
		if err != nil || len(page.Items) == 0 {
			return err
		}
		for _, t := range page.Items {
			if err := r.settle(ctx, t); err != nil {
				return fmt.Errorf("ticket %d: %w", t.ID, err)
			}
		}
	}
}

// settle ends one waiting ticket as a dispatcher or a visit would.
func (r *replayer) settle(ctx context.Context, t proactive.Ticket) error {
	const note = "replay: handled by the backtest"
	if r.o.True == nil {
		_, err := r.store.Transition(ctx, t.ID, proactive.TicketCancelled, replayActor, note)
		return err
	}
	at := t.FiredAt
	if at.IsZero() {
		at = t.OpenedAt
	}
	truth := r.o.True(proactive.Alert{Rule: t.Rule, Device: t.Device, Component: t.Component, FiredAt: at})
	if !truth && t.Status != proactive.TicketOffered {
		_, err := r.n.Dismiss(ctx, t.ID, replayActor, note)
		return err
	}
	for _, to := range []proactive.TicketStatus{proactive.TicketScheduled, proactive.TicketVisited} {
		if _, err := r.store.Transition(ctx, t.ID, to, replayActor, note); err != nil {
			return err
		}
	}
	outcome := proactive.OutcomeFaultConfirmed
	if !truth {
		outcome = proactive.OutcomeNoFaultFound
	}
	_, err := r.store.CloseTicket(ctx, t.ID, outcome, note, replayActor)
	return err
}

// tickets reads every ticket of the replay, oldest first, with whether its
// offer was sent.
func (r *replayer) tickets(ctx context.Context) ([]ReplayTicket, error) {
	var all []proactive.Ticket
	cursor := ""
	for {
		page, err := r.store.ListTickets(ctx, devices.TicketFilter{ListOptions: devices.ListOptions{Limit: 500, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	slices.SortFunc(all, func(a, b proactive.Ticket) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]ReplayTicket, 0, len(all))
	for _, t := range all {
		msgs, err := r.store.OutboundMessages(ctx, t.ID, "")
		if err != nil {
			return nil, err
		}
		rt := ReplayTicket{ID: t.ID, Rule: t.Rule, Device: t.Device, Component: t.Component, FiredAt: t.FiredAt,
			Status: t.Status, Held: t.HeldReason, Incident: t.IncidentID}
		for _, m := range msgs {
			rt.Texted = rt.Texted || m.Kind == KindOffer && m.Status == statusSent
		}
		out = append(out, rt)
	}
	return out, nil
}

// registerFleet writes the devices into the replay's store through the
// registry's import (devices.Import, in batches): the registry's own, with
// their customers, and every other device of fleet or alerts with a
// customer of its own who consents to SMS.
func registerFleet(ctx context.Context, store, registry *devices.Store, fleet map[proactive.DeviceID]string,
	alerts []proactive.Alert) (copied, synthetic int, err error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"device_id", "model", "serial", "customer_id", "customer_name", "customer_phone", "customer_language",
		"customer_quiet_hours", "sms_consent", "site_postal_code", "site_country", "time_zone", "installed_on"})
	known := map[proactive.DeviceID]bool{}
	if registry != nil {
		customers := map[string]proactive.Customer{}
		for cursor := ""; ; {
			page, err := registry.ListCustomers(ctx, devices.ListOptions{Limit: 500, Cursor: cursor})
			if err != nil {
				return 0, 0, err
			}
			for _, c := range page.Items {
				customers[c.ID] = c
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		for cursor := ""; ; {
			page, err := registry.ListDevices(ctx, devices.DeviceFilter{ListOptions: devices.ListOptions{Limit: 500, Cursor: cursor}})
			if err != nil {
				return 0, 0, err
			}
			for _, d := range page.Items {
				known[d.ID] = true
				row := []string{string(d.ID), d.Model, d.Serial, "", "", "", "", "", "", d.Site.PostalCode, d.Site.Country, d.TimeZone, ""}
				if !d.Installed.IsZero() {
					row[12] = d.Installed.Format(time.DateOnly)
				}
				if c, ok := customers[d.CustomerID]; ok {
					row[3], row[4], row[5], row[6] = c.ID, c.Name, c.Phone, c.Language
					row[7] = quietHours(c.QuietHours)
					if c.SMSConsent || !c.ConsentAt.IsZero() {
						row[8] = strconv.FormatBool(c.SMSConsent) // else never asked: no consent, not opted out
					}
				}
				_ = w.Write(row)
				copied++
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
	}
	models := map[proactive.DeviceID]string{}
	for id, m := range fleet {
		models[id] = m
	}
	for _, a := range alerts {
		if models[a.Device] == "" {
			models[a.Device] = a.Model
		}
	}
	ids := make([]proactive.DeviceID, 0, len(models))
	for id := range models {
		if !known[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i, id := range ids {
		model := cmp.Or(models[id], "unknown")
		c := fmt.Sprintf("replay-%d", i+1)
		_ = w.Write([]string{string(id), model, "", c, "replay customer of " + string(id), fmt.Sprintf("+1555%07d", i+1), "en",
			"", "true", "", "", "UTC", ""})
		synthetic++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, 0, err
	}
	rep, err := devices.Import(ctx, store, &b, nil)
	if err != nil {
		return 0, 0, err
	}
	if len(rep.Rejected) > 0 {
		var errs []error
		for i, r := range rep.Rejected {
			if i == 5 {
				errs = append(errs, fmt.Errorf("and %d more", len(rep.Rejected)-i))
				break
			}
			errs = append(errs, errors.New(r.String()))
		}
		return 0, 0, fmt.Errorf("%d device(s) not registered: %w", len(rep.Rejected), errors.Join(errs...))
	}
	return copied, synthetic, nil
}

// quietHours writes q as the import reads it.
func quietHours(q *proactive.QuietHours) string {
	switch {
	case q == nil:
		return ""
	case q.Start == q.End:
		return "none"
	}
	return q.Start.String() + "-" + q.End.String()
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
