package notify

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The customer page behind a link ({public_url}/c/{code}): what it shows
// of one ticket, and its actions, which are decided by the same code as
// the SMS replies (decide) and written the same way, marked as made on the
// page.

// PageHorizon is how far ahead the customer page lists free slots.
const PageHorizon = 14 * 24 * time.Hour

// A link opens its ticket's page while the ticket is active: from the
// offer to the visit and its survey. A declined or expired offer's page
// stays open for followUpWindow, as an SMS reply would still reach a
// person then, and offers only a call; a visit the customer cancelled
// shows that it is cancelled, for as long. A closed ticket's links, and
// any after that, answer ENotFound, as an unknown code does.

// The customer page's actions.
const (
	PageBook   = "book"   // book Slot (or, once booked, move the visit there)
	PageCall   = "call"   // ask for a call back, as CALL does
	PageNo     = "no"     // decline the offer, as NO does
	PageCancel = "cancel" // cancel the booked visit
)

// CustomerPage is what a customer link shows: one ticket, from its
// customer's side. It holds no staff data.
type CustomerPage struct {
	// Language is the customer's, among those the messages speak (en, fr).
	Language string
	Brand    string
	// Contact is how to reach the service (the HELP answer's).
	Contact string
	// Status is the ticket's; Stage its conversation's (offer, scheduled,
	// survey, done).
	Status proactive.TicketStatus
	Stage  string
	// Device is the device by the name its customer knows, else its model.
	Device string
	// Component is the failing part, in the customer's language.
	Component string
	// Forecast is how soon it may fail ("about 5 days"), in the customer's
	// language; empty without a prediction, or when the time is past.
	Forecast string
	// Location is the site's time zone: every time is shown in it.
	Location *time.Location
	// Visit is the booked visit, nil when none is.
	Visit *Appointment
	// Offered are the slots the SMS offer named, by position; Free every
	// free slot of the next PageHorizon, one per start time, earliest first.
	Offered []Slot
	Free    []Slot
	// Actions are those the page offers now (PageBook, ...).
	Actions []string
	// FollowUp is set while a person is to call the customer.
	FollowUp bool
}

// Can reports whether the page offers action.
func (p CustomerPage) Can(action string) bool { return slices.Contains(p.Actions, action) }

// pageState is a link's ticket as the page and its actions read it.
type pageState struct {
	replyState
	page CustomerPage
}

// CustomerPage reads what a customer link shows. ENotFound for a code that
// is malformed, unknown, or whose ticket is no longer active.
func (n *Notifier) CustomerPage(ctx context.Context, code string) (CustomerPage, error) {
	st, err := n.readPage(ctx, code)
	return st.page, err
}

// errNoPage is the one answer for every link that opens nothing, so that
// the answer tells an unknown code from an old one to nobody.
var errNoPage = proactive.Errorf(proactive.ENotFound, "this link is not valid, or no longer")

func (n *Notifier) readPage(ctx context.Context, code string) (pageState, error) {
	if !validCode(code) {
		return pageState{}, errNoPage
	}
	id, err := n.store.LinkTicket(ctx, linkHash(code))
	if err != nil {
		return pageState{}, notFoundAs(err)
	}
	t, p, err := n.ticketParty(ctx, id)
	if err != nil {
		return pageState{}, notFoundAs(err)
	}
	now := n.clock()
	ended := t.Status == proactive.TicketDeclined || t.Status == proactive.TicketExpired || t.Status == proactive.TicketCancelled
	if t.Status == proactive.TicketClosed || p.Customer.ID == "" || ended && now.Sub(t.UpdatedAt) >= followUpWindow {
		return pageState{}, errNoPage
	}
	conv, slots, err := n.store.TicketConversation(ctx, id)
	if err != nil {
		return pageState{}, notFoundAs(err)
	}
	st := pageState{replyState: replyState{Customer: p.Customer, Ticket: t, Party: p}}
	cc := &st.Conversations
	if conv.Stage == stageDone {
		cc.Ended, cc.EndedFound = conv, true
	} else {
		cc.Active, cc.Found, cc.Slots, cc.Open = conv, true, slots, []int64{id}
	}
	lang := baseLanguage(p.Customer.Language)
	pg := CustomerPage{Language: lang, Brand: n.opt.Brand, Contact: n.opt.HelpContact, Status: t.Status, Stage: conv.Stage,
		Device: p.data().Product, Component: componentName(lang, t.Component), Location: n.zone(p.Device.TimeZone),
		Offered: toSlots(slots), FollowUp: t.FollowUp != nil}
	if !t.PredictedFailure.IsZero() && t.PredictedFailure.After(now) {
		pg.Forecast = formatForecast(lang, t.PredictedFailure.Sub(now))
	}
	apps, err := n.store.Appointments(ctx, AppointmentFilter{Ticket: id})
	if err != nil {
		return pageState{}, err
	}
	for i := range apps {
		if apps[i].Status == "booked" {
			pg.Visit = &apps[i]
		}
	}
	st.Visit = pg.Visit
	switch {
	case conv.Stage == stageOffer && t.Status == proactive.TicketOffered:
		pg.Actions = []string{PageBook, PageCall, PageNo}
	case conv.Stage == stageScheduled && t.Status == proactive.TicketScheduled:
		pg.Actions = []string{PageBook, PageCancel, PageCall}
	case cc.Found:
		pg.Actions = []string{PageCall}
	case afterOffer(t, now):
		pg.Actions = []string{PageCall} // a person calls, as after an SMS reply
	}
	if pg.Can(PageBook) {
		if pg.Free, err = n.pageSlots(ctx, t, p, now); err != nil {
			return pageState{}, err
		}
	}
	st.page = pg
	return st, nil
}

// notFoundAs turns a missing row behind a link into errNoPage.
func notFoundAs(err error) error {
	if proactive.ErrorCode(err) == proactive.ENotFound {
		return errNoPage
	}
	return err
}

// pageSlots lists every free slot of the next PageHorizon for ticket t,
// one per start time (the customer picks a time, not a technician); the
// ticket's own held slots are among them.
func (n *Notifier) pageSlots(ctx context.Context, t proactive.Ticket, p party, now time.Time) ([]Slot, error) {
	techs, err := n.technicians(ctx, t.Component, p.Device.Site.PostalCode)
	if err != nil {
		return nil, err
	}
	busy, held, err := calendar(ctx, n.store, techs, t.ID, now)
	if err != nil {
		return nil, wrap("list slots", err)
	}
	free := n.freeSlotsWithin(techs, busy, held, now, PageHorizon)
	return slices.CompactFunc(free, func(a, b Slot) bool { return a.Start.Equal(b.Start) }), nil
}

// CustomerAct does what the customer chose on their page, as the SMS
// reply would: PageBook books slot s (one of the page's Free) or moves the
// booked visit there, PageCall asks for a call, PageNo declines the offer,
// PageCancel cancels the booked visit. ENotFound as CustomerPage;
// EConflict for an action the page does not offer now, or a slot taken
// meanwhile (the page then shows the others: no new offer is texted).
func (n *Notifier) CustomerAct(ctx context.Context, code, action string, s Slot) error {
	st, err := n.readPage(ctx, code)
	if err != nil {
		return err
	}
	if !st.page.Can(action) {
		return proactive.Errorf(proactive.EConflict, "this can no longer be done here")
	}
	r := parsedReply{Page: true}
	var body string
	switch action {
	case PageBook:
		i := slices.IndexFunc(st.page.Free, func(f Slot) bool { return f.Start.Equal(s.Start) })
		if i < 0 {
			return proactive.Errorf(proactive.EConflict, "that time is no longer free")
		}
		r.Kind, r.Slot = replySlot, st.page.Free[i]
		body = "book " + formatSlot(st.Customer.Language, r.Slot.Start, r.Slot.End, st.page.Location)
	case PageCall:
		r.Kind, r.Keyword, body = replyCall, "CALL", "CALL"
	case PageNo:
		r.Kind, r.Keyword, body = replyNo, "NO", "NO"
	case PageCancel:
		r.Kind, body = replyCancel, "cancel the visit"
	}
	d, err := n.decide(st.replyState, "", body, r, n.clock())
	if err != nil {
		return err
	}
	if d.Reoffer && d.Change.Book == nil {
		return proactive.Errorf(proactive.EConflict, "that time has passed")
	}
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		_, err := tx.Apply(ctx, d.Change)
		return err
	})
	if errors.Is(err, devices.ErrSlotTaken) {
		n.metrics.slotTaken.Inc()
		return proactive.Errorf(proactive.EConflict, "that time was just taken")
	}
	if err != nil {
		return wrap("customer page action", err)
	}
	n.metrics.inbound.WithLabelValues("page_" + d.Metric).Inc()
	n.notifyWake()
	return nil
}

// Contact is how a customer reaches the service: the brand and the HELP
// answer's contact, for pages that show no customer data.
func (n *Notifier) Contact() (brand, contact string) { return n.opt.Brand, n.opt.HelpContact }
