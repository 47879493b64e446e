package devices_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// The store suite runs on both dialects through internal/testenv.
var (
	sqliteDSN   = testenv.SQLite
	postgresDSN = testenv.Postgres
	dialects    = testenv.Dialects
	eachDialect = testenv.EachDialect
)

// fakeClock is a settable clock for the store.
type fakeClock = testenv.Clock

func newClock() *fakeClock { return testenv.NewClock(time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)) }

// mustOpen opens the store at dsn with cheap bcrypt (tests hash often) and
// closes it at cleanup.
func mustOpen(tb testing.TB, dsn string, opts ...func(*devices.Options)) *devices.Store {
	tb.Helper()
	o := devices.Options{BcryptCost: bcrypt.MinCost}
	for _, f := range opts {
		f(&o)
	}
	s, err := devices.OpenOptions(context.Background(), dsn, o)
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func withClock(c *fakeClock) func(*devices.Options) {
	return func(o *devices.Options) { o.Now = c.Now }
}

// wantCode fails unless err carries the proactive error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := proactive.ErrorCode(err); got != code {
		tb.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func mustCustomer(tb testing.TB, s *devices.Store, id, phone string) proactive.Customer {
	tb.Helper()
	c, err := s.CreateCustomer(tb.Context(), proactive.Customer{ID: id, Name: "Customer " + id, Phone: phone})
	if err != nil {
		tb.Fatalf("create customer %s: %v", id, err)
	}
	return c
}

func mustDevice(tb testing.TB, s *devices.Store, id, customer string) proactive.Device {
	tb.Helper()
	d, err := s.CreateDevice(tb.Context(), proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a200",
		CustomerID: customer, TimeZone: "Europe/Paris", Site: proactive.Address{PostalCode: "75011", Country: "FR"}})
	if err != nil {
		tb.Fatalf("create device %s: %v", id, err)
	}
	return d
}

func mustTechnician(tb testing.TB, s *devices.Store, id string) proactive.Technician {
	tb.Helper()
	t, err := s.CreateTechnician(tb.Context(), proactive.Technician{ID: id, Name: "Tech " + id, Phone: "+33612345678",
		TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"75"}})
	if err != nil {
		tb.Fatalf("create technician %s: %v", id, err)
	}
	return t
}

func alert(dev, component string) proactive.Alert {
	return proactive.Alert{Rule: "compressor_wear", Device: proactive.DeviceID(dev), Model: "fridge-a200",
		Component: component, Severity: proactive.SeverityWarning, State: proactive.AlertFiring,
		Summary: "Compressor current 6.1 A, above its weekly norm", TimeToFailure: 72 * time.Hour}
}

func mustOpenTicket(tb testing.TB, s *devices.Store, a proactive.Alert) proactive.Ticket {
	tb.Helper()
	t, created, err := s.OpenTicket(tb.Context(), a)
	if err != nil || !created {
		tb.Fatalf("open ticket %s/%s: created %v, %v", a.Device, a.Component, created, err)
	}
	return t
}

func mustTransition(tb testing.TB, s *devices.Store, id int64, to ...proactive.TicketStatus) proactive.Ticket {
	tb.Helper()
	var t proactive.Ticket
	for _, st := range to {
		var err error
		if t, err = s.Transition(tb.Context(), id, st, "dispatcher", ""); err != nil {
			tb.Fatalf("transition %d to %s: %v", id, st, err)
		}
	}
	return t
}

// fieldErrors returns err's *FieldErrors, failing the test if it has none.
func fieldErrors(tb testing.TB, err error) *devices.FieldErrors {
	tb.Helper()
	var fe *devices.FieldErrors
	if !errors.As(err, &fe) {
		tb.Fatalf("error %v: want *devices.FieldErrors", err)
	}
	return fe
}
