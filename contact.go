package proactive

// Contact is a rule's contact policy: whether its alerts text the
// customer directly, through a person first, or never.
type Contact string

// The contact policies of a rule (its `contact` key).
const (
	// ContactAuto texts the customer an offer when the alert opens a
	// ticket; the default.
	ContactAuto Contact = "auto"
	// ContactReview opens the ticket in review: a dispatcher approves it
	// (the offer goes out) or dismisses it (a false alarm).
	ContactReview Contact = "review"
	// ContactNone opens a ticket for the field-service team only and never
	// texts the customer: connectivity and platform-side problems.
	ContactNone Contact = "none"
)

// Valid reports whether c is a declared policy; empty is not.
func (c Contact) Valid() bool {
	switch c {
	case ContactAuto, ContactReview, ContactNone:
		return true
	}
	return false
}

// OrAuto returns c, or ContactAuto when c is empty.
func (c Contact) OrAuto() Contact {
	if c == "" {
		return ContactAuto
	}
	return c
}
