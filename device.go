package proactive

import (
	"encoding/json"
	"time"
)

// Device is one connected product in the registry.
type Device struct {
	ID DeviceID `json:"id"`
	// Model is what rules match with their models globs, e.g. fridge-a200.
	Model string `json:"model"`
	// Name is what the customer calls the device ("kitchen fridge"): the
	// SMS name it, or the model when it is empty.
	Name string `json:"name,omitempty"`
	// Serial is the manufacturer's serial number; unique per model when set.
	Serial string `json:"serial,omitempty"`
	// CustomerID is the owner, empty while the device has none.
	CustomerID string `json:"customer_id,omitempty"`
	// Site is where the device is installed.
	Site Address `json:"site"`
	// TimeZone is the IANA zone of the site, such as Europe/Paris: quiet
	// hours and visit slots are in it.
	TimeZone string `json:"time_zone"`
	// Installed is the installation date (midnight UTC of that day), zero
	// when unknown; device.age_days counts from it.
	Installed time.Time `json:"installed,omitzero"`
	Firmware  string    `json:"firmware,omitempty"`
	// Metadata is a JSON object of anything else, at most 16 KiB; read back
	// compact with its keys sorted.
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Address is a postal address.
type Address struct {
	Line1 string `json:"line1,omitempty"`
	Line2 string `json:"line2,omitempty"`
	City  string `json:"city,omitempty"`
	// PostalCode is stored upper case without spaces at its ends; a
	// technician's service area matches its prefix (spaces ignored).
	PostalCode string `json:"postal_code,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code, such as FR.
	Country string `json:"country,omitempty"`
}
