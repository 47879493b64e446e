package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Appointment is a booked technician visit.
type Appointment = devices.Appointment

// bookedAppointment returns the ticket's latest booked visit; ENotFound
// when it has none.
func bookedAppointment(ctx context.Context, tx *devices.Tx, ticket int64) (Appointment, error) {
	return tx.BookedAppointment(ctx, ticket)
}

// Slots lists the free slots a ticket's visit could take now (up to ten,
// earliest first), from the technicians who repair its component in its
// site's area; slots held for other customers' offers are left out.
// ENotFound for no such ticket.
func (n *Notifier) Slots(ctx context.Context, ticket int64) ([]Slot, error) {
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return nil, err
	}
	techs, err := n.technicians(ctx, t.Component, p.Device.Site.PostalCode)
	if err != nil {
		return nil, err
	}
	// Showing slots decides nothing: read them on the read pool, not under
	// SQLite's one write lock (the web page's ticket view calls this).
	now := n.clock()
	busy, held, err := calendar(ctx, n.store, techs, ticket, now)
	if err != nil {
		return nil, wrap("list slots", err)
	}
	free := n.freeSlots(techs, busy, held, now)
	return free[:min(len(free), 10)], nil
}

// Book books a visit for a ticket on the customer's behalf (a dispatcher on
// the phone): technician and start of one of Slots, or another time the
// technician can keep (within a shift, not away, no other visit or offer
// then). The ticket, open or
// offered, becomes scheduled and assigned, and the customer gets the
// confirmation if they may be texted. EInvalid for a technician who does
// not repair the component or serve the site; EConflict when the slot was
// taken meanwhile, the technician cannot keep it, or the ticket cannot be
// scheduled; ENotFound for no such ticket or technician.
func (n *Notifier) Book(ctx context.Context, ticket int64, s Slot, actor string) (Appointment, error) {
	if s.Technician == "" || s.Start.IsZero() {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "a slot needs a technician and a start")
	}
	if s.End.IsZero() {
		s.End = s.Start.Add(n.opt.SlotLength)
	}
	if !s.End.After(s.Start) {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "the slot ends before it starts")
	}
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	tech, err := n.eligible(ctx, s.Technician, t, p)
	if err != nil {
		return Appointment{}, err
	}
	var a Appointment
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		// A slot the dispatcher types must be one the technician can
		// keep: within a shift, not away, not offered to someone else.
		if why, err := n.busyFor(ctx, tx, tech, Appointment{Ticket: ticket, Start: s.Start, End: s.End}); err != nil {
			return err
		} else if why != "" {
			return proactive.Errorf(proactive.EConflict, "technician %s cannot come %s: %s", s.Technician,
				proactive.FormatLocalSpan(s.Start, s.End, n.zone(p.Device.TimeZone)), why)
		}
		if t.Status == proactive.TicketOpen || t.Status == proactive.TicketReview {
			// Booked by phone: no offer was sent, so no conversation
			// exists yet to confirm through.
			_, err := readConversation(ctx, tx, ticket)
			if proactive.ErrorCode(err) == proactive.ENotFound && p.Customer.ID != "" {
				if err := tx.StartScheduledOutreach(ctx, ticket, p.Customer.ID, p.Device.ID, t.OpenedAt, n.clock()); err != nil {
					return err
				}
			} else if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
				return err
			}
		}
		var err error
		a, err = n.book(ctx, tx, t, p, s, actor)
		if errors.Is(err, errSlotTaken) {
			return proactive.Errorf(proactive.EConflict, "technician %s is no longer free %s", s.Technician,
				proactive.FormatLocalSpan(s.Start, s.End, n.zone(p.Device.TimeZone)))
		}
		return err
	})
	if err != nil {
		return Appointment{}, wrap("book visit", err)
	}
	n.notifyWake()
	return a, nil
}

// Reassign moves a ticket's upcoming booked visit, at the same time, to
// another technician and assigns the ticket to them, in one transaction;
// the move is on the ticket's timeline (a note naming both technicians, and
// the assignment). The technician must repair the ticket's component, serve
// the device's site, and be free at the visit's time: within one of their
// shifts, not away, with no other visit within TravelBuffer of it and no
// slot held for another customer's offer overlapping it. Moving a visit to
// its own technician only makes sure the ticket is theirs.
//
// EInvalid for a technician who does not repair the component or serve the
// site; EConflict when they are not free, or when the visit has already
// begun; ENotFound for no such ticket or technician, or a ticket without a
// booked visit.
func (n *Notifier) Reassign(ctx context.Context, ticket int64, technician, actor string) (Appointment, error) {
	technician, actor = strings.TrimSpace(technician), strings.TrimSpace(actor)
	if technician == "" || actor == "" {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "a reassignment needs a technician and an actor")
	}
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	tech, err := n.eligible(ctx, technician, t, p)
	if err != nil {
		return Appointment{}, err
	}
	now := n.clock()
	var a Appointment
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		var err error
		a, err = bookedAppointment(ctx, tx, ticket)
		if err != nil {
			return err
		}
		if !a.Start.After(now) {
			return proactive.Errorf(proactive.EConflict, "the visit of ticket %d began at %s: it can no longer move", ticket,
				proactive.FormatLocal(a.Start, n.zone(p.Device.TimeZone), "Mon 2 Jan 15:04"))
		}
		if a.Technician == technician {
			_, err := tx.Assign(ctx, ticket, technician, actor)
			return err
		}
		// Two moves to one technician wait for each other here, so that
		// the second sees the first's visit.
		if err := tx.LockTechnician(ctx, technician); err != nil {
			return err
		}
		if why, err := n.busyFor(ctx, tx, tech, a); err != nil {
			return err
		} else if why != "" {
			return proactive.Errorf(proactive.EConflict, "technician %s is not free %s: %s", technician,
				proactive.FormatLocalSpan(a.Start, a.End, n.zone(p.Device.TimeZone)), why)
		}
		if err := tx.MoveAppointment(ctx, a.ID, technician); err != nil {
			if errors.Is(err, devices.ErrDuplicate) { // a booking at the same start committed meanwhile
				return proactive.Errorf(proactive.EConflict, "technician %s was booked %s meanwhile", technician,
					proactive.FormatLocalSpan(a.Start, a.End, n.zone(p.Device.TimeZone)))
			}
			return err
		}
		from := a.Technician
		a.Technician = technician
		text := fmt.Sprintf("Visit %s moved from %s to %s", formatSlot("en", a.Start, a.End, n.zone(p.Device.TimeZone)), from, technician)
		if _, err := tx.Record(ctx, ticket, proactive.TicketEventComment, actor, map[string]any{"text": text,
			"appointment": a.ID, "from": from, "to": technician}); err != nil {
			return err
		}
		_, err = tx.Assign(ctx, ticket, technician, actor)
		return err
	})
	if err != nil {
		return Appointment{}, wrap("reassign visit", err)
	}
	return a, nil
}

// eligible returns the technician when they repair the ticket's component
// and serve its device's site: EInvalid otherwise, ENotFound for no such
// technician.
func (n *Notifier) eligible(ctx context.Context, technician string, t proactive.Ticket, p party) (proactive.Technician, error) {
	tech, err := n.store.GetTechnician(ctx, technician)
	if err != nil {
		return proactive.Technician{}, err
	}
	if !slices.Contains(tech.Skills, t.Component) {
		return proactive.Technician{}, proactive.Errorf(proactive.EInvalid, "technician %s does not repair the %s", technician, t.Component)
	}
	if !tech.Serves(p.Device.Site.PostalCode) {
		return proactive.Technician{}, proactive.Errorf(proactive.EInvalid, "technician %s does not serve postal code %q, the site of %s",
			technician, p.Device.Site.PostalCode, t.Device)
	}
	return tech, nil
}

// busyFor says why tech cannot make visit a (another technician's), or ""
// when they are free for it.
func (n *Notifier) busyFor(ctx context.Context, tx *devices.Tx, tech proactive.Technician, a Appointment) (string, error) {
	loc := n.zone(tech.TimeZone)
	start, end := a.Start.In(loc), a.End.In(loc)
	inShift := false
	if start.Year() == end.Year() && start.YearDay() == end.YearDay() {
		from, to := start.Hour()*60+start.Minute(), end.Hour()*60+end.Minute()
		for _, sh := range tech.Hours[start.Weekday()] {
			if int(sh.Start) <= from && to <= int(sh.End) {
				inShift = true
			}
		}
	}
	switch {
	case !inShift:
		return "outside their working hours", nil
	case away(tech, a.Start, a.End):
		return "away", nil
	}
	visits, err := tx.TechnicianVisits(ctx, tech.ID, a.ID, a.Start.Add(-n.opt.TravelBuffer), a.End.Add(n.opt.TravelBuffer))
	if err != nil {
		return "", err
	}
	if visits > 0 {
		return "another visit then", nil
	}
	held, err := tx.TechnicianHolds(ctx, tech.ID, a.Ticket, n.clock(), a.Start, a.End)
	if err != nil {
		return "", err
	}
	if held > 0 {
		return "the time is offered to another customer", nil
	}
	return "", nil
}

// VisitDone records that the technician made a ticket's booked visit, with
// its outcome and notes. The ticket becomes visited and the customer gets
// the satisfaction question; their answer, or SurveyTimeout without one,
// closes the ticket with this outcome. A customer who may not be texted
// gets no question and the ticket closes at once. technician, when not
// empty, must be the visit's (EForbidden otherwise); ENotFound when the
// ticket has no booked visit. The timeline names technician as the actor,
// or "dispatcher" when it is empty; VisitDoneBy names the acting user.
func (n *Notifier) VisitDone(ctx context.Context, ticket int64, technician string, outcome proactive.Outcome, notes string) (Appointment, error) {
	return n.VisitDoneBy(ctx, ticket, technician, outcome, notes, "")
}

// VisitDoneBy is VisitDone recording actor (the authenticated user, such as
// a token's name) on the ticket's timeline as who did it. An empty actor
// falls back to VisitDone's: technician, else "dispatcher".
func (n *Notifier) VisitDoneBy(ctx context.Context, ticket int64, technician string, outcome proactive.Outcome, notes, actor string) (Appointment, error) {
	if !outcome.Valid() {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "outcome %q is not fault_confirmed, no_fault_found or part_replaced", outcome)
	}
	if utf8.RuneCountInString(notes) > 2000 {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "notes are longer than 2000 characters")
	}
	if utf8.RuneCountInString(actor) > 100 {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "actor is longer than 100 characters")
	}
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	actor = strings.TrimSpace(actor)
	if actor == "" {
		actor = technician
	}
	if actor == "" {
		actor = "dispatcher"
	}
	now := n.clock()
	var a Appointment
	visits := 0 // the ticket's visits, counted when this one fixed the fault
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		var err error
		a, err = bookedAppointment(ctx, tx, ticket)
		if err != nil {
			return err
		}
		if technician != "" && technician != a.Technician {
			return proactive.Errorf(proactive.EForbidden, "the visit of ticket %d is technician %s's", ticket, a.Technician)
		}
		if err := tx.AppointmentDone(ctx, a.ID, now, outcome, notes); err != nil {
			return err
		}
		a.Status, a.DoneAt, a.Outcome, a.Notes = "done", now, outcome, notes
		if fixOutcome(outcome) {
			if visits, err = tx.DoneVisits(ctx, ticket); err != nil {
				return err
			}
		}
		if _, err := tx.Transition(ctx, ticket, proactive.TicketVisited, actor, "visit done: "+string(outcome)); err != nil {
			return err
		}
		if err := cancelJobs(ctx, tx, ticket, now, jobVisitReminder); err != nil {
			return err
		}
		_, convErr := readConversation(ctx, tx, ticket)
		if convErr != nil && proactive.ErrorCode(convErr) != proactive.ENotFound {
			return convErr
		}
		if convErr != nil || !p.reachable() {
			_, err := tx.CloseTicket(ctx, ticket, outcome, notes, actor)
			if convErr == nil {
				err = errors.Join(err, setStage(ctx, tx, ticket, stageDone, now))
			}
			return err
		}
		if err := setStage(ctx, tx, ticket, stageSurvey, now); err != nil {
			return err
		}
		// The satisfaction question gets its own clarifying answers,
		// whatever the offer used.
		if err := tx.ResetClarifications(ctx, ticket); err != nil {
			return err
		}
		text, err := n.render(p.Customer.Language, KindSurvey, p.data())
		if err != nil {
			return err
		}
		if _, err := n.enqueue(ctx, tx, p, ticket, KindSurvey, text, false); err != nil {
			return err
		}
		return schedule(ctx, tx, jobSurveyTimeout, ticket, now.Add(n.opt.SurveyTimeout))
	})
	if err != nil {
		return Appointment{}, wrap("record visit", err)
	}
	if visits > 0 {
		n.outcomes.fixed(t.Rule, p.Device.Model, visits, now.Sub(t.OpenedAt))
	}
	n.notifyWake()
	return a, nil
}

// SendMessage queues a dispatcher's free text to a ticket's customer, with
// the opt-out line; it obeys quiet hours and the daily cap like an offer.
// It returns the outbox message's id. EInvalid for an empty or too long
// text, EConflict when the customer may not be texted.
func (n *Notifier) SendMessage(ctx context.Context, ticket int64, actor, text string) (int64, error) {
	text = strings.TrimSpace(text)
	if text == "" || strings.TrimSpace(actor) == "" {
		return 0, proactive.Errorf(proactive.EInvalid, "a message needs a text and an actor")
	}
	p, err := n.partyOfTicket(ctx, ticket)
	if err != nil {
		return 0, err
	}
	if !p.reachable() {
		return 0, proactive.Errorf(proactive.EConflict, "the customer of ticket %d may not be sent messages on %s", ticket, p.channel())
	}
	body, err := n.render(p.Customer.Language, KindDispatch, msgData{Text: text})
	if err != nil {
		return 0, proactive.Errorf(proactive.EInvalid, "the text is too long: with the opt-out line a message holds %d characters", MaxBody)
	}
	var id int64
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if _, err := tx.Comment(ctx, ticket, actor, "SMS to customer: "+text); err != nil {
			return err
		}
		var err error
		id, err = n.enqueue(ctx, tx, p, ticket, KindDispatch, body, false)
		return err
	})
	if err != nil {
		return 0, wrap("send message", err)
	}
	n.notifyWake()
	return id, nil
}

// AppointmentFilter narrows Appointments; see devices.AppointmentFilter.
type AppointmentFilter = devices.AppointmentFilter

// AppointmentCursor names a in a listing, for AppointmentFilter.After.
func AppointmentCursor(a Appointment) string { return devices.AppointmentCursor(a) }

// Appointments lists visits, earliest first (at most 1000). EInvalid for a
// malformed After.
func (n *Notifier) Appointments(ctx context.Context, f AppointmentFilter) ([]Appointment, error) {
	return n.store.Appointments(ctx, f)
}

// OutboundMessage is an outbox message as the API shows it.
type OutboundMessage = devices.OutboundMessage

// Messages lists the outgoing messages of a ticket, oldest first; ticket 0
// lists those of a customer outside any ticket (customer must be given).
func (n *Notifier) Messages(ctx context.Context, ticket int64, customer string) ([]OutboundMessage, error) {
	return n.store.OutboundMessages(ctx, ticket, customer)
}

// Conversation is a ticket's SMS conversation state.
type Conversation struct {
	Ticket   int64  `json:"ticket_id"`
	Customer string `json:"customer_id"`
	// Stage is offer, scheduled, survey (the satisfaction question), nps,
	// ces or done.
	Stage string `json:"stage"`
	// Offer counts the offers sent (a taken slot makes a new one).
	Offer int `json:"offer"`
	// Slots are the current offer's.
	Slots []Slot `json:"slots,omitempty"`
	// CSAT is the 1–5 answer to the satisfaction question, 0 without one.
	CSAT int `json:"csat,omitempty"`
	// NPS (0–10) and CES (1–5) are the answers to the loyalty and effort
	// questions, nil without one.
	NPS *int `json:"nps,omitempty"`
	CES *int `json:"ces,omitempty"`
}

// Conversation returns a ticket's conversation; ENotFound when the ticket
// has none (its customer was not texted).
func (n *Notifier) Conversation(ctx context.Context, ticket int64) (Conversation, error) {
	var c Conversation
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		conv, err := readConversation(ctx, tx, ticket)
		if err != nil {
			return err
		}
		c = Conversation{Ticket: ticket, Customer: conv.Customer, Stage: conv.Stage, Offer: conv.Offer}
		if c.CSAT, err = tx.SurveyAnswer(ctx, ticket); err != nil {
			return err
		}
		scores, err := tx.SurveyScores(ctx, ticket)
		if err != nil {
			return err
		}
		if v, ok := scores[proactive.SurveyNPS]; ok {
			c.NPS = &v
		}
		if v, ok := scores[proactive.SurveyCES]; ok {
			c.CES = &v
		}
		c.Slots, err = offerSlots(ctx, tx, ticket, conv.Offer)
		return err
	})
	return c, wrap("read conversation", err)
}
