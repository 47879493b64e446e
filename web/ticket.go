package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

var outcomes = []proactive.Outcome{proactive.OutcomeFaultConfirmed, proactive.OutcomePartReplaced, proactive.OutcomeNoFaultFound}

// entry is a timeline event as the page shows it.
type entry struct {
	At    time.Time
	Kind  proactive.TicketEventKind
	Actor string
	Text  string
}

// bubble is one SMS of the thread.
type bubble struct {
	At       time.Time
	Inbound  bool
	Body     string
	Status   string // of an outbound message: pending, sent, failed ... and the provider's delivery
	Handled  string // how an inbound message was understood
	Kind     string
	Sequence int
	// event is the timeline event that recorded the message, 0 for none:
	// the thread's order (see proactive.MessageEvents).
	event int64
	// Channel is where the message went or came from: SMS, WhatsApp, email.
	Channel string
}

// slotChoice is a bookable slot with the form value that names it.
type slotChoice struct {
	notify.Slot
	Value string
	Name  string
}

type ticketData struct {
	pageData
	Now      time.Time
	Ticket   proactive.Ticket
	Device   proactive.Device
	Customer *proactive.Customer
	Loc      *time.Location
	// Alert is what the alert event said: metrics and time to failure.
	Metrics       []metric
	TimeToFailure string
	Timeline      []entry
	Thread        []bubble
	Appointments  []notify.Appointment
	Techs         []proactive.Technician
	TechNames     map[string]string
	Slots         []slotChoice
	Outcomes      []proactive.Outcome
	// Which actions the page offers.
	CanAssign, CanBook, CanMessage, CanComment, CanVisit, CanClose, CanCancel bool
	// CanApprove and CanDismiss: the contact policy's review.
	CanApprove, CanDismiss bool
	// CanEditCustomer: staff change the customer's channel and record
	// consent told on the phone; technicians only read them.
	CanEditCustomer bool
	// Held explains the ticket's held_reason, empty when nothing held it.
	Held string
	// Form values to show again after a failed action.
	Form map[string]string
	// Chart is the telemetry around the alert; nil for a ticket whose
	// alert named no metrics.
	Chart *chart
}

type metric struct {
	Name  string
	Value string
}

// ticketID reads the {id} path parameter.
func ticketID(r *http.Request) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || n <= 0 {
		return 0, proactive.Errorf(proactive.ENotFound, "there is no ticket %q", r.PathValue("id"))
	}
	return n, nil
}

// ticketPage shows a ticket's whole story and its actions.
func (s *server) ticketPage(w http.ResponseWriter, r *http.Request) {
	id, err := ticketID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.showTicket(w, r, id, http.StatusOK, "", nil)
}

// showTicket renders the ticket page with status, and the message of a
// failed action and its form values when there was one.
func (s *server) showTicket(w http.ResponseWriter, r *http.Request, id int64, status int, errMsg string, form map[string]string) {
	ctx := r.Context()
	sess := sessionOf(ctx)
	t, err := s.Store.GetTicket(ctx, id)
	if err == nil && !sess.Staff() && t.Technician != sess.technician {
		err = proactive.Errorf(proactive.ENotFound, "ticket %d not found", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := ticketData{pageData: s.base(r, fmt.Sprintf("Ticket %d · %s", t.ID, t.Device), "board"), Now: s.Now(),
		Ticket: t, Loc: s.Location, Outcomes: outcomes, Form: form}
	d.Error = errMsg
	d.Refresh = s.RefreshEvery.Milliseconds()
	if !sess.Staff() {
		d.Nav = "day"
	}
	if d.Device, err = s.Store.GetDevice(ctx, t.Device); err != nil {
		s.fail(w, r, err)
		return
	}
	// Technicians see the customer too (only their own tickets reach
	// here): they call ahead and ring at the door.
	if d.Customer, err = s.customerOf(ctx, d.Device); err != nil {
		s.fail(w, r, err)
		return
	}
	// Everyone sees the site's local time, labelled with its zone: the
	// customer's "08:00" is the technician's and the dispatcher's 08:00.
	d.Loc = proactive.LoadZone(d.Device.TimeZone, s.Location)
	for _, e := range t.Timeline {
		if e.Kind == proactive.TicketEventAlert {
			d.Metrics, d.TimeToFailure = alertDetails(e.Body)
		}
		d.Timeline = append(d.Timeline, entry{At: e.At, Kind: e.Kind, Actor: e.Actor, Text: describe(e)})
		if e.Kind == proactive.TicketEventMessage && e.Actor == "customer" {
			var b struct {
				Direction, Body string
				Handled         any
				Channel         proactive.Channel
			}
			if json.Unmarshal(e.Body, &b) == nil && b.Direction == "in" {
				d.Thread = append(d.Thread, bubble{At: e.At, Inbound: true, Body: b.Body, Handled: fmt.Sprint(b.Handled),
					Channel: channelName(b.Channel), event: e.ID})
			}
		}
	}
	slices.Reverse(d.Timeline) // newest first
	if d.Techs, err = s.technicians(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	d.TechNames = map[string]string{}
	for _, tc := range d.Techs {
		d.TechNames[tc.ID] = tc.Name
	}
	active := !t.Status.Terminal()
	if s.Outreach != nil {
		msgs, err := s.Outreach.Messages(ctx, t.ID, "")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		recorded := proactive.MessageEvents(t.Timeline)
		for _, m := range msgs {
			st := m.Status
			if m.Delivery != "" && m.Delivery != m.Status {
				st += ", " + m.Delivery
			}
			d.Thread = append(d.Thread, bubble{At: m.Created, Body: m.Body, Status: st, Kind: m.Kind, Channel: channelName(m.Channel),
				event: recorded[m.ID]})
		}
		if d.Appointments, err = s.Outreach.Appointments(ctx, notify.AppointmentFilter{Ticket: t.ID}); err != nil {
			s.fail(w, r, err)
			return
		}
		// The script's refreshes replace only the story, not the forms:
		// they skip the slots, whose computation takes a write transaction.
		refresh := r.Header.Get("X-Requested-With") == "fetch"
		if sess.Staff() && !refresh && (t.Status == proactive.TicketOpen || t.Status == proactive.TicketReview || t.Status == proactive.TicketOffered) {
			slots, err := s.Outreach.Slots(ctx, t.ID)
			if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
				s.fail(w, r, err)
				return
			}
			for _, sl := range slots {
				d.Slots = append(d.Slots, slotChoice{Slot: sl, Value: slotValue(sl), Name: d.TechNames[sl.Technician]})
			}
		}
	}
	// The script's refreshes replace the story only: no chart for them.
	if r.Header.Get("X-Requested-With") != "fetch" {
		d.Chart = s.ticketChart(ctx, t, r.URL.Query(), d.Loc)
	}
	sort.SliceStable(d.Thread, func(i, j int) bool {
		a, b := d.Thread[i], d.Thread[j]
		return proactive.CompareThread(a.event, a.At, b.event, b.At) < 0
	})
	booked := bookedVisit(d.Appointments)
	d.CanAssign = sess.Staff() && active
	d.CanBook = sess.Staff() && len(d.Slots) > 0
	d.CanMessage = sess.Staff() && active && s.Outreach != nil && d.Customer != nil && d.Customer.Reachable()
	d.CanComment = sess.Staff()
	d.CanEditCustomer = sess.Staff() && d.Customer != nil
	d.CanVisit = s.Outreach != nil && t.Status == proactive.TicketScheduled && booked != nil &&
		(sess.Staff() || booked.Technician == sess.technician)
	d.CanClose = sess.Staff() && t.Status == proactive.TicketVisited
	d.CanCancel = sess.Staff() && active
	d.CanApprove = sess.Staff() && s.Outreach != nil && t.Status == proactive.TicketReview
	d.CanDismiss = sess.Staff() && s.Outreach != nil && (t.Status == proactive.TicketOpen || t.Status == proactive.TicketReview)
	if r := heldNow(t); r != "" {
		d.Held = heldText(r)
	}
	s.render(w, r, status, "ticket", d)
}

// bookedVisit returns the booked appointment among apps, or nil.
func bookedVisit(apps []notify.Appointment) *notify.Appointment {
	for i := len(apps) - 1; i >= 0; i-- {
		if apps[i].Status == "booked" {
			return &apps[i]
		}
	}
	return nil
}

// alertDetails reads the metrics and time to failure of an alert event.
func alertDetails(body json.RawMessage) ([]metric, string) {
	var b struct {
		Metrics       map[string]json.Number `json:"metrics"`
		TimeToFailure string                 `json:"time_to_failure"`
	}
	_ = json.Unmarshal(body, &b)
	var ms []metric
	for k, v := range b.Metrics {
		ms = append(ms, metric{Name: k, Value: v.String()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	ttf := b.TimeToFailure
	if d, err := proactive.ParseDuration(ttf); err == nil {
		ttf = humanDuration(d)
	}
	return ms, ttf
}

// humanDuration says d in days and hours.
func humanDuration(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	hours := int((d % (24 * time.Hour)) / time.Hour)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%d days %d h", days, hours)
	case days > 0:
		return fmt.Sprintf("%d days", days)
	}
	return fmt.Sprintf("%d h %d min", hours, int((d%time.Hour)/time.Minute))
}

// describe says what a timeline event was, in a line.
func describe(e proactive.TicketEvent) string {
	var b map[string]any
	_ = json.Unmarshal(e.Body, &b)
	str := func(k string) string {
		if v, ok := b[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	switch e.Kind {
	case proactive.TicketEventAlert:
		return fmt.Sprintf("Rule %s fired (%s): %s", str("rule"), str("severity"), str("summary"))
	case proactive.TicketEventState:
		s := fmt.Sprintf("Status %s → %s", str("from"), str("to"))
		if o := str("outcome"); o != "" {
			s += ", outcome " + label(o)
		}
		for _, k := range []string{"note", "notes"} {
			if n := str(k); n != "" {
				s += ": " + n
			}
		}
		return s
	case proactive.TicketEventAssignment:
		if t := str("technician"); t != "" {
			return "Assigned to " + t
		}
		return "Unassigned (was " + str("previous") + ")"
	case proactive.TicketEventComment:
		return str("text")
	case proactive.TicketEventFollowUp:
		if h := str("handled"); h != "" {
			s := "Follow-up handled (" + label(h) + ")"
			if n := str("note"); n != "" {
				s += ": " + n
			}
			return s
		}
		return "Follow up: " + str("note")
	case proactive.TicketEventMessage:
		switch {
		case str("direction") == "in":
			s := "SMS from the customer: " + str("body")
			for _, a := range [...]struct{ key, name, scale string }{
				{"csat", "satisfaction", "1–5"}, {"nps", "NPS", "0–10"}, {"ces", "effort", "1–5, 5 the easiest"}} {
				if v := str(a.key); v != "" {
					s += " (" + a.name + " answer " + v + " on " + a.scale + ")"
				}
			}
			return s
		case str("outreach") == "deferred":
			return fmt.Sprintf("Offer waits (%s) until %s: %s", label(str("reason")), str("until"), str("note"))
		case str("outreach") == "waiting":
			// Not "No SMS sent": the offer goes after the wait unless an
			// incident takes the alert.
			return "Offer held for " + str("group_wait") + ": " + str("note")
		case str("outreach") != "":
			s := "No SMS sent: " + label(str("reason"))
			if n := str("note"); n != "" {
				s += " (" + n + ")"
			}
			return s
		case str("survey") != "" && str("question") != "":
			return strings.ToUpper(str("question")) + " question: " + str("survey")
		case str("survey") != "":
			return "Satisfaction survey: " + str("survey")
		}
		s := "SMS " + label(str("kind"))
		if st := str("status"); st != "" {
			s += " " + st
		} else {
			s += " queued"
		}
		if e := str("error"); e != "" {
			s += ": " + e
		}
		return s
	}
	return string(e.Body)
}

// slotValue names a slot in a form: technician, start and end.
func slotValue(s notify.Slot) string {
	return s.Technician + "|" + s.Start.UTC().Format(time.RFC3339) + "|" + s.End.UTC().Format(time.RFC3339)
}

func parseSlot(v string) (notify.Slot, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return notify.Slot{}, proactive.Errorf(proactive.EInvalid, "choose a slot")
	}
	start, err1 := time.Parse(time.RFC3339, parts[1])
	end, err2 := time.Parse(time.RFC3339, parts[2])
	if parts[0] == "" || err1 != nil || err2 != nil {
		return notify.Slot{}, proactive.Errorf(proactive.EInvalid, "the slot %q is malformed", v)
	}
	return notify.Slot{Technician: parts[0], Start: start, End: end}, nil
}

// action runs do for the ticket of the request: on success it leaves flash
// for the next page and redirects to the ticket (or to a local "next"
// path); on failure it shows the ticket again with the error and the
// status its code maps to.
func (s *server) action(w http.ResponseWriter, r *http.Request, flash string, do func(id int64) error) {
	id, err := ticketID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := do(id); err != nil {
		status := statusOf(err)
		if status == http.StatusInternalServerError {
			s.fail(w, r, err)
			return
		}
		if status == http.StatusNotFound || status == http.StatusForbidden {
			s.renderError(w, r, status, proactive.ErrorMessage(err))
			return
		}
		form := map[string]string{}
		for k := range r.PostForm {
			if k != csrfField {
				form[k] = r.PostForm.Get(k)
			}
		}
		s.showTicket(w, r, id, status, proactive.ErrorMessage(err), form)
		return
	}
	s.sessions.setFlash(sessionOf(r.Context()), flash)
	next := localPath(r.PostFormValue("next"))
	if next == "" {
		next = fmt.Sprintf("/tickets/%d", id)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// needOutreach is the error of an action that needs the notifier.
func (s *server) needOutreach() error {
	if s.Outreach == nil {
		return proactive.Errorf(proactive.EUnavailable, "SMS outreach is not running on this server")
	}
	return nil
}

func (s *server) assign(w http.ResponseWriter, r *http.Request) {
	tech := r.PostFormValue("technician")
	msg := "Ticket unassigned."
	if tech != "" {
		msg = "Ticket assigned to " + tech + "."
	}
	s.action(w, r, msg, func(id int64) error {
		_, err := s.Store.Assign(r.Context(), id, tech, sessionOf(r.Context()).Actor())
		return err
	})
}

func (s *server) book(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Visit booked; the customer gets a confirmation.", func(id int64) error {
		if err := s.needOutreach(); err != nil {
			return err
		}
		slot, err := parseSlot(r.PostFormValue("slot"))
		if err != nil {
			return err
		}
		_, err = s.Outreach.Book(r.Context(), id, slot, sessionOf(r.Context()).Actor())
		return err
	})
}

func (s *server) message(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Message queued for the customer.", func(id int64) error {
		if err := s.needOutreach(); err != nil {
			return err
		}
		_, err := s.Outreach.SendMessage(r.Context(), id, sessionOf(r.Context()).Actor(), r.PostFormValue("text"))
		return err
	})
}

func (s *server) comment(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Note added.", func(id int64) error {
		_, err := s.Store.Comment(r.Context(), id, sessionOf(r.Context()).Actor(), r.PostFormValue("text"))
		return err
	})
}

func (s *server) close(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Ticket closed.", func(id int64) error {
		_, err := s.Store.CloseTicket(r.Context(), id, proactive.Outcome(r.PostFormValue("outcome")),
			strings.TrimSpace(r.PostFormValue("notes")), sessionOf(r.Context()).Actor())
		return err
	})
}

func (s *server) approve(w http.ResponseWriter, r *http.Request) {
	// When the customer cannot be texted the ticket goes to open instead:
	// the timeline and the status line say so.
	s.action(w, r, "Ticket approved.", func(id int64) error {
		if err := s.needOutreach(); err != nil {
			return err
		}
		_, err := s.Outreach.Approve(r.Context(), id, sessionOf(r.Context()).Actor())
		return err
	})
}

func (s *server) dismiss(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Ticket dismissed as a false alarm.", func(id int64) error {
		if err := s.needOutreach(); err != nil {
			return err
		}
		_, err := s.Outreach.Dismiss(r.Context(), id, sessionOf(r.Context()).Actor(), strings.TrimSpace(r.PostFormValue("note")))
		return err
	})
}

// heldTexts say why a ticket's customer was not texted, by held_reason.
var heldTexts = map[string]string{
	"review":           "the rule asks for a review before texting",
	"untrusted_rule":   "the rule's precision is too low: review before texting",
	"alert_age":        "the alert was too old to text about",
	"contact_none":     "the rule never texts customers: for the field team",
	"contact_cooldown": "the customer was offered a visit for this device recently",
	"no_customer":      "the device has no customer",
	"no_consent":       "the customer has not consented to their preferred channel",
	"opted_out":        "the customer opted out of their preferred channel",
	"quiet_hours":      "the offer waited for the customer's quiet hours to end",
	"daily_cap":        "the offer waited for the customer's daily message cap",
	"group_wait":       "the offer waits notify.group_wait in case many devices fire the rule at once",
	"incident":         "part of an incident: many devices fired the rule at once",
}

// heldNow returns why a ticket's customer is not being texted now, "" when
// nothing holds it: the held reason of a ticket still open or in review,
// or of an offer still waiting for quiet hours or the daily cap. An
// approved ticket keeps its reason on record but is no longer held.
func heldNow(t proactive.Ticket) string {
	switch {
	case t.HeldReason == "":
		return ""
	case t.Status == proactive.TicketOpen || t.Status == proactive.TicketReview:
		return t.HeldReason
	case t.Status == proactive.TicketOffered && (t.HeldReason == "quiet_hours" || t.HeldReason == "daily_cap"):
		return t.HeldReason
	}
	return ""
}

// heldText says a held_reason in words, the reason itself when unknown.
func heldText(reason string) string {
	if t, ok := heldTexts[reason]; ok {
		return t
	}
	return label(reason)
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "Ticket cancelled.", func(id int64) error {
		_, err := s.Store.Transition(r.Context(), id, proactive.TicketCancelled, sessionOf(r.Context()).Actor(),
			strings.TrimSpace(r.PostFormValue("note")))
		return err
	})
}

// visitDone records a booked visit as made. A technician may record only
// their own visits: another's ticket answers 404, as if it did not exist.
func (s *server) visitDone(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r.Context())
	s.action(w, r, "Visit recorded. Thank you!", func(id int64) error {
		if err := s.needOutreach(); err != nil {
			return err
		}
		tech := ""
		if !sess.Staff() {
			tech = sess.technician
			apps, err := s.Outreach.Appointments(r.Context(), notify.AppointmentFilter{Ticket: id, Technician: tech})
			if err != nil {
				return err
			}
			if len(apps) == 0 {
				return proactive.Errorf(proactive.ENotFound, "ticket %d not found", id)
			}
		}
		_, err := s.Outreach.VisitDoneBy(r.Context(), id, tech, proactive.Outcome(r.PostFormValue("outcome")),
			strings.TrimSpace(r.PostFormValue("notes")), sess.Actor())
		return err
	})
}

// channelName is how the page names a channel; entries from before
// channels were recorded were SMS.
func channelName(ch proactive.Channel) string {
	switch ch {
	case proactive.ChannelWhatsApp:
		return "WhatsApp"
	case proactive.ChannelEmail:
		return "email"
	}
	return "SMS"
}
