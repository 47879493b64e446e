package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

// Registry is the part of the store that seeding writes; *devices.Store has
// these methods. Declared here rather than importing devices, so that the
// tests of devices itself may use testenv.
type Registry interface {
	CreateCustomer(ctx context.Context, c proactive.Customer) (proactive.Customer, error)
	RecordConsent(ctx context.Context, customerID string, ev proactive.ConsentEvent) (proactive.ConsentEvent, error)
	CreateDevice(ctx context.Context, d proactive.Device) (proactive.Device, error)
	CreateTechnician(ctx context.Context, t proactive.Technician) (proactive.Technician, error)
}

// Crew is the registry an outreach test starts from: customers, each with
// one device, and the technicians who may visit them.
type Crew struct {
	Customers   []CrewCustomer
	Technicians []proactive.Technician
}

// CrewCustomer is a customer, whether they agreed to be texted, and their
// device.
type CrewCustomer struct {
	proactive.Customer
	Consent bool
	Device  proactive.Device
}

// Seed registers crew in reg: each customer, their consent (given on a web
// form) when Consent is set, their device, then the technicians. A failure
// fails the test.
func Seed(tb testing.TB, reg Registry, crew Crew) {
	tb.Helper()
	ctx := tb.Context()
	for _, c := range crew.Customers {
		if _, err := reg.CreateCustomer(ctx, c.Customer); err != nil {
			tb.Fatalf("seed customer %s: %v", c.ID, err)
		}
		if c.Consent {
			ev := proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}
			if _, err := reg.RecordConsent(ctx, c.ID, ev); err != nil {
				tb.Fatalf("seed consent of %s: %v", c.ID, err)
			}
		}
		d := c.Device
		d.CustomerID = c.ID
		if _, err := reg.CreateDevice(ctx, d); err != nil {
			tb.Fatalf("seed device %s: %v", d.ID, err)
		}
	}
	for _, t := range crew.Technicians {
		if _, err := reg.CreateTechnician(ctx, t); err != nil {
			tb.Fatalf("seed technician %s: %v", t.ID, err)
		}
	}
}

// Paris is the Europe/Paris zone of the Paris crew. It panics without the
// zone database, which every test of the crew needs.
var Paris = sync.OnceValue(func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return l
})

// Monday0830 is Monday 9 March 2026, 08:30 in Paris: technicians work, and
// it is past the default quiet hours (21:00–08:00), so an offer goes out.
func Monday0830() time.Time { return time.Date(2026, 3, 9, 8, 30, 0, 0, Paris()) }

// Weekdays returns office hours, Monday to Friday 08:00–17:00; a new value
// each time, so that a test may change its copy.
func Weekdays() proactive.WeeklyHours {
	return proactive.WeeklyHours{
		time.Monday: {{Start: 8 * 60, End: 17 * 60}}, time.Tuesday: {{Start: 8 * 60, End: 17 * 60}},
		time.Wednesday: {{Start: 8 * 60, End: 17 * 60}}, time.Thursday: {{Start: 8 * 60, End: 17 * 60}},
		time.Friday: {{Start: 8 * 60, End: 17 * 60}},
	}
}

// ParisCrew is the crew the notify and web tests share: Alice Martin
// (+33611111111, English) with fridge-1 at 10 rue Oberkampf and Bruno
// Petit (+33622222222, French) with fridge-2 at 11 rue Oberkampf, both in
// Paris 11e and both consenting; Paula (tech-paris, +33633333333) who
// repairs compressors in département 75 and Leo (tech-lyon, +33644444444)
// who repairs them in 69, both on Weekdays. A test package changes its copy
// (consent, skills, more technicians) to suit what it tests.
func ParisCrew() Crew {
	var crew Crew
	for i, c := range []proactive.Customer{
		{ID: "alice", Name: "Alice Martin", Phone: "+33611111111", Language: "en"},
		{ID: "bruno", Name: "Bruno Petit", Phone: "+33622222222", Language: "fr"},
	} {
		crew.Customers = append(crew.Customers, CrewCustomer{Customer: c, Consent: true, Device: proactive.Device{
			ID: proactive.DeviceID(fmt.Sprintf("fridge-%d", i+1)), Model: "fridge-a200", TimeZone: "Europe/Paris",
			Site: proactive.Address{Line1: fmt.Sprintf("%d rue Oberkampf", 10+i), City: "Paris", PostalCode: "75011", Country: "FR"}}})
	}
	crew.Technicians = []proactive.Technician{
		{ID: "tech-paris", Name: "Paula", Phone: "+33633333333", TimeZone: "Europe/Paris",
			Skills: []string{"compressor"}, ServiceArea: []string{"75"}, Hours: Weekdays()},
		{ID: "tech-lyon", Name: "Leo", Phone: "+33644444444", TimeZone: "Europe/Paris",
			Skills: []string{"compressor"}, ServiceArea: []string{"69"}, Hours: Weekdays()},
	}
	return crew
}
