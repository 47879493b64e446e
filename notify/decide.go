package notify

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The conversation as decisions: what a customer's reply or an alert
// changes is decided here from the state read beforehand, without I/O, and
// written by one devices.Tx.Apply.

// The keywords a reply may be, after trimming and upper-casing.
// The opt-out keywords are the carriers' and Twilio's.
var stopWords = map[string]bool{"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true, "END": true, "QUIT": true,
	"REVOKE": true, "OPTOUT": true}

// callWords ask for a call back, in each language the templates speak:
// any is accepted from every customer, since a French customer may answer
// in English.
var callWords = map[string]bool{"CALL": true, "CALL ME": true, "APPEL": true, "APPELER": true, "APPELEZ-MOI": true,
	"APPELEZ MOI": true, "RAPPEL": true, "RAPPELER": true, "RAPPELEZ-MOI": true, "RAPPELEZ MOI": true}

// keyword normalises a reply: upper case, without surrounding spaces and
// punctuation.
func keyword(body string) string {
	return strings.ToUpper(strings.TrimFunc(body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }))
}

// replyKind is what an inbound text asks for.
type replyKind int

const (
	replyOther  replyKind = iota // anything else: clarified once
	replyStop                    // STOP and the carrier keywords: opt out
	replyStart                   // START, UNSTOP: opt in
	replyHelp                    // HELP, INFO
	replyNumber                  // a number: a slot, or a survey score
	replyCall                    // CALL: call me back
	replyNo                      // NO: decline the offer
	replySlot                    // a slot chosen on the customer page (Slot)
	replyCancel                  // cancel the booked visit (the customer page)
)

// parsedReply is an inbound text as the conversation reads it.
type parsedReply struct {
	Kind    replyKind
	Keyword string // the normalised text (keyword)
	Number  int    // for replyNumber
	Slot    Slot   // for replySlot
	// Page is set for what the customer did on their page rather than by
	// SMS: the timeline and the notes say so.
	Page bool
}

// via says on timelines and in notes how the customer acted.
func (r parsedReply) via() string {
	if r.Page {
		return "on the customer page"
	}
	return "by SMS"
}

// parseReply reads an inbound SMS body, which is outside input: any bytes,
// any length.
func parseReply(body string) parsedReply {
	kw := keyword(body)
	p := parsedReply{Keyword: kw}
	switch {
	case stopWords[kw]:
		p.Kind = replyStop
	case kw == "START" || kw == "UNSTOP":
		p.Kind = replyStart
	case kw == "HELP" || kw == "INFO" || kw == "AIDE":
		p.Kind = replyHelp
	case callWords[kw]:
		p.Kind = replyCall
	case kw == "NO" || kw == "NON":
		p.Kind = replyNo
	default:
		if num, err := strconv.Atoi(kw); err == nil {
			p.Kind, p.Number = replyNumber, num
		}
	}
	return p
}

// replyState is what a customer's reply is decided against.
type replyState struct {
	// Customer is the sender, and Channel the channel they wrote on, where
	// the answers go.
	Customer proactive.Customer
	Channel  proactive.Channel
	// Conversations are the customer's: the active one, its offer's slots,
	// the open ones.
	Conversations devices.CustomerConversations
	// Ticket and Party are the active conversation's ticket and who its
	// messages go to (when there is one).
	Ticket proactive.Ticket
	Party  party
	// NPSAskedAt is when the customer was last asked the NPS question,
	// zero when never (read when the active conversation awaits the
	// satisfaction answer).
	NPSAskedAt time.Time
	// Visit is the ticket's booked visit, read for the customer page only.
	Visit *Appointment
}

// replyDecision is what a reply does.
type replyDecision struct {
	// Metric is the inbound metric's label: what the reply was taken for.
	Metric string
	Change devices.Change
	// Reoffer offers new slots after Change: at once when Change books
	// nothing (the chosen slot has passed), or when its slot is taken.
	Reoffer bool
	// Reschedule is set when Change moves a booked visit: when the slot is
	// taken the visit stays and the customer is told so.
	Reschedule bool
	// Survey and Score are the survey answer the reply gave, if any.
	Survey proactive.Survey
	Score  int
}

// inEntry is an inbound message on a ticket's timeline; text is its body,
// clipped.
func inEntry(ticket int64, text, handled string) devices.Entry {
	return devices.Entry{Ticket: ticket, Actor: "customer", Body: map[string]any{
		"direction": "in", "body": text, "handled": handled}}
}

// decideReply decides what an inbound text with provider SID sid does, at
// now. Opt-out and opt-in keywords apply to the customer; the rest to the
// active conversation.
func (n *Notifier) decideReply(st replyState, sid, body string, now time.Time) (replyDecision, error) {
	return n.decide(st, sid, body, parseReply(body), now)
}

// decide decides what reply r (body as the customer sent it, or as the
// customer page describes the action) does; decideReply for the SMS, and
// the customer page's actions go through it alike.
func (n *Notifier) decide(st replyState, sid, body string, r parsedReply, now time.Time) (replyDecision, error) {
	body = clip(body, 1600) // as the store keeps it
	d, err := n.decideParsed(st, sid, body, r, now)
	if r.Page {
		markPage(&d.Change)
	}
	return d, err
}

// markPage marks a change's timeline entries as made on the customer page.
func markPage(c *devices.Change) {
	for _, e := range c.Entries {
		e.Body["via"] = "page"
	}
	if c.Otherwise != nil {
		markPage(c.Otherwise)
	}
}

func (n *Notifier) decideParsed(st replyState, sid, body string, r parsedReply, now time.Time) (replyDecision, error) {
	cc := st.Conversations
	d := replyDecision{Change: devices.Change{At: now}}
	c := &d.Change
	if sid != "" {
		c.Inbound = &devices.InboundMessage{SID: sid, From: st.Customer.Phone, Body: body, At: now}
		if cc.Found {
			c.Inbound.Ticket = cc.Active.Ticket
		} else if cc.EndedFound {
			// After a decline or an expiry the thread still shows it.
			c.Inbound.Ticket = cc.Ended.Ticket
		}
	}
	// everywhere puts the message on every open conversation's timeline,
	// or on the ended one's when none is open.
	everywhere := func(handled string) {
		for _, id := range cc.Open {
			c.Entries = append(c.Entries, inEntry(id, body, handled))
		}
		if len(cc.Open) == 0 && cc.EndedFound {
			c.Entries = append(c.Entries, inEntry(cc.Ended.Ticket, body, handled))
		}
	}
	// answer queues a keyword's answer. With the
	// provider's Advanced Opt-Out the provider has answered already: the
	// keyword is only recorded.
	answer := func(kind string, data msgData) error {
		if n.opt.AdvancedOptOut {
			everywhere(kind + " (answered by the provider)")
			return nil
		}
		text, err := n.render(st.Customer.Language, kind, data)
		if err != nil {
			return err
		}
		everywhere(kind)
		// On the conversation's ticket, so that its thread shows the answer.
		var ticket int64
		if c.Inbound != nil {
			ticket = c.Inbound.Ticket
		}
		c.Messages = append(c.Messages, outMessage(party{Customer: st.Customer, Channel: st.Channel}, ticket, kind, text, false, now))
		return nil
	}
	switch r.Kind {
	case replyStop:
		// The number is opted out of the channel the keyword came on (STOP
		// on WhatsApp leaves SMS as it was); the confirmation is the one
		// message it still gets there.
		d.Metric = "stop"
		c.Customer = st.Customer.ID
		c.Consent = &proactive.ConsentEvent{Channel: st.Channel, Granted: false, Method: keywordMethod(st.Channel), Actor: "customer",
			Note: keywordNote(st.Channel) + r.Keyword}
		c.Suppress, c.Keep, c.SuppressOn = "customer opted out of "+string(st.Channel), []string{KindHelp, KindOptOut}, st.Channel
		return d, answer(KindOptOut, msgData{Channel: st.Channel})
	case replyStart:
		d.Metric = "start"
		c.Customer = st.Customer.ID
		c.Consent = &proactive.ConsentEvent{Channel: st.Channel, Granted: true, Method: keywordMethod(st.Channel), Actor: "customer",
			Note: keywordNote(st.Channel) + r.Keyword}
		return d, answer(KindStart, msgData{})
	case replyHelp:
		d.Metric = "help"
		return d, answer(KindHelp, msgData{Contact: n.opt.HelpContact})
	}
	if !cc.Found {
		if cc.EndedFound && afterOffer(st.Ticket, now) && r.Kind != replyNo {
			return d, n.followUpEnded(&d, st, body)
		}
		d.Metric = "no_conversation"
		everywhere("ignored")
		return d, nil
	}
	conv, p := cc.Active, st.Party
	c.Ticket = conv.Ticket
	if !st.Customer.Consents(st.Channel) {
		// No message on the channel may answer an opted-out customer but the keywords': a
		// person calls, and nothing is booked or declined unseen.
		d.Metric, c.FollowUp = "opted_out", proactive.FollowUpOptedOut
		c.Entries = append(c.Entries, inEntry(conv.Ticket, body, "follow_up"))
		return d, nil
	}
	switch {
	case conv.Stage == stageOffer && (r.Kind == replyNumber || r.Kind == replySlot):
		d.Metric = "slot"
		s, handled := r.Slot, "slot "+r.Slot.Start.UTC().Format(time.RFC3339)
		if r.Kind == replyNumber {
			if r.Number < 1 || r.Number > len(cc.Slots) {
				return d, n.clarify(&d, st, body)
			}
			s, handled = Slot(cc.Slots[r.Number-1]), "slot "+strconv.Itoa(r.Number)
		}
		c.Entries = append(c.Entries, inEntry(conv.Ticket, body, handled))
		d.Reoffer = true
		if !s.Start.After(now) {
			return d, nil // an old offer's slot that has passed
		}
		b, err := n.bookChange(st.Ticket, p, s, "customer", true, now)
		if err != nil {
			return d, err
		}
		b.Inbound, b.Entries = c.Inbound, c.Entries
		d.Change = b
		return d, nil
	case conv.Stage == stageScheduled && (r.Kind == replyNumber && r.Number >= 1 && r.Number <= len(cc.Slots) &&
		Slot(cc.Slots[r.Number-1]).Start.After(now) || r.Kind == replySlot && r.Slot.Start.After(now)):
		// Another slot of the offer (or, on the page, any free slot) after
		// booking moves the visit there.
		d.Metric, d.Reschedule = "reschedule", true
		s, which := r.Slot, r.Slot.Start.UTC().Format(time.RFC3339)
		if r.Kind == replyNumber {
			s, which = Slot(cc.Slots[r.Number-1]), strconv.Itoa(r.Number)
		}
		b, err := n.bookChange(st.Ticket, p, s, "customer", true, now)
		if err != nil {
			return d, err
		}
		b.Book.Reschedule, b.Book.Note = true, "visit moved "+r.via()+" to slot "+which
		b.CancelJobs = append(b.CancelJobs, jobVisitReminder)
		b.Inbound, b.Entries = c.Inbound, append(c.Entries, inEntry(conv.Ticket, body, "reschedule "+which))
		d.Change = b
		return d, nil
	case conv.Stage == stageScheduled && r.Kind == replyCancel:
		// Only the page cancels: CANCEL by SMS is the carriers' opt-out.
		d.Metric = "cancel"
		dd := p.data()
		if a := st.Visit; a != nil {
			dd.Visit = formatSlot(p.Customer.Language, a.Start, a.End, n.zone(p.Device.TimeZone))
		}
		text, err := n.render(p.Customer.Language, KindCancelled, dd)
		if err != nil {
			return d, err
		}
		c.Entries = append(c.Entries, inEntry(conv.Ticket, body, "cancel"))
		c.CancelVisit = true
		c.Status = &devices.StatusChange{To: proactive.TicketCancelled, Actor: "customer", Note: "visit cancelled by the customer " + r.via()}
		c.Stage, c.CancelJobs = stageDone, []string{jobVisitReminder}
		c.Messages = append(c.Messages, outMessage(p, conv.Ticket, KindCancelled, text, false, now))
		return d, nil
	case isSurveyAnswer(conv.Stage, r):
		survey, _ := surveyStage(conv.Stage)
		return d, n.decideSurvey(&d, st, survey, r, body, now)
	case r.Kind == replyCall:
		d.Metric = "call"
		text, err := n.render(st.Customer.Language, KindCallback, msgData{})
		if err != nil {
			return d, err
		}
		c.Entries = append(c.Entries, inEntry(conv.Ticket, body, KindCallback))
		c.Messages = append(c.Messages, outMessage(p, conv.Ticket, KindCallback, text, false, now))
		c.FollowUp = proactive.FollowUpCall
		return d, nil
	case r.Kind == replyNo && conv.Stage == stageOffer:
		d.Metric = "no"
		kind := KindDeclined
		if st.Ticket.Severity == proactive.SeverityCritical {
			// A critical fault is not left at a decline: a person calls.
			kind, c.FollowUp = KindDeclinedUrgent, proactive.FollowUpDeclinedCritical
		}
		text, err := n.render(st.Customer.Language, kind, p.data())
		if err != nil {
			return d, err
		}
		c.Entries = append(c.Entries, inEntry(conv.Ticket, body, KindDeclined))
		c.Status = &devices.StatusChange{To: proactive.TicketDeclined, Actor: "customer", Note: "declined " + r.via()}
		c.Stage, c.ReleaseHolds = stageDone, true
		c.CancelJobs = []string{jobOfferReminder, jobOfferExpire}
		c.Messages = append(c.Messages, outMessage(p, conv.Ticket, kind, text, false, now))
		return d, nil
	}
	d.Metric = "other"
	return d, n.clarify(&d, st, body)
}

// followUpWindow is how long after a declined or expired offer a reply
// still asks for a person; later, the offer is forgotten.
const followUpWindow = 30 * 24 * time.Hour

// afterOffer reports whether ticket t ended its offer (declined or
// expired) recently enough for a reply to be about it.
func afterOffer(t proactive.Ticket, now time.Time) bool {
	return (t.Status == proactive.TicketDeclined || t.Status == proactive.TicketExpired) &&
		now.Sub(t.UpdatedAt) < followUpWindow
}

// followUpEnded makes a reply after a declined or expired offer a
// follow-up on its ticket, which keeps its status, and tells the customer
// that a person will call.
func (n *Notifier) followUpEnded(d *replyDecision, st replyState, body string) error {
	c := &d.Change
	t := st.Ticket
	d.Metric, c.Ticket = "after_end", t.ID
	c.FollowUp = proactive.FollowUpAfterDecline
	if t.Status == proactive.TicketExpired {
		c.FollowUp = proactive.FollowUpAfterExpiry
	}
	if c.Inbound != nil {
		c.Inbound.Ticket = t.ID
	}
	text, err := n.render(st.Customer.Language, KindFollowUp, st.Party.data())
	if err != nil {
		return err
	}
	c.Entries = append(c.Entries, inEntry(t.ID, body, KindFollowUp))
	c.Messages = append(c.Messages, outMessage(st.Party, t.ID, KindFollowUp, text, false, c.At))
	return nil
}

// maxClarifications is how many unexpected replies to one offer get a
// clarifying answer; later ones are only recorded, so that a confused
// customer and the notifier do not talk in circles.
const maxClarifications = 2

// clarify answers an unexpected reply, up to maxClarifications times per
// offer (the last answer says a person can call): the decision claims one
// of the offer's clarifications, and when none is left the message is only
// recorded, as ignored.
func (n *Notifier) clarify(d *replyDecision, st replyState, body string) error {
	c := &d.Change
	conv, p := st.Conversations.Active, st.Party
	data := p.data()
	if conv.Stage == stageOffer {
		data.Slots = n.slotLines(p, toSlots(st.Conversations.Slots))
	}
	tmpl := KindClarify
	if conv.Clarifications > 0 {
		tmpl = "clarify_last"
	}
	if survey, ok := surveyStage(conv.Stage); ok {
		// A survey's question: the range of its answers, each time.
		tmpl, data = "clarify_survey", surveyClarifyData(survey)
	}
	text, err := n.render(p.Customer.Language, tmpl, data)
	if err != nil {
		return err
	}
	c.ClaimClarify, c.ClarifyLimit = true, maxClarifications
	c.Otherwise = &devices.Change{At: c.At, Entries: []devices.Entry{inEntry(conv.Ticket, body, "ignored")}}
	c.Entries = append(c.Entries, inEntry(conv.Ticket, body, KindClarify))
	c.Messages = append(c.Messages, outMessage(p, conv.Ticket, KindClarify, text, false, c.At))
	return nil
}

// bookChange is the booking of slot s for a ticket by actor: the visit,
// holds released, offer jobs cancelled and, when the ticket has a
// conversation and its customer may be texted, the confirmation and the
// visit reminder.
func (n *Notifier) bookChange(t proactive.Ticket, p party, s Slot, actor string, hasConv bool, now time.Time) (devices.Change, error) {
	c := devices.Change{At: now, Ticket: t.ID,
		Book: &devices.Booking{Ticket: t.ID, Technician: s.Technician, Start: s.Start.UTC(), End: s.End.UTC(),
			Buffer: n.opt.TravelBuffer, Actor: actor, Note: "visit booked", At: now},
		ReleaseHolds: true, CancelJobs: []string{jobOfferReminder, jobOfferExpire}}
	if !hasConv || !p.reachable() {
		return c, nil
	}
	c.Stage = stageScheduled
	loc := n.zone(p.Device.TimeZone)
	d := p.data()
	d.Visit = formatSlot(p.Customer.Language, s.Start.UTC(), s.End.UTC(), loc)
	// The reminder goes out the day before at VisitReminderAt, local time;
	// a visit booked after that moment (the same day, say) is confirmed
	// without the promise of a reminder.
	v := s.Start.In(loc)
	due := time.Date(v.Year(), v.Month(), v.Day()-1, 0, int(n.opt.VisitReminderAt), 0, 0, loc)
	tmpl := KindConfirm
	if due.After(now) {
		c.Jobs = []devices.NewJob{{Kind: jobVisitReminder, Due: due}}
	} else {
		tmpl = "confirm_soon"
	}
	m, err := n.linkedMessage(p, t.ID, KindConfirm, tmpl, d, false, now)
	if err != nil {
		return c, err
	}
	c.Messages = []devices.NewMessage{m}
	return c, nil
}

// reofferChange queues a ticket's new offer of slots (held already) and
// rearms its reminder and expiry.
func (n *Notifier) reofferChange(t proactive.Ticket, p party, slots []Slot, now time.Time) (devices.Change, error) {
	tmpl := KindReoffer
	if len(slots) == 0 {
		tmpl = "reoffer_noslots"
	}
	d := p.data()
	d.Slots = n.slotLines(p, slots)
	m, err := n.linkedMessage(p, t.ID, KindReoffer, tmpl, d, false, now)
	if err != nil {
		return devices.Change{}, err
	}
	return devices.Change{At: now, Ticket: t.ID,
		Messages: []devices.NewMessage{m},
		Jobs:     n.offerJobs(now)}, nil
}

// offerJobs are an offer's reminder and expiry.
func (n *Notifier) offerJobs(now time.Time) []devices.NewJob {
	var jobs []devices.NewJob
	if n.opt.OfferReminder < n.opt.OfferExpiry {
		jobs = append(jobs, devices.NewJob{Kind: jobOfferReminder, Due: now.Add(n.opt.OfferExpiry - n.opt.OfferReminder)})
	}
	return append(jobs, devices.NewJob{Kind: jobOfferExpire, Due: now.Add(n.opt.OfferExpiry)})
}

// alertState is what an alert's outreach is decided against.
type alertState struct {
	// Party is who the alert's device belongs to.
	Party party
	// Ticket is the alert's ticket; Created whether the alert opened it.
	Ticket  proactive.Ticket
	Created bool
	// Recent counts the offers about the device within the contact
	// cooldown (read only when the customer may be contacted).
	Recent int
	// Contact is what the contact policy reads (see contact.go).
	Contact contactState
}

// alertAction is what an alert does beyond opening its ticket.
type alertAction int

const (
	alertNone  alertAction = iota // the ticket was open already: nothing more
	alertSkip                     // the customer is not texted: record why
	alertOffer                    // start the conversation with an offer
)

// alertDecision is what an alert does.
type alertDecision struct {
	Action alertAction
	// Reason is why the customer is not texted (alertSkip).
	Reason string
	// Change is the skip's record (alertSkip); an offer's is offerChange's,
	// once its slots are held.
	Change devices.Change
}

// contactable reports whether a party's customer may be texted at all.
func contactable(p party) bool { return p.reachable() }

// decideAlert decides what an alert does once its ticket is open: the
// contact policy first, then the customer.
func decideAlert(st alertState, now time.Time) alertDecision {
	if !st.Created {
		return alertDecision{Action: alertNone}
	}
	reason := policyHold(st.Contact)
	if reason == "" {
		reason = customerHold(st.Party, st.Recent)
	}
	if reason == "" {
		return alertDecision{Action: alertOffer}
	}
	return alertDecision{Action: alertSkip, Reason: reason, Change: holdChange(st.Ticket, reason, st.Contact, now)}
}

// offerPlan is what an offer takes from its alert.
type offerPlan struct {
	// TimeToFailure is the alert's prediction, zero without one.
	TimeToFailure time.Duration
	// Urgent offers may be sent in the customer's quiet hours.
	Urgent bool
}

// planOffer reads what an offer about alert a would say.
func (n *Notifier) planOffer(a proactive.Alert) offerPlan {
	return offerPlan{TimeToFailure: a.TimeToFailure, Urgent: a.Severity == proactive.SeverityCritical && n.opt.CriticalInQuietHours}
}

// offerChange starts a new ticket's conversation with an offer of the
// slots held for it: the ticket offered, the offer queued, its reminder
// and expiry armed.
func (n *Notifier) offerChange(st alertState, o offerPlan, slots []Slot, now time.Time) (devices.Change, error) {
	p := st.Party
	tmpl := KindOffer
	if len(slots) == 0 {
		tmpl = "offer_noslots"
	}
	d := p.data()
	d.Forecast = formatForecast(p.Customer.Language, o.TimeToFailure)
	d.Slots = n.slotLines(p, slots)
	m, err := n.linkedMessage(p, st.Ticket.ID, KindOffer, tmpl, d, o.Urgent, now)
	if err != nil {
		return devices.Change{}, err
	}
	// Latency is measured from when the platform raised the alert, on its
	// own clock: the alert's FiredAt is in the devices' time, which late
	// data, clock skew or a simulation at speed move away from it.
	return devices.Change{At: now, Ticket: st.Ticket.ID,
		Start:    &devices.NewConversation{Customer: p.Customer.ID, Device: p.Device.ID, Stage: stageOffer, AlertAt: now, OfferedAt: now},
		Status:   &devices.StatusChange{To: proactive.TicketOffered, Actor: "notify", Note: "visit offered by SMS"},
		Messages: []devices.NewMessage{m},
		Jobs:     n.offerJobs(now)}, nil
}
