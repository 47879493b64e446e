package notify_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// TestReassign moves a booked visit to another technician: only to one who
// repairs the component, serves the site and is free then; the visit keeps
// its id and time, the ticket follows, and the timeline says so.
func TestReassign(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := e.ctx
		// More Paris compressor technicians: Pierre (free), Bea (busy
		// then), Odile (away then), Nina (works afternoons only).
		afternoons := proactive.WeeklyHours{}
		for d := time.Monday; d <= time.Friday; d++ {
			afternoons[d] = []proactive.Shift{{Start: 14 * 60, End: 18 * 60}}
		}
		tue := time.Date(2026, 3, 10, 0, 0, 0, 0, paris)
		open := func(dev, component string) proactive.Ticket {
			t.Helper()
			tk, _, err := e.store.OpenTicket(ctx, alert(dev, component, proactive.SeverityWarning, e.clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			return tk
		}
		for i, tc := range []proactive.Technician{
			{ID: "tech-pierre", Name: "Pierre", Hours: weekdays},
			{ID: "tech-bea", Name: "Bea", Hours: weekdays},
			{ID: "tech-odile", Name: "Odile", Hours: weekdays, TimeOff: []proactive.TimeOff{{Start: tue, End: tue.Add(24 * time.Hour)}}},
			{ID: "tech-nina", Name: "Nina", Hours: afternoons},
		} {
			tc.Phone, tc.TimeZone, tc.Skills, tc.ServiceArea = fmt.Sprintf("+3369900000%d", i), "Europe/Paris", []string{"compressor"}, []string{"75"}
			must(e.store.CreateTechnician(ctx, tc))
		}
		visit := notify.Slot{Technician: "tech-paris", Start: tue.Add(8 * time.Hour), End: tue.Add(10 * time.Hour)}
		first := open("fridge-1", "compressor")
		a := must(e.n.Book(ctx, first.ID, visit, "dispatcher"))
		other := open("fridge-2", "compressor")
		must(e.n.Book(ctx, other.ID, notify.Slot{Technician: "tech-bea", Start: visit.Start.Add(time.Hour), End: visit.End.Add(time.Hour)}, "dispatcher"))
		unbooked := open("fridge-2", "fan")

		for _, tc := range []struct {
			name, tech string
			ticket     int64
			code, msg  string
		}{
			{"another region", "tech-lyon", first.ID, proactive.EInvalid, "does not serve"},
			{"another skill", "tech-fans", first.ID, proactive.EInvalid, "does not repair"},
			{"unknown technician", "tech-nobody", first.ID, proactive.ENotFound, ""},
			{"busy", "tech-bea", first.ID, proactive.EConflict, "another visit"},
			{"away", "tech-odile", first.ID, proactive.EConflict, "away"},
			{"off duty", "tech-nina", first.ID, proactive.EConflict, "working hours"},
			{"no visit", "tech-fans", unbooked.ID, proactive.ENotFound, "no booked visit"},
			{"no technician", "", first.ID, proactive.EInvalid, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.n.Reassign(ctx, tc.ticket, tc.tech, "dispatcher")
				if proactive.ErrorCode(err) != tc.code || !strings.Contains(proactive.ErrorMessage(err), tc.msg) {
					t.Fatalf("Reassign to %q: %v, want %s saying %q", tc.tech, err, tc.code, tc.msg)
				}
			})
		}
		if got := must(e.n.Appointments(ctx, notify.AppointmentFilter{Ticket: first.ID})); len(got) != 1 || got[0].Technician != "tech-paris" {
			t.Fatalf("after refused moves the visit is %+v, want Paula's", got)
		}

		moved, err := e.n.Reassign(ctx, first.ID, "tech-pierre", "dispatcher")
		if err != nil {
			t.Fatal(err)
		}
		if moved.ID != a.ID || moved.Technician != "tech-pierre" || !moved.Start.Equal(a.Start) || !moved.End.Equal(a.End) || moved.Status != "booked" {
			t.Errorf("moved visit %+v, want %+v with Pierre", moved, a)
		}
		if got := must(e.n.Appointments(ctx, notify.AppointmentFilter{Technician: "tech-paris"})); len(got) != 0 {
			t.Errorf("Paula still has %+v", got)
		}
		if got := must(e.n.Appointments(ctx, notify.AppointmentFilter{Technician: "tech-pierre"})); len(got) != 1 || got[0].ID != a.ID {
			t.Errorf("Pierre has %+v, want the visit", got)
		}
		tk := must(e.store.GetTicket(ctx, first.ID))
		if tk.Technician != "tech-pierre" || tk.Status != proactive.TicketScheduled {
			t.Errorf("ticket %s assigned to %q, want scheduled with tech-pierre", tk.Status, tk.Technician)
		}
		var note, assignment bool
		for _, ev := range tk.Timeline {
			var b map[string]any
			_ = json.Unmarshal(ev.Body, &b)
			switch {
			case ev.Kind == proactive.TicketEventComment && b["from"] == "tech-paris" && b["to"] == "tech-pierre" &&
				strings.Contains(b["text"].(string), "Tue 10 Mar 08:00-10:00"):
				note = true
			case ev.Kind == proactive.TicketEventAssignment && b["technician"] == "tech-pierre" && b["previous"] == "tech-paris" && ev.Actor == "dispatcher":
				assignment = true
			}
		}
		if !note || !assignment {
			t.Errorf("timeline lacks the move (%v) or the assignment (%v): %+v", note, assignment, tk.Timeline)
		}
		// Paula is free again: the visit can go back to her.
		if back, err := e.n.Reassign(ctx, first.ID, "tech-paris", "dispatcher"); err != nil || back.Technician != "tech-paris" {
			t.Errorf("move back to Paula: %+v, %v", back, err)
		}
		// Once the visit has begun it stays.
		e.clock.Set(visit.Start.Add(time.Minute))
		if _, err := e.n.Reassign(ctx, first.ID, "tech-pierre", "dispatcher"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("moving a visit under way: %v, want conflict", err)
		}
	})
}

// TestReassignHeldSlot refuses a technician whose time is held for another
// customer's offer.
func TestReassignHeldSlot(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	ctx := e.ctx
	// fridge-2's offer holds Paula's first three slots.
	e.fire("fridge-2", "compressor")
	conv := must(e.n.Conversation(ctx, e.ticket("fridge-2", "compressor").ID))
	held := conv.Slots[0]
	// Pierre has fridge-1's visit at that time, and it cannot move to Paula.
	must(e.store.CreateTechnician(ctx, proactive.Technician{ID: "tech-pierre", Name: "Pierre", Phone: "+33699000001", TimeZone: "Europe/Paris",
		Skills: []string{"compressor"}, ServiceArea: []string{"75"}, Hours: weekdays}))
	first, _, err := e.store.OpenTicket(ctx, alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	must(e.n.Book(ctx, first.ID, notify.Slot{Technician: "tech-pierre", Start: held.Start, End: held.End}, "dispatcher"))
	_, err = e.n.Reassign(ctx, first.ID, held.Technician, "dispatcher")
	if proactive.ErrorCode(err) != proactive.EConflict || !strings.Contains(proactive.ErrorMessage(err), "another customer") {
		t.Fatalf("moving onto a held slot: %v, want a conflict", err)
	}
}

// TestReassignRace moves two visits at the same time onto one technician
// at once: exactly one move wins, the other is a conflict.
func TestReassignRace(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ctx := e.ctx
		for i, id := range []string{"tech-bea", "tech-pierre"} {
			must(e.store.CreateTechnician(ctx, proactive.Technician{ID: id, Name: id, Phone: fmt.Sprintf("+3369900001%d", i),
				TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"75"}, Hours: weekdays}))
		}
		tue8 := time.Date(2026, 3, 10, 8, 0, 0, 0, paris)
		var tickets []int64
		for i, tech := range []string{"tech-paris", "tech-bea"} {
			tk, _, err := e.store.OpenTicket(ctx, alert(fmt.Sprintf("fridge-%d", i+1), "compressor", proactive.SeverityWarning, e.clock.Now()))
			if err != nil {
				t.Fatal(err)
			}
			must(e.n.Book(ctx, tk.ID, notify.Slot{Technician: tech, Start: tue8, End: tue8.Add(2 * time.Hour)}, "dispatcher"))
			tickets = append(tickets, tk.ID)
		}
		errs := make(chan error, 2)
		for _, id := range tickets {
			go func() {
				_, err := e.n.Reassign(ctx, id, "tech-pierre", "dispatcher")
				errs <- err
			}()
		}
		var won, lost int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				won++
			case proactive.ErrorCode(err) == proactive.EConflict:
				lost++
			default:
				t.Errorf("Reassign: %v", err)
			}
		}
		if won != 1 || lost != 1 {
			t.Errorf("%d moves won and %d lost, want one each", won, lost)
		}
		if got := must(e.n.Appointments(ctx, notify.AppointmentFilter{Technician: "tech-pierre"})); len(got) != 1 {
			t.Errorf("Pierre has %d visits, want 1", len(got))
		}
	})
}
