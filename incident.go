package proactive

import "time"

// IncidentStatus is where an incident stands.
type IncidentStatus string

// Incident states: open while it groups its rule's alerts and its tickets
// wait in review; dismissed once a dispatcher has closed it as a false
// alarm.
const (
	IncidentOpen      IncidentStatus = "open"
	IncidentDismissed IncidentStatus = "dismissed"
)

// Incident is many devices firing the same rule at once: one problem (often
// ours, such as an outage) rather than many customers' problems. No customer
// is texted for its alerts; its tickets wait in review with its id.
type Incident struct {
	ID     int64          `json:"id"`
	Rule   string         `json:"rule"`
	Status IncidentStatus `json:"status"`
	// OpenedAt is when the platform formed it; FirstAlertAt and LastAlertAt
	// are the alert times (the devices' clock) of its earliest and latest
	// alerts. Later alerts of the rule within the window of LastAlertAt join
	// it.
	OpenedAt     time.Time `json:"opened_at"`
	FirstAlertAt time.Time `json:"first_alert_at"`
	LastAlertAt  time.Time `json:"last_alert_at"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	// Applicable is how many registered devices the rule applied to when
	// the incident formed: the base of its share.
	Applicable int `json:"applicable_devices"`
	// Devices are the ids of the devices whose alerts it grouped, sorted.
	Devices []DeviceID `json:"devices"`
	// Tickets are the ids of the tickets it holds, ascending.
	Tickets []int64 `json:"tickets"`
}
