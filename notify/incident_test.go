package notify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// seedFleet registers n consenting customers, each with a device of model
// in Paris 11e: ids <prefix>00, <prefix>01, ...
func seedFleet(e *env, prefix, model string, n int) []proactive.DeviceID {
	e.t.Helper()
	var crew testenv.Crew
	var ids []proactive.DeviceID
	for i := range n {
		id := fmt.Sprintf("%s%02d", prefix, i)
		ids = append(ids, proactive.DeviceID(id))
		crew.Customers = append(crew.Customers, testenv.CrewCustomer{Consent: true,
			Customer: proactive.Customer{ID: "c-" + id, Name: "Customer " + id, Phone: fmt.Sprintf("+3369%07d", len(prefix)*1000+i), Language: "en"},
			Device: proactive.Device{ID: proactive.DeviceID(id), Model: model, TimeZone: "Europe/Paris",
				Site: proactive.Address{Line1: "1 rue Oberkampf", City: "Paris", PostalCode: "75011", Country: "FR"}}})
	}
	testenv.Seed(e.t, e.store, crew)
	return ids
}

// fleetAlert is rule compressor_wear, for fridges, firing on dev at at.
func fleetAlert(dev proactive.DeviceID, sev proactive.Severity, at time.Time) proactive.Alert {
	a := alert(string(dev), "compressor", sev, at)
	a.Models = []string{"fridge-*"}
	return a
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// The incident thresholds at their edges: 4 devices firing a rule are
// customers' problems, 5 are an incident, as long as they are at least 20%
// of the registered devices the rule applies to (its models: the ovens do
// not count). An incident's customers are not texted: the offers wait
// group_wait, and the incident forms meanwhile.
func TestIncidentThresholds(t *testing.T) {
	for _, tc := range []struct {
		name          string
		fridges, fire int // fridges beside the fixture's two; how many fire
		incident      bool
	}{
		{"4 devices of 20", 18, 4, false},
		{"5 devices of 20", 18, 5, true},
		{"5 devices of 26, 19%", 24, 5, false},
		{"5 devices of 25, 20%", 23, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testenv.SQLite(t), func(o *notify.Options) { o.GroupWait = 30 * time.Second })
			ids := seedFleet(e, "fridge-x", "fridge-b100", tc.fridges)
			seedFleet(e, "oven-", "oven-z1", 10)
			for _, id := range ids[:tc.fire] {
				e.n.Alerts(e.ctx, []proactive.Alert{fleetAlert(id, proactive.SeverityWarning, e.clock.Now())})
				e.clock.Add(time.Second)
			}
			e.poll()
			if n := len(e.tw.Messages()); n != 0 {
				t.Fatalf("%d SMS before group_wait passed, want none", n)
			}
			e.clock.Add(30 * time.Second)
			e.poll()
			incidents := must(e.store.ListIncidents(e.ctx, devices.IncidentFilter{}))
			texted := len(e.tw.Messages())
			if tc.incident {
				if len(incidents) != 1 || len(incidents[0].Devices) != tc.fire || texted != 0 {
					t.Fatalf("incidents %+v, %d SMS; want one incident of %d devices and no SMS", incidents, texted, tc.fire)
				}
				for _, id := range ids[:tc.fire] {
					if tk := e.ticket(string(id), "compressor"); tk.Status != proactive.TicketReview || tk.IncidentID != incidents[0].ID {
						t.Errorf("%s: ticket %s in incident %d, want review in %d", id, tk.Status, tk.IncidentID, incidents[0].ID)
					}
				}
				return
			}
			if len(incidents) != 0 || texted != tc.fire {
				t.Fatalf("incidents %+v, %d SMS; want no incident and %d offers", incidents, texted, tc.fire)
			}
		})
	}
}

// A burst of 10 critical alerts within a second texts nobody and forms one
// incident; an alert of the rule within the window after it joins it, also
// once the notifier has restarted; one outside the window is texted as
// usual once its own wait has passed.
func TestIncidentBurst(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		tune := func(o *notify.Options) { o.GroupWait = 30 * time.Second; o.Registerer = reg }
		e := newEnv(t, dsn, tune)
		ids := seedFleet(e, "fridge-x", "fridge-b100", 18)
		var burst []proactive.Alert
		for i, id := range ids[:10] {
			burst = append(burst, fleetAlert(id, proactive.SeverityCritical, e.clock.Now().Add(time.Duration(i)*90*time.Millisecond)))
		}
		e.n.Alerts(e.ctx, burst)
		e.clock.Add(time.Minute)
		e.poll()
		if msgs := e.tw.Messages(); len(msgs) != 0 {
			t.Fatalf("%d SMS for a burst of 10 critical alerts, want none: %v", len(msgs), msgs[0].Body)
		}
		incidents := must(e.store.ListIncidents(e.ctx, devices.IncidentFilter{}))
		if len(incidents) != 1 || len(incidents[0].Devices) != 10 || incidents[0].Rule != "compressor_wear" ||
			incidents[0].Status != proactive.IncidentOpen || incidents[0].Applicable != 20 {
			t.Fatalf("incidents %+v, want one open incident of 10 devices of 20", incidents)
		}
		if v := counterValue(t, reg, "proactive_notify_incidents_opened_total", ""); v != 1 {
			t.Errorf("incidents opened %v, want 1", v)
		}
		if v := counterValue(t, reg, "proactive_alerts_held_total", "incident"); v != 10 {
			t.Errorf("alerts held for an incident %v, want 10", v)
		}

		// A restart: another notifier on the same database.
		e.n = e.instance(func(o *notify.Options) { o.GroupWait = 30 * time.Second })
		e.clock.Add(10 * time.Minute)
		e.n.Alerts(e.ctx, []proactive.Alert{fleetAlert(ids[10], proactive.SeverityCritical, e.clock.Now())})
		e.clock.Add(time.Minute)
		e.poll()
		inc := must(e.store.GetIncident(e.ctx, incidents[0].ID))
		if len(inc.Devices) != 11 || len(e.tw.Messages()) != 0 {
			t.Fatalf("after a later alert: incident of %d devices, %d SMS; want 11 devices, none texted", len(inc.Devices), len(e.tw.Messages()))
		}
		if tk := e.ticket(string(ids[10]), "compressor"); tk.Status != proactive.TicketReview || tk.IncidentID != inc.ID {
			t.Errorf("the later alert's ticket is %s in incident %d, want review in %d", tk.Status, tk.IncidentID, inc.ID)
		}

		// Past the window after the incident's last alert, a lone alert is
		// a customer's problem again.
		e.clock.Add(20 * time.Minute)
		e.n.Alerts(e.ctx, []proactive.Alert{fleetAlert(ids[11], proactive.SeverityWarning, e.clock.Now())})
		e.poll()
		if n := len(e.tw.Messages()); n != 0 {
			t.Fatalf("%d SMS before the lone alert's group_wait passed", n)
		}
		e.clock.Add(31 * time.Second)
		e.poll()
		if msgs := e.tw.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Body, "compressor") {
			t.Fatalf("SMS after the lone alert's wait: %+v, want its one offer", msgs)
		}
	})
}

// group_wait: an offer goes out only once the wait has passed, from the
// database, so that a notifier restarted meanwhile sends it; with 0s it goes
// out at once.
func TestGroupWait(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.GroupWait = 30 * time.Second })
		e.fire("fridge-1", "compressor")
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketOpen {
			t.Fatalf("ticket %s during the wait, want open", tk.Status)
		}
		e.clock.Add(29 * time.Second)
		e.poll()
		e.wantSent("+33611111111", 0)

		e.n = e.instance(func(o *notify.Options) { o.GroupWait = 30 * time.Second }) // a restart
		e.clock.Add(2 * time.Second)
		e.poll()
		contains(t, e.wantSent("+33611111111", 1)[0], "compressor")
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketOffered {
			t.Fatalf("ticket %s after the wait, want offered", tk.Status)
		}
		e.clock.Add(time.Hour)
		e.poll()
		e.wantSent("+33611111111", 1)

		e.n = e.instance(nil) // group_wait 0s: at once
		e.fire("fridge-2", "compressor")
		e.wantSent("+33622222222", 1)
	})
}

// An incident of a contact: none rule texts nobody, as the rule never does,
// and leaves its tickets open for the field team, with the incident's id.
func TestIncidentOfFieldTeamRule(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), func(o *notify.Options) { o.GroupWait = 30 * time.Second })
	ids := seedFleet(e, "fridge-x", "fridge-b100", 8)
	for _, id := range ids[:5] {
		a := fleetAlert(id, proactive.SeverityInfo, e.clock.Now())
		a.Contact = proactive.ContactNone
		e.n.Alerts(e.ctx, []proactive.Alert{a})
	}
	e.clock.Add(time.Minute)
	e.poll()
	incidents := must(e.store.ListIncidents(e.ctx, devices.IncidentFilter{}))
	if len(incidents) != 1 || len(e.tw.Messages()) != 0 {
		t.Fatalf("incidents %+v, %d SMS; want one incident, no SMS", incidents, len(e.tw.Messages()))
	}
	for _, id := range ids[:5] {
		if tk := e.ticket(string(id), "compressor"); tk.Status != proactive.TicketOpen || tk.IncidentID != incidents[0].ID || tk.HeldReason != "contact_none" {
			t.Errorf("%s: ticket %s, incident %d, held %q; want open for the field team in incident %d", id, tk.Status, tk.IncidentID, tk.HeldReason, incidents[0].ID)
		}
	}
}
