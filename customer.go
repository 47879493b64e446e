package proactive

import "time"

// Customer owns devices and receives the offers about them, on the channel
// they prefer.
type Customer struct {
	// ID matches [A-Za-z0-9_.-]{1,64}, like a device id.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Phone is the mobile number in E.164 form (+14155550123). It is unique:
	// an inbound SMS finds its customer by it. Spaces, dots, dashes and
	// parentheses are removed on write.
	Phone string `json:"phone"`
	// Language is the language of the customer's messages, a BCP 47 tag
	// such as en, fr or de-CH; default en.
	Language string `json:"language"`
	// QuietHours is when no message is sent, in the local time of the
	// device concerned. Nil on write means the default, 21:00–08:00; it is
	// never nil on read.
	QuietHours *QuietHours `json:"quiet_hours"`
	// SMSConsent is whether the customer agrees to be texted, as the latest
	// consent event says, and ConsentAt when that event happened (zero if
	// none ever did). Both are read-only for writers of a customer: only a
	// recorded ConsentEvent changes them, which keeps the audit trail.
	SMSConsent bool      `json:"sms_consent"`
	ConsentAt  time.Time `json:"consent_at,omitzero"`
	// PreferredChannel is where the customer's messages go: sms (the
	// default, also when empty on write), whatsapp (to Phone) or email (to
	// Email, which it then requires).
	PreferredChannel Channel `json:"preferred_channel"`
	// Email is the customer's email address, empty for none.
	Email string `json:"email,omitempty"`
	// WhatsAppConsent and EmailConsent are the consents of the other
	// channels, kept like SMSConsent: read-only, changed by ConsentEvents
	// of their channel. Each channel has its own: STOP on WhatsApp opts out
	// of WhatsApp only.
	WhatsAppConsent   bool      `json:"whatsapp_consent"`
	WhatsAppConsentAt time.Time `json:"whatsapp_consent_at,omitzero"`
	EmailConsent      bool      `json:"email_consent"`
	EmailConsentAt    time.Time `json:"email_consent_at,omitzero"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Channel is a way of reaching a customer.
type Channel string

// The channels.
const (
	ChannelSMS      Channel = "sms"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelEmail    Channel = "email"
)

// Channels lists every channel, in the order they are shown.
var Channels = []Channel{ChannelSMS, ChannelWhatsApp, ChannelEmail}

// Valid reports whether ch is a declared channel; empty is not.
func (ch Channel) Valid() bool {
	return ch == ChannelSMS || ch == ChannelWhatsApp || ch == ChannelEmail
}

// OrSMS returns ch, or ChannelSMS when ch is empty.
func (ch Channel) OrSMS() Channel {
	if ch == "" {
		return ChannelSMS
	}
	return ch
}

// Consents reports whether the customer agrees to messages on ch.
func (c Customer) Consents(ch Channel) bool {
	switch ch.OrSMS() {
	case ChannelWhatsApp:
		return c.WhatsAppConsent
	case ChannelEmail:
		return c.EmailConsent && c.Email != ""
	}
	return c.SMSConsent
}

// ConsentTime is when the latest consent event of ch happened, zero if
// none ever did.
func (c Customer) ConsentTime(ch Channel) time.Time {
	switch ch.OrSMS() {
	case ChannelWhatsApp:
		return c.WhatsAppConsentAt
	case ChannelEmail:
		return c.EmailConsentAt
	}
	return c.ConsentAt
}

// Reachable reports whether the customer may get messages on their
// preferred channel.
func (c Customer) Reachable() bool { return c.Consents(c.PreferredChannel) }

// Address is where a message on ch goes: the phone number for SMS and
// WhatsApp, the email address for email.
func (c Customer) Address(ch Channel) string {
	if ch == ChannelEmail {
		return c.Email
	}
	return c.Phone
}

// ConsentMethod says how a customer gave or withdrew consent.
type ConsentMethod string

// The ways consent is recorded.
const (
	ConsentWebForm   ConsentMethod = "web_form"   // a form the customer filled in
	ConsentSMS       ConsentMethod = "sms"        // a keyword by SMS: START, STOP and the carrier stop words
	ConsentPhoneCall ConsentMethod = "phone_call" // told to an agent on the phone
	ConsentWritten   ConsentMethod = "written"    // a signed paper or contract
	ConsentImport    ConsentMethod = "import"     // carried over from another system by an import
	ConsentAPI       ConsentMethod = "api"        // set through the API by an operator
	ConsentWhatsApp  ConsentMethod = "whatsapp"   // a keyword by WhatsApp: START, STOP
	ConsentEmailLink ConsentMethod = "email_link" // the unsubscribe link or header of an email
)

// Valid reports whether m is one of the declared methods.
func (m ConsentMethod) Valid() bool {
	switch m {
	case ConsentWebForm, ConsentSMS, ConsentPhoneCall, ConsentWritten, ConsentImport, ConsentAPI, ConsentWhatsApp,
		ConsentEmailLink:
		return true
	}
	return false
}

// ConsentEvent is one entry of a customer's consent audit trail.
type ConsentEvent struct {
	ID         int64  `json:"id"`
	CustomerID string `json:"customer_id"`
	// Channel is the channel consented to or withdrawn: sms when empty on
	// write.
	Channel Channel `json:"channel"`
	// At is when the customer gave or withdrew consent; zero on write means
	// now.
	At      time.Time     `json:"at"`
	Granted bool          `json:"granted"`
	Method  ConsentMethod `json:"method"`
	// Actor is who recorded it: a user name, "customer" for the customer's
	// own keyword, or the import's file name.
	Actor string `json:"actor"`
	Note  string `json:"note,omitempty"`
}
