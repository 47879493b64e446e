package proactive

import (
	"cmp"
	"encoding/json"
	"time"
)

// Ticket is the record of one proactive intervention on a device's
// component, from the alert that opened it to the visit's outcome.
type Ticket struct {
	ID        int64        `json:"id"`
	Device    DeviceID     `json:"device_id"`
	Component string       `json:"component"`
	Rule      string       `json:"rule"`
	Status    TicketStatus `json:"status"`
	Severity  Severity     `json:"severity"`
	Summary   string       `json:"summary"`
	// PredictedFailure is when the rule expects the component to fail: the
	// alert's firing time plus its time to failure. Zero when the rule gives
	// no prediction.
	PredictedFailure time.Time `json:"predicted_failure,omitzero"`
	OpenedAt         time.Time `json:"opened_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// ClosedAt is when the ticket reached a terminal state, zero before.
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// Technician is the assigned technician's id, empty when none is.
	Technician string `json:"technician_id,omitempty"`
	// Outcome and OutcomeNotes are set when the ticket closes.
	Outcome      Outcome `json:"outcome,omitempty"`
	OutcomeNotes string  `json:"outcome_notes,omitempty"`
	// FiredAt is the opening alert's own time (the devices' clock), zero
	// for a ticket opened otherwise; the rule's ticket cooldown runs on it.
	FiredAt time.Time `json:"fired_at,omitzero"`
	// HeldReason says why the customer was not texted about the ticket
	// (review, untrusted_rule, alert_age, contact_cooldown, no_consent,
	// contact_none, quiet_hours, daily_cap, ...), empty when nothing held
	// the offer back.
	HeldReason string `json:"held_reason,omitempty"`
	// AlertsAbsorbed counts the alerts that fired again while the ticket was
	// open, and opened no ticket of their own; LastAlertAt is when the last
	// one was seen (the platform's clock) and LastAlertFiredAt its own time.
	AlertsAbsorbed   int       `json:"alerts_absorbed"`
	LastAlertAt      time.Time `json:"last_alert_at,omitzero"`
	LastAlertFiredAt time.Time `json:"last_alert_fired_at,omitzero"`
	// IncidentID is the incident the ticket belongs to, 0 when none: no
	// customer is texted for it, and it waits in review.
	IncidentID int64 `json:"incident_id,omitempty"`
	// FollowUp is the customer's request that waits for a person, nil when
	// none does. The ticket keeps its status meanwhile.
	FollowUp *FollowUp `json:"follow_up,omitempty"`
	// Timeline is filled by the store's single-ticket read only, oldest
	// event first.
	Timeline []TicketEvent `json:"timeline,omitempty"`
}

// FollowUp is a customer's request that needs a person: a task on the
// board until someone handles it (the timeline says who and when).
type FollowUp struct {
	// Reason is one of the FollowUp* reasons.
	Reason string `json:"reason"`
	// Since is when the first request still unhandled came.
	Since time.Time `json:"since"`
}

// The reasons for a follow-up.
const (
	FollowUpCall             = "call_requested"        // the customer asked to be called (CALL)
	FollowUpAfterDecline     = "reply_after_decline"   // the customer wrote after declining
	FollowUpAfterExpiry      = "reply_after_expiry"    // the customer wrote after the offer expired
	FollowUpUndelivered      = "offer_undelivered"     // the offer failed or was not delivered
	FollowUpDeclinedCritical = "declined_critical"     // a critical ticket was declined
	FollowUpOptedOut         = "reply_while_opted_out" // an opted-out customer wrote: no SMS may answer
)

// FollowUpNotes say what a person should do about each reason.
var FollowUpNotes = map[string]string{
	FollowUpCall:             "the customer asked to be called back",
	FollowUpAfterDecline:     "the customer wrote after declining the visit: call them",
	FollowUpAfterExpiry:      "the customer wrote after the offer expired: call them",
	FollowUpUndelivered:      "the offer SMS was not delivered: call the customer",
	FollowUpDeclinedCritical: "the customer declined a visit about a critical alert: call them",
	FollowUpOptedOut:         "the customer wrote but has opted out of that channel: call them",
}

// Outcome is what the visit found, recorded when a ticket closes; per rule,
// the share of fault_confirmed and part_replaced measures its precision.
type Outcome string

// The outcomes of a visit.
const (
	OutcomeFaultConfirmed Outcome = "fault_confirmed"
	OutcomeNoFaultFound   Outcome = "no_fault_found"
	OutcomePartReplaced   Outcome = "part_replaced"
	// OutcomeFalseAlarm closes a ticket dismissed without a visit: the alert
	// was not a coming failure. It counts against its rule's precision.
	OutcomeFalseAlarm Outcome = "false_alarm"
)

// Valid reports whether o is one of the declared outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomeFaultConfirmed, OutcomeNoFaultFound, OutcomePartReplaced, OutcomeFalseAlarm:
		return true
	}
	return false
}

// TicketEventKind classifies an entry of a ticket's timeline.
type TicketEventKind string

// The kinds of timeline event.
const (
	TicketEventAlert      TicketEventKind = "alert"      // an alert opened the ticket (body: rule, severity, summary, prediction, metrics)
	TicketEventState      TicketEventKind = "state"      // a transition (body: from, to, note; outcome and notes on close)
	TicketEventMessage    TicketEventKind = "message"    // an SMS sent or received (body: the notifier's)
	TicketEventComment    TicketEventKind = "comment"    // a person's remark (body: text)
	TicketEventAssignment TicketEventKind = "assignment" // a technician assigned or removed (body: technician, previous)
	TicketEventFollowUp   TicketEventKind = "follow_up"  // a follow-up raised (body: reason, note) or handled (body: handled, note)
)

// Valid reports whether k is one of the declared kinds.
func (k TicketEventKind) Valid() bool {
	switch k {
	case TicketEventAlert, TicketEventState, TicketEventMessage, TicketEventComment, TicketEventAssignment, TicketEventFollowUp:
		return true
	}
	return false
}

// TicketEvent is one entry of a ticket's append-only timeline. It is not a
// device's own event (see Event).
type TicketEvent struct {
	ID       int64           `json:"id"`
	TicketID int64           `json:"ticket_id"`
	At       time.Time       `json:"at"`
	Kind     TicketEventKind `json:"kind"`
	// Actor is who did it: a user, "customer", or a component such as
	// "rules" or "notify".
	Actor string `json:"actor"`
	// Body is a JSON object whose fields depend on Kind; compact, keys sorted.
	Body json.RawMessage `json:"body"`
}

// TicketStatuses lists every ticket status, in the order of the lifecycle
// and then the other terminal states.
var TicketStatuses = []TicketStatus{
	TicketOpen, TicketReview, TicketOffered, TicketScheduled, TicketVisited,
	TicketClosed, TicketDeclined, TicketExpired, TicketCancelled,
}

// transitions is the ticket state machine: for each non-terminal state, the
// states it may move to.
//
//	from       to
//	open       review, offered, scheduled, closed (dismissed), cancelled
//	review     open, offered, scheduled, closed (dismissed), cancelled
//	offered    scheduled, declined, expired, cancelled
//	scheduled  visited, cancelled
//	visited    closed (with an outcome), cancelled
//
// closed, declined, expired and cancelled are terminal. open → scheduled is
// for a visit booked by phone, without an SMS offer (a customer without
// consent). open or review → closed is a dismissal, with the outcome
// false_alarm. review → open is an approval that cannot text the customer
// (no consent, opted out): the field-service team takes it from there.
var transitions = map[TicketStatus][]TicketStatus{
	TicketOpen:      {TicketReview, TicketOffered, TicketScheduled, TicketClosed, TicketCancelled},
	TicketReview:    {TicketOpen, TicketOffered, TicketScheduled, TicketClosed, TicketCancelled},
	TicketOffered:   {TicketScheduled, TicketDeclined, TicketExpired, TicketCancelled},
	TicketScheduled: {TicketVisited, TicketCancelled},
	TicketVisited:   {TicketClosed, TicketCancelled},
}

// Valid reports whether s is a declared ticket status.
func (s TicketStatus) Valid() bool {
	_, ok := transitions[s]
	return ok || s.Terminal()
}

// Terminal reports whether a ticket in status s is finished: closed,
// declined, expired or cancelled.
func (s TicketStatus) Terminal() bool {
	switch s {
	case TicketClosed, TicketDeclined, TicketExpired, TicketCancelled:
		return true
	}
	return false
}

// Next returns the states a ticket in status s may move to; none for a
// terminal state. The slice is the caller's.
func (s TicketStatus) Next() []TicketStatus {
	return append([]TicketStatus(nil), transitions[s]...)
}

// CanTransition reports whether a ticket may move from status s to status to.
func (s TicketStatus) CanTransition(to TicketStatus) bool {
	for _, n := range transitions[s] {
		if n == to {
			return true
		}
	}
	return false
}

// MessageEvents maps each outgoing message of the timeline (by its outbox
// id) to the id of the timeline event that recorded it. A thread of
// messages follows the events' order, not the outbox times: the outbox
// keeps the time a reply was decided at, which comes before the customer's
// message that caused it was recorded, so by time a confirmation would show
// above the reply it answers.
func MessageEvents(timeline []TicketEvent) map[int64]int64 {
	out := map[int64]int64{}
	for _, e := range timeline {
		if e.Kind != TicketEventMessage {
			continue
		}
		var b struct {
			Direction string `json:"direction"`
			MessageID int64  `json:"message_id"`
		}
		if json.Unmarshal(e.Body, &b) == nil && b.Direction == "out" && b.MessageID > 0 {
			out[b.MessageID] = e.ID
		}
	}
	return out
}

// CompareThread orders two messages of a thread by the ids of the timeline
// events that recorded them (0 when none; those come last, by time).
func CompareThread(eventA int64, atA time.Time, eventB int64, atB time.Time) int {
	switch {
	case eventA != 0 && eventB != 0:
		return cmp.Compare(eventA, eventB)
	case eventA != 0:
		return -1
	case eventB != 0:
		return 1
	}
	return atA.Compare(atB)
}
