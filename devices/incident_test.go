package devices_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The incident rows: firings counted per rule and window, an incident formed
// from them takes their tickets (open ones to review, their waiting jobs
// disarmed), survives a reopen of the store, and a dismissal closes its
// review tickets as false alarms.
func TestIncidentStore(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		for i := range 6 {
			mustDevice(t, s, fmt.Sprintf("d%d", i), "")
		}
		if n, err := s.CountModelDevices(ctx, []string{"fridge-*"}); err != nil || n != 6 {
			t.Fatalf("CountModelDevices(fridge-*) = %d, %v; want 6", n, err)
		}
		if n, err := s.CountModelDevices(ctx, []string{"oven-*"}); err != nil || n != 0 {
			t.Fatalf("CountModelDevices(oven-*) = %d, %v; want 0", n, err)
		}
		if n, err := s.CountModelDevices(ctx, nil); err != nil || n != 6 {
			t.Fatalf("CountModelDevices() = %d, %v; want 6", n, err)
		}
		at := clk.Now()
		var tickets []int64
		for i := range 5 {
			tk := mustOpenTicket(t, s, alert(fmt.Sprintf("d%d", i), "compressor"))
			tickets = append(tickets, tk.ID)
			err := s.WithTx(ctx, func(tx *devices.Tx) error {
				if err := tx.RecordFiring(ctx, "compressor_wear", tk.Device, tk.ID, at.Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
				return tx.ScheduleJob(ctx, "group_wait", tk.ID, at.Add(30*time.Second))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// One ticket went further already: it joins, but stays offered.
		mustTransition(t, s, tickets[4], proactive.TicketOffered)
		var id int64
		err := s.WithTx(ctx, func(tx *devices.Tx) error {
			if err := tx.LockRule(ctx, "compressor_wear"); err != nil {
				return err
			}
			if _, ok, err := tx.ActiveIncident(ctx, "compressor_wear", at.Add(-time.Minute)); err != nil || ok {
				return fmt.Errorf("active incident before any: %v, %v", ok, err)
			}
			if n, err := tx.UngroupedDevices(ctx, "compressor_wear", at, at.Add(3*time.Second)); err != nil || n != 4 {
				return fmt.Errorf("UngroupedDevices in 3s = %d, %v; want 4", n, err)
			}
			var err error
			if id, err = tx.OpenIncident(ctx, "compressor_wear", at, 6); err != nil {
				return err
			}
			joined, err := tx.JoinIncident(ctx, id, at.Add(-time.Minute), at.Add(time.Minute), 0, "group_wait")
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(joined, tickets[:4]) {
				return fmt.Errorf("moved to review %v, want %v (not the offered one)", joined, tickets[:4])
			}
			if got, ok, err := tx.ActiveIncident(ctx, "compressor_wear", at.Add(4*time.Second)); err != nil || !ok || got != id {
				return fmt.Errorf("active incident %d, %v, %v; want %d", got, ok, err, id)
			}
			if n, err := tx.UngroupedDevices(ctx, "compressor_wear", at, at.Add(time.Hour)); err != nil || n != 0 {
				return fmt.Errorf("UngroupedDevices after the join = %d, %v; want 0", n, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if due, err := s.JobsDue(ctx, at.Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Errorf("jobs due after the join %+v, %v; want none (the waiting offers are disarmed)", due, err)
		}
		s2 := mustOpen(t, dsn, withClock(clk)) // another process, after a restart
		inc, err := s2.GetIncident(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := proactive.Incident{ID: id, Rule: "compressor_wear", Status: proactive.IncidentOpen, OpenedAt: clk.Now(),
			FirstAlertAt: at, LastAlertAt: at.Add(4 * time.Second), Applicable: 6,
			Devices: []proactive.DeviceID{"d0", "d1", "d2", "d3", "d4"}, Tickets: tickets}
		if !reflect.DeepEqual(inc, want) {
			t.Errorf("incident\n got %+v\nwant %+v", inc, want)
		}
		for i, id := range tickets {
			tk, err := s2.GetTicket(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			wantStatus := proactive.TicketReview
			wantHeld := "incident"
			if i == 4 {
				wantStatus, wantHeld = proactive.TicketOffered, ""
			}
			if tk.IncidentID != inc.ID || tk.Status != wantStatus || tk.HeldReason != wantHeld {
				t.Errorf("ticket %d: incident %d, status %s, held %q; want %d, %s, %q", id, tk.IncidentID, tk.Status, tk.HeldReason, inc.ID, wantStatus, wantHeld)
			}
		}
		list, err := s2.ListIncidents(ctx, devices.IncidentFilter{Status: proactive.IncidentOpen})
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("ListIncidents(open) = %+v, %v", list, err)
		}
		_, err = s2.ListIncidents(ctx, devices.IncidentFilter{Status: "closed"})
		wantCode(t, err, proactive.EInvalid)

		clk.Add(time.Hour)
		got, err := s2.DismissIncident(ctx, id, "dispatcher", "broker outage")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != proactive.IncidentDismissed || !got.ClosedAt.Equal(clk.Now()) {
			t.Errorf("dismissed incident %+v", got)
		}
		for i, id := range tickets {
			tk, _ := s2.GetTicket(ctx, id)
			if i < 4 && (tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomeFalseAlarm) {
				t.Errorf("ticket %d after the dismissal: %s, %q; want closed, false_alarm", id, tk.Status, tk.Outcome)
			}
			if i == 4 && tk.Status != proactive.TicketOffered {
				t.Errorf("offered ticket %d after the dismissal: %s; want it left offered", id, tk.Status)
			}
		}
		_, err = s2.DismissIncident(ctx, id, "dispatcher", "")
		wantCode(t, err, proactive.EConflict)
		_, err = s2.DismissIncident(ctx, 999, "dispatcher", "")
		wantCode(t, err, proactive.ENotFound)
		_, err = s2.GetIncident(ctx, 999)
		wantCode(t, err, proactive.ENotFound)
	})
}
