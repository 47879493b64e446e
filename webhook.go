package proactive

import (
	"encoding/json"
	"time"
)

// EventType names what happened, for the systems that subscribe to it
// through a webhook.
type EventType string

// The event types a webhook may subscribe to: a ticket reaching each of
// its states, an incident forming, and a customer's requests.
const (
	EventTicketOpened      EventType = "ticket.opened"
	EventTicketReview      EventType = "ticket.review"
	EventTicketOffered     EventType = "ticket.offered"
	EventTicketScheduled   EventType = "ticket.scheduled"
	EventTicketVisited     EventType = "ticket.visited"
	EventTicketClosed      EventType = "ticket.closed"
	EventTicketDeclined    EventType = "ticket.declined"
	EventTicketExpired     EventType = "ticket.expired"
	EventTicketCancelled   EventType = "ticket.cancelled"
	EventIncidentOpened    EventType = "incident.opened"
	EventCallbackRequested EventType = "customer.callback_requested"
	EventCustomerOptedOut  EventType = "customer.opted_out"
)

// EventTypes lists every event type, in the order of the ticket's life.
var EventTypes = []EventType{EventTicketOpened, EventTicketReview, EventTicketOffered, EventTicketScheduled,
	EventTicketVisited, EventTicketClosed, EventTicketDeclined, EventTicketExpired, EventTicketCancelled,
	EventIncidentOpened, EventCallbackRequested, EventCustomerOptedOut}

// Valid reports whether e is one of EventTypes.
func (e EventType) Valid() bool {
	for _, t := range EventTypes {
		if t == e {
			return true
		}
	}
	return false
}

// TicketEventType is the event of a ticket reaching status s.
func TicketEventType(s TicketStatus) EventType {
	if s == TicketOpen {
		return EventTicketOpened
	}
	return EventType("ticket." + string(s))
}

// Webhook formats: JSON posts the Event itself; Slack posts {"text": ...},
// which Slack's and Microsoft Teams' incoming webhooks accept.
const (
	WebhookJSON  = "json"
	WebhookSlack = "slack"
)

// Webhook is a subscription of another system to events: each event of
// Events is posted to URL, signed with the secret (never shown again).
type Webhook struct {
	ID     int64       `json:"id"`
	URL    string      `json:"url"`
	Events []EventType `json:"events"`
	// Format is json (the Event) or slack ({"text"}).
	Format  string    `json:"format"`
	Enabled bool      `json:"enabled"`
	Created time.Time `json:"created_at"`
	// CreatedBy names the token that registered it.
	CreatedBy string `json:"created_by,omitempty"`
}

// OutboundEvent is what a webhook delivery posts: ID is the same on every retry
// (receivers deduplicate by it), Data the ticket (with its device_id), the
// incident, or the customer event.
type OutboundEvent struct {
	ID   string          `json:"id"`
	Type EventType       `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// CustomerEvent is the Data of the customer.* events.
type CustomerEvent struct {
	CustomerID string `json:"customer_id"`
	// TicketID is the ticket the request was made about, 0 for none.
	TicketID int64 `json:"ticket_id,omitempty"`
	// DeviceID is that ticket's device.
	DeviceID DeviceID `json:"device_id,omitempty"`
	// Reason is the follow-up reason or the consent event's note.
	Reason string `json:"reason,omitempty"`
	// Method is how the customer opted out (sms, phone_call ...).
	Method ConsentMethod `json:"method,omitempty"`
	// Channel is the channel opted out of (sms, whatsapp, email).
	Channel Channel `json:"channel,omitempty"`
}

// TicketEventData is the data of a ticket.* event: the ticket, and once a
// visit is booked (ticket.scheduled, ticket.visited) the visit, so that a
// field-service tool or a CRM knows when and who without asking back.
type TicketEventData struct {
	Ticket
	Visit *Visit `json:"visit,omitempty"`
}

// Visit is a ticket's booked visit in an outbound event.
type Visit struct {
	TechnicianID string    `json:"technician_id"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	// TimeZone is the site's (IANA), Label the visit in it with its zone,
	// as the customer and the technician see it.
	TimeZone string `json:"time_zone"`
	Label    string `json:"label"`
}
