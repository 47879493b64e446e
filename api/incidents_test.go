package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/api/client"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// incident makes an open incident of rule fleet_glitch (which no alert of
// the other tests fires) from two new tickets of that rule in review.
func (f *fixture) incident(tb testing.TB) proactive.Incident {
	tb.Helper()
	ctx := tb.Context()
	var id int64
	at := time.Now()
	// Tickets of their own rule: dismissing them as false alarms must not
	// lower the precision of the rule the other route cases fire.
	var tickets []proactive.Ticket
	for range 2 {
		dev := f.id("inc")
		f.device(tb, dev, "")
		t, _, err := f.store.OpenTicket(ctx, proactive.Alert{Rule: "fleet_glitch", Device: proactive.DeviceID(dev), Component: "compressor",
			Severity: proactive.SeverityWarning, State: proactive.AlertFiring, Summary: "glitch"})
		if err != nil {
			tb.Fatal(err)
		}
		tickets = append(tickets, t)
	}
	err := f.store.WithTx(ctx, func(tx *devices.Tx) error {
		for _, t := range tickets {
			if err := tx.RecordFiring(ctx, "fleet_glitch", t.Device, t.ID, at); err != nil {
				return err
			}
		}
		var err error
		if id, err = tx.OpenIncident(ctx, "fleet_glitch", at, 2); err != nil {
			return err
		}
		_, err = tx.JoinIncident(ctx, id, at, at, 0)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	i, err := f.store.GetIncident(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	return i
}

// The client lists, reads and dismisses incidents through the real routes.
func TestClientIncidents(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	i := f.incident(t)
	c := client.New(strings.TrimSuffix(f.url, api.Prefix), client.Options{Token: f.token[devices.RoleDispatcher]})
	list, err := c.Incidents(t.Context(), proactive.IncidentOpen)
	if err != nil || len(list) != 1 || list[0].ID != i.ID || len(list[0].Devices) != 2 {
		t.Fatalf("Incidents(open) = %+v, %v; want the one incident of 2 devices", list, err)
	}
	got, err := c.DismissIncident(t.Context(), i.ID, "a broker outage")
	if err != nil || got.Status != proactive.IncidentDismissed {
		t.Fatalf("DismissIncident = %+v, %v", got, err)
	}
	if got, err = c.Incident(t.Context(), i.ID); err != nil || got.Status != proactive.IncidentDismissed || len(got.Tickets) != 2 {
		t.Fatalf("Incident = %+v, %v", got, err)
	}
	if _, err := c.DismissIncident(t.Context(), i.ID, ""); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("second dismissal: %v, want a 409", err)
	}
	if list, err := c.Incidents(t.Context(), proactive.IncidentOpen); err != nil || len(list) != 0 {
		t.Errorf("Incidents(open) after the dismissal = %+v, %v; want none", list, err)
	}
}
