package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/notify"
)

// Outreach is the SMS outreach loop, as *notify.Notifier runs it. Every
// method answers errors with proactive codes: ENotFound for no such
// ticket, EConflict for a change the ticket's state does not allow, EInvalid
// for bad input.
type Outreach interface {
	// Slots lists the free visit slots a ticket could be booked into now,
	// earliest first.
	Slots(ctx context.Context, ticket int64) ([]notify.Slot, error)
	// Book books a visit on the customer's behalf: the ticket becomes
	// scheduled and assigned to the slot's technician. EConflict when the
	// slot was taken meanwhile.
	Book(ctx context.Context, ticket int64, s notify.Slot, actor string) (notify.Appointment, error)
	// VisitDoneBy records the ticket's booked visit as made, with its
	// outcome, by actor; the satisfaction survey follows. technician, when
	// not empty, must be the visit's (EForbidden otherwise); ENotFound when
	// the ticket has no booked visit.
	VisitDoneBy(ctx context.Context, ticket int64, technician string, outcome proactive.Outcome, notes, actor string) (notify.Appointment, error)
	// Reassign moves the ticket's upcoming booked visit, at the same time,
	// to another technician and assigns the ticket to them. EInvalid for a
	// technician without the skill or the area; EConflict when they are not
	// free then or the visit has begun; ENotFound without a booked visit.
	Reassign(ctx context.Context, ticket int64, technician, actor string) (notify.Appointment, error)
	// SendMessage queues a free-text SMS to the ticket's customer and
	// returns the outbox message's id. EConflict when the customer may not
	// be texted.
	SendMessage(ctx context.Context, ticket int64, actor, text string) (int64, error)
	// Messages lists the outgoing messages of a ticket, oldest first.
	Messages(ctx context.Context, ticket int64, customer string) ([]notify.OutboundMessage, error)
	// Conversation returns the state of a ticket's SMS conversation;
	// ENotFound when its customer was never texted.
	Conversation(ctx context.Context, ticket int64) (notify.Conversation, error)
	// Appointments lists visits, earliest first.
	Appointments(ctx context.Context, f notify.AppointmentFilter) ([]notify.Appointment, error)
	// Measures computes the outcomes of the outreach loop so far.
	Measures(ctx context.Context) (notify.Measures, error)
	// Outcomes computes the survey and fix measures grouped by month,
	// model or rule (devices.ByNone: one group of all tickets); EInvalid
	// for another grouping.
	Outcomes(ctx context.Context, by devices.GroupBy) ([]devices.Outcomes, error)
	// Approve lets a ticket in review text its customer: the offer goes
	// out at once, or, when the customer cannot be texted, the ticket goes
	// to open with the reason. EConflict for a ticket not in review.
	Approve(ctx context.Context, ticket int64, actor string) (proactive.Ticket, error)
	// Dismiss closes an open or review ticket as a false alarm with a
	// note. EConflict for a ticket in another status.
	Dismiss(ctx context.Context, ticket int64, actor, note string) (proactive.Ticket, error)
	// Trust returns each rule's measured trust, by rule; rules without an
	// outcome are absent.
	Trust(ctx context.Context) (map[string]notify.Trust, error)
}

// outreach returns the outreach loop, or 503 without one.
func (s *server) outreach() (Outreach, error) {
	if s.Outreach == nil {
		return nil, unavailable("the SMS outreach loop")
	}
	return s.Outreach, nil
}

// invalidField is a 422 naming one field.
func invalidField(field, problem string) error {
	return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "%s: %s", field, problem),
		Fields: map[string]string{field: problem}}
}

// asField turns a bare EInvalid from the outreach loop into a 422 naming
// field, so that clients see which input was wrong.
func asField(err error, field string) error {
	if proactive.ErrorCode(err) == proactive.EInvalid {
		return invalidField(field, proactive.ErrorMessage(err))
	}
	return err
}

func (s *server) ticketSlots(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	slots, err := o.Slots(r.Context(), id)
	if err != nil {
		return err
	}
	loc, err := s.siteZones().of(r.Context(), id)
	if err != nil {
		return err
	}
	items := make([]siteSlot, len(slots))
	for i, sl := range slots {
		items[i] = localSlot(sl, loc)
	}
	return writeItems(w, items)
}

// reassignTicket moves a booked visit to another technician.
func (s *server) reassignTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[struct {
		TechnicianID string `json:"technician_id"`
	}](r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.TechnicianID) == "" {
		return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "invalid reassignment"),
			Fields: map[string]string{"technician_id": "required: who takes the visit"}}
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	a, err := o.Reassign(r.Context(), id, req.TechnicianID, actor(tokenOf(r.Context())))
	if err != nil {
		return err
	}
	v, err := s.siteZones().appointment(r.Context(), a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

type bookRequest struct {
	TechnicianID string    `json:"technician_id"`
	Start        time.Time `json:"start"`
	// End defaults to start plus the notifier's slot length.
	End time.Time `json:"end"`
}

// bookTicket books a visit on the customer's behalf, such as a dispatcher
// on the phone with them.
func (s *server) bookTicket(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[bookRequest](r)
	if err != nil {
		return err
	}
	bad := map[string]string{}
	if req.TechnicianID == "" {
		bad["technician_id"] = "required: the technician of one of GET .../slots"
	}
	if req.Start.IsZero() {
		bad["start"] = "required: the start of one of GET .../slots (RFC 3339)"
	}
	if !req.End.IsZero() && !req.End.After(req.Start) {
		bad["end"] = "must be after start"
	}
	if len(bad) > 0 {
		return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "invalid booking"), Fields: bad}
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	a, err := o.Book(r.Context(), id, notify.Slot{Technician: req.TechnicianID, Start: req.Start, End: req.End}, actor(tokenOf(r.Context())))
	if err != nil {
		return err
	}
	v, err := s.siteZones().appointment(r.Context(), a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

type visitRequest struct {
	Outcome proactive.Outcome `json:"outcome"`
	Notes   string            `json:"notes"`
	// TechnicianID is whose visit it was: required from staff, and a
	// technician's own (or empty) from a technician.
	TechnicianID string `json:"technician_id"`
}

// recordVisit marks a ticket's booked visit done. A technician records
// only their own visits; staff name the technician, which must be the
// visit's.
func (s *server) recordVisit(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[visitRequest](r)
	if err != nil {
		return err
	}
	tok := tokenOf(r.Context())
	bad := map[string]string{}
	if !req.Outcome.Valid() {
		bad["outcome"] = "want fault_confirmed, no_fault_found or part_replaced"
	}
	if utf8.RuneCountInString(req.Notes) > 2000 {
		bad["notes"] = "at most 2000 characters"
	}
	if tok.Role != devices.RoleTechnician && req.TechnicianID == "" {
		bad["technician_id"] = "required: the technician who made the visit"
	}
	if len(bad) > 0 {
		return &devices.FieldErrors{Err: proactive.Errorf(proactive.EInvalid, "invalid visit report"), Fields: bad}
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	tech := req.TechnicianID
	if tok.Role == devices.RoleTechnician {
		if tech != "" && tech != tok.TechnicianID {
			return forbidden("a technician token records only the visits of technician %s", tok.TechnicianID)
		}
		tech = tok.TechnicianID
		t, err := s.Store.GetTicket(r.Context(), id)
		if _, err := visible(tok, t, err); err != nil {
			return err
		}
	}
	a, err := o.VisitDoneBy(r.Context(), id, tech, req.Outcome, req.Notes, actor(tok))
	if proactive.ErrorCode(err) == proactive.EForbidden && tok.Role != devices.RoleTechnician {
		// Staff named the wrong technician: bad input, not a lack of rights.
		return invalidField("technician_id", proactive.ErrorMessage(err))
	}
	if err != nil {
		return asField(err, "outcome")
	}
	return writeJSON(w, http.StatusOK, a)
}

// threadMessage is one SMS of a ticket's thread, either way.
type threadMessage struct {
	// Direction is out (to the customer) or in (from them).
	Direction string `json:"direction"`
	// At is when an outgoing message was queued, or an incoming one
	// received.
	At   time.Time `json:"at"`
	Body string    `json:"body"`

	// Outgoing messages: the outbox entry and its delivery.
	ID          int64     `json:"id,omitempty"`
	Kind        string    `json:"kind,omitempty"`
	To          string    `json:"to,omitempty"`
	Status      string    `json:"status,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`
	SentAt      time.Time `json:"sent_at,omitzero"`
	NextAttempt time.Time `json:"next_attempt_at,omitzero"`
	SID         string    `json:"sid,omitempty"`
	Delivery    string    `json:"delivery,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	LastError   string    `json:"last_error,omitempty"`

	// event is the timeline event that recorded the message, 0 for none:
	// the thread's order (see proactive.MessageEvents).
	event int64

	// Incoming messages: how the notifier took the reply (a slot, CALL,
	// declined, survey ...) and the satisfaction score of a survey answer.
	Handled string `json:"handled,omitempty"`
	CSAT    int    `json:"csat,omitempty"`
}

// threadResponse is the answer of GET /tickets/{id}/messages.
type threadResponse struct {
	// Conversation is the outreach state; null when the customer was
	// never texted about this ticket.
	Conversation *notify.Conversation `json:"conversation"`
	Items        []threadMessage      `json:"items"`
}

// ticketMessages answers a ticket's SMS thread: the outbox's messages with
// their delivery status, and the customer's replies from the timeline,
// oldest first.
func (s *server) ticketMessages(w http.ResponseWriter, r *http.Request) error {
	id, err := int64Param(r, "id")
	if err != nil {
		return err
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	t, err := s.Store.GetTicket(r.Context(), id)
	if t, err = visible(tokenOf(r.Context()), t, err); err != nil {
		return err
	}
	out, err := o.Messages(r.Context(), id, "")
	if err != nil {
		return err
	}
	resp := threadResponse{Items: make([]threadMessage, 0, len(out))}
	recorded := proactive.MessageEvents(t.Timeline)
	for _, m := range out {
		resp.Items = append(resp.Items, threadMessage{Direction: "out", At: m.Created, Body: m.Body, event: recorded[m.ID],
			ID: m.ID, Kind: m.Kind, To: m.To, Status: m.Status, Attempts: m.Attempts, SentAt: m.Sent, NextAttempt: m.NextAttempt,
			SID: m.SID, Delivery: m.Delivery, ErrorCode: m.ErrorCode, LastError: m.LastError})
	}
	for _, e := range t.Timeline {
		if e.Kind != proactive.TicketEventMessage {
			continue
		}
		var in struct {
			Direction string `json:"direction"`
			Body      string `json:"body"`
			Handled   string `json:"handled"`
			CSAT      int    `json:"csat"`
		}
		if json.Unmarshal(e.Body, &in) != nil || in.Direction != "in" {
			continue
		}
		resp.Items = append(resp.Items, threadMessage{Direction: "in", At: e.At, Body: in.Body, Handled: in.Handled, CSAT: in.CSAT,
			event: e.ID})
	}
	slices.SortStableFunc(resp.Items, func(a, b threadMessage) int { return proactive.CompareThread(a.event, a.At, b.event, b.At) })
	conv, err := o.Conversation(r.Context(), id)
	switch proactive.ErrorCode(err) {
	case "":
		resp.Conversation = &conv
	case proactive.ENotFound:
	default:
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

type messageRequest struct {
	Text string `json:"text"`
}

// sendMessage queues a dispatcher's free text to the ticket's customer:
// 202, since the outbox sends it when quiet hours and the daily cap allow.
func (s *server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	id, req, err := idAndBody[messageRequest](r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return invalidField("text", "required: the message to send")
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	msg, err := o.SendMessage(r.Context(), id, actor(tokenOf(r.Context())), req.Text)
	if err != nil {
		return asField(err, "text")
	}
	return writeJSON(w, http.StatusAccepted, map[string]int64{"id": msg, "ticket_id": id})
}

// listAppointments lists visits earliest first; a technician sees only
// their own, whatever the filter says.
func (s *server) listAppointments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := s.Now().UTC()
	f := notify.AppointmentFilter{Technician: q.Get("technician_id")}
	bad := map[string]string{}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		var ok bool
		if *p.dst, ok = parseTime(v, now); !ok {
			if d, err := time.Parse(time.DateOnly, v); err == nil {
				*p.dst, ok = d, true
			}
		}
		if !ok {
			bad[p.name] = "want RFC 3339 (2026-03-10T09:30:00Z), a date (2026-03-10, midnight UTC), now, or relative like -1h, -7d"
		}
	}
	if v := q.Get("ticket_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			bad["ticket_id"] = "want a positive integer"
		}
		f.Ticket = id
	}
	if len(bad) == 0 && !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		bad["from"] = "must be before to"
	}
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	f.Limit, f.After = opt.Limit, opt.Cursor
	if f.Limit == 0 {
		f.Limit = 200
	}
	if len(bad) > 0 {
		return badRequest(bad, "bad appointments query")
	}
	if tok := tokenOf(r.Context()); tok.Role == devices.RoleTechnician {
		f.Technician = tok.TechnicianID
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	items, err := o.Appointments(r.Context(), f)
	if err != nil {
		return err
	}
	page := devices.Page[siteAppointment]{Items: make([]siteAppointment, len(items))}
	zones := s.siteZones()
	for i, a := range items {
		if page.Items[i], err = zones.appointment(r.Context(), a); err != nil {
			return err
		}
	}
	if len(items) == f.Limit {
		page.Next = notify.AppointmentCursor(items[len(items)-1])
	}
	return writeJSON(w, http.StatusOK, page)
}

// measuresResponse is notify.Measures with durations in seconds, the
// outcomes of all tickets at the top level and, with ?by=, per group.
type measuresResponse struct {
	AlertToFirstSMS    float64            `json:"alert_to_first_sms_seconds"`
	AlertToFirstSMSP50 float64            `json:"alert_to_first_sms_p50_seconds"`
	AlertToFirstSMSP99 float64            `json:"alert_to_first_sms_p99_seconds"`
	Offers             int                `json:"offers"`
	OfferAcceptance    float64            `json:"offer_acceptance"`
	TimeToVisit        float64            `json:"time_to_visit_seconds"`
	ResolutionTime     float64            `json:"resolution_time_seconds"`
	RulePrecision      map[string]float64 `json:"rule_precision"`
	outcomesJSON
	// By and Groups are there when the request asks for groups.
	By     string          `json:"by,omitempty"`
	Groups *[]outcomesJSON `json:"groups,omitempty"`
}

// outcomesJSON is devices.Outcomes with durations in seconds.
type outcomesJSON struct {
	Key               *string `json:"key,omitempty"` // a group's; absent at the top level
	CSAT              float64 `json:"csat"`
	CSATAnswers       int     `json:"csat_answers"`
	NPS               float64 `json:"nps"`
	NPSAnswers        int     `json:"nps_answers"`
	Promoters         int     `json:"promoters"`
	Passives          int     `json:"passives"`
	Detractors        int     `json:"detractors"`
	CES               float64 `json:"ces"`
	CESAnswers        int     `json:"ces_answers"`
	Fixes             int     `json:"fixes"`
	FirstVisitFixes   int     `json:"first_visit_fixes"`
	FirstVisitFixRate float64 `json:"first_visit_fix_rate"`
	AlertToFix        float64 `json:"alert_to_fix_seconds"`
}

func toOutcomesJSON(o devices.Outcomes) outcomesJSON {
	return outcomesJSON{CSAT: o.CSAT, CSATAnswers: o.CSATAnswers, NPS: o.NPS, NPSAnswers: o.NPSAnswers, Promoters: o.Promoters,
		Passives: o.Passives, Detractors: o.Detractors, CES: o.CES, CESAnswers: o.CESAnswers, Fixes: o.Fixes,
		FirstVisitFixes: o.FirstVisitFixes, FirstVisitFixRate: o.FirstVisitFixRate, AlertToFix: o.AlertToFix.Seconds()}
}

func (s *server) measures(w http.ResponseWriter, r *http.Request) error {
	by := devices.GroupBy(r.URL.Query().Get("by"))
	if !by.Valid() {
		return badRequest(map[string]string{"by": "must be month, model or rule"}, "by %q: want month, model or rule", by)
	}
	o, err := s.outreach()
	if err != nil {
		return err
	}
	m, err := o.Measures(r.Context())
	if err != nil {
		return err
	}
	if m.RulePrecision == nil {
		m.RulePrecision = map[string]float64{}
	}
	all, err := o.Outcomes(r.Context(), devices.ByNone)
	if err != nil {
		return err
	}
	resp := measuresResponse{
		AlertToFirstSMS: m.AlertToFirstSMS.Seconds(), AlertToFirstSMSP50: m.AlertToFirstSMSP50.Seconds(),
		AlertToFirstSMSP99: m.AlertToFirstSMSP99.Seconds(), Offers: m.Offers, OfferAcceptance: m.OfferAcceptance,
		TimeToVisit: m.TimeToVisit.Seconds(), ResolutionTime: m.ResolutionTime.Seconds(), RulePrecision: m.RulePrecision,
	}
	if len(all) == 1 {
		resp.outcomesJSON = toOutcomesJSON(all[0])
	}
	// The CSAT and the first-visit fix rate as the measures have always
	// given them (the same figures, computed alongside).
	resp.CSAT, resp.CSATAnswers, resp.FirstVisitFixRate = m.CSAT, m.CSATAnswers, m.FirstVisitFixRate
	if by != devices.ByNone {
		groups, err := o.Outcomes(r.Context(), by)
		if err != nil {
			return err
		}
		list := make([]outcomesJSON, 0, len(groups))
		for _, g := range groups {
			j := toOutcomesJSON(g)
			j.Key = &g.Key
			list = append(list, j)
		}
		resp.By, resp.Groups = string(by), &list
	}
	return writeJSON(w, http.StatusOK, resp)
}
