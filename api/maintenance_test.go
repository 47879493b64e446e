package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// The route cases of the maintenance routes, for routeCases.

func addMaintenanceHappy(t *testing.T, f *fixture) call {
	id := f.id("m")
	f.device(t, id, "")
	return call{dispatcher, "/devices/" + id + "/maintenance",
		`{"time": "2026-03-01T09:30:00+01:00", "component": "compressor", "kind": "replaced", "notes": "new unit"}`, 201,
		func(t *testing.T, f *fixture, r response) {
			var got proactive.Maintenance
			r.decode(t, &got)
			want := proactive.Maintenance{ID: got.ID, Device: proactive.DeviceID(id), Time: time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC),
				Component: "compressor", Kind: proactive.MaintenanceReplaced, Notes: "new unit"}
			if got.ID <= 0 || got != want {
				t.Errorf("created %+v, want %+v", got, want)
			}
			jsonHas(`"device_id":"`+id+`"`, `"time":"2026-03-01T08:30:00Z"`)(t, f, r)
		}}
}

func addMaintenanceBad(t *testing.T, f *fixture) call {
	return call{dispatcher, "/devices/d-base/maintenance", `{"time": "yesterday", "component": "Fan", "kind": "oiled"}`, 422,
		hasFields("invalid", "time", "component", "kind")}
}

func listMaintenanceHappy(t *testing.T, f *fixture) call {
	id := f.id("m")
	f.device(t, id, "")
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	if _, err := f.store.AddMaintenance(t.Context(), []proactive.Maintenance{
		{Device: proactive.DeviceID(id), Time: at.Add(time.Hour), Component: "fan", Kind: proactive.MaintenanceInspected},
		{Device: proactive.DeviceID(id), Time: at, Component: "compressor", Kind: proactive.MaintenanceRepaired},
	}); err != nil {
		t.Fatal(err)
	}
	return call{dispatcher, "/devices/" + id + "/maintenance", "", 200, func(t *testing.T, f *fixture, r response) {
		var got struct{ Items []proactive.Maintenance }
		r.decode(t, &got)
		if len(got.Items) != 2 || got.Items[0].Component != "compressor" || got.Items[1].Component != "fan" || got.Items[0].ID == 0 {
			t.Errorf("history, oldest first: %s", r.body)
		}
	}}
}

func listMaintenanceBad(t *testing.T, f *fixture) call {
	return call{dispatcher, "/devices/ghost/maintenance", "", 404, hasFields("not_found")}
}

// The maintenance routes: an unknown device is 404, a device with no
// history an empty list, a time in Unix milliseconds is taken, the same
// record again keeps its id, and closing a ticket with part_replaced shows
// in the history.
func TestMaintenanceRoutes(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) { testMaintenanceRoutes(t, newFixture(t, dsn)) })
}

func testMaintenanceRoutes(t *testing.T, f *fixture) {
	want(t, f.as(t, admin, "POST", "/devices/ghost/maintenance", `{"time": 1772352000000, "component": "fan", "kind": "inspected"}`), 404)
	r := f.as(t, admin, "GET", "/devices/d-base/maintenance", "")
	want(t, r, 200)
	jsonHas(`{"items":[]}`)(t, f, r)

	body := `{"time": 1772352000000, "component": "fan", "kind": "inspected"}`
	r = f.as(t, admin, "POST", "/devices/d-base/maintenance", body)
	want(t, r, 201)
	var first, again proactive.Maintenance
	r.decode(t, &first)
	r = f.as(t, dispatcher, "POST", "/devices/d-base/maintenance", body)
	want(t, r, 201)
	r.decode(t, &again)
	if first.ID == 0 || again != first || !first.Time.Equal(time.UnixMilli(1772352000000)) {
		t.Errorf("first %+v, again %+v", first, again)
	}
	r = f.as(t, admin, "POST", "/devices/d-base/maintenance", `{"time": "soon", "component": "fan", "kind": "inspected"}`)
	want(t, r, 422)
	if _, msg, fields := r.err(t); fields["time"] == "" || len(fields) != 1 || msg == "" {
		t.Errorf("bad time: %q %v", msg, fields)
	}
	r = f.as(t, admin, "POST", "/devices/d-base/maintenance", `{"component": "fan", "kind": "inspected"}`)
	want(t, r, 422)
	hasFields("invalid", "time")(t, f, r)

	tk := f.ticket(t, "", proactive.TicketScheduled, proactive.TicketVisited)
	r = f.as(t, dispatcher, "POST", fmt.Sprintf("/tickets/%d/close", tk.ID), `{"outcome": "part_replaced", "notes": "new compressor"}`)
	want(t, r, 200)
	var closed proactive.Ticket
	r.decode(t, &closed)
	r = f.as(t, dispatcher, "GET", "/devices/"+string(tk.Device)+"/maintenance", "")
	want(t, r, 200)
	var got struct{ Items []proactive.Maintenance }
	r.decode(t, &got)
	if len(got.Items) != 1 || got.Items[0].Kind != proactive.MaintenanceReplaced || got.Items[0].Component != "compressor" ||
		!got.Items[0].Time.Equal(closed.ClosedAt) || got.Items[0].Notes != "new compressor" {
		t.Errorf("after closing with part_replaced: %s", r.body)
	}
}
