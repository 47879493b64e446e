package proactive

import "time"

// Customer owns devices and receives the SMS offers about them.
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
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
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
)

// Valid reports whether m is one of the declared methods.
func (m ConsentMethod) Valid() bool {
	switch m {
	case ConsentWebForm, ConsentSMS, ConsentPhoneCall, ConsentWritten, ConsentImport, ConsentAPI:
		return true
	}
	return false
}

// ConsentEvent is one entry of a customer's SMS consent audit trail.
type ConsentEvent struct {
	ID         int64  `json:"id"`
	CustomerID string `json:"customer_id"`
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
