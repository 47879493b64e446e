package devices_test

import (
	"errors"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// apply runs one Change in its own transaction.
func apply(tb testing.TB, s *devices.Store, c devices.Change) (devices.Applied, error) {
	tb.Helper()
	var out devices.Applied
	err := s.WithTx(tb.Context(), func(tx *devices.Tx) error {
		var err error
		out, err = tx.Apply(tb.Context(), c)
		return err
	})
	return out, err
}

// timelineOf lists the kinds of a ticket's timeline events.
func timelineOf(tb testing.TB, s *devices.Store, id int64) []string {
	tb.Helper()
	t, err := s.GetTicket(tb.Context(), id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range t.Timeline {
		out = append(out, string(e.Kind))
	}
	return out
}

// TestApplyConversation: a conversation's changes are written in one go,
// in order; a repeated inbound SID writes nothing; a claimed clarification
// falls back to Otherwise; a booking whose slot is taken stops the change.
func TestApplyConversation(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clock := newClock()
		s := mustOpen(t, dsn, withClock(clock))
		ctx := t.Context()
		mustCustomer(t, s, "alice", "+33611111111")
		if _, err := s.RecordConsent(ctx, "alice", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentAPI, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		mustDevice(t, s, "fridge-1", "alice")
		mustDevice(t, s, "fridge-2", "alice")
		mustTechnician(t, s, "tom")
		now := clock.Now().UTC().Truncate(time.Microsecond)
		msg := func(ticket int64, kind string) devices.NewMessage {
			return devices.NewMessage{Ticket: ticket, Customer: "alice", Phone: "+33611111111", Device: "fridge-1", Kind: kind,
				Body: kind + " text", At: now}
		}
		tk := mustOpenTicket(t, s, alert("fridge-1", "compressor"))

		// An offer.
		res, err := apply(t, s, devices.Change{At: now, Ticket: tk.ID,
			Start:    &devices.NewConversation{Customer: "alice", Device: "fridge-1", Stage: "offer", AlertAt: now, OfferedAt: now},
			Status:   &devices.StatusChange{To: proactive.TicketOffered, Actor: "notify", Note: "visit offered by SMS"},
			Messages: []devices.NewMessage{msg(tk.ID, "offer")},
			Jobs:     []devices.NewJob{{Kind: "offer_expire", Due: now.Add(72 * time.Hour)}}})
		if err != nil || len(res.Messages) != 1 {
			t.Fatalf("offer: %+v, %v", res, err)
		}
		cc, err := s.CustomerConversations(ctx, "alice")
		if err != nil || !cc.Found || cc.Active.Ticket != tk.ID || cc.Active.Stage != "offer" || cc.Active.Offer != 1 ||
			len(cc.Open) != 1 {
			t.Fatalf("conversations %+v, %v: want ticket %d's offer", cc, err, tk.ID)
		}

		// A reply, then its repeat.
		reply := devices.Change{At: now, Ticket: tk.ID,
			Inbound:      &devices.InboundMessage{SID: "SM1", From: "+33611111111", Body: "what?", Ticket: tk.ID, At: now},
			ClaimClarify: true,
			Otherwise: &devices.Change{Entries: []devices.Entry{{Ticket: tk.ID, Actor: "customer",
				Body: map[string]any{"direction": "in", "handled": "ignored"}}}},
			Entries:  []devices.Entry{{Ticket: tk.ID, Actor: "customer", Body: map[string]any{"direction": "in", "handled": "clarify"}}},
			Messages: []devices.NewMessage{msg(tk.ID, "clarify")}}
		if res, err := apply(t, s, reply); err != nil || res.Repeat || res.Otherwise || len(res.Messages) != 1 {
			t.Fatalf("first reply: %+v, %v", res, err)
		}
		before := len(timelineOf(t, s, tk.ID))
		if res, err := apply(t, s, reply); err != nil || !res.Repeat || len(timelineOf(t, s, tk.ID)) != before {
			t.Fatalf("repeated SID: %+v, %v; timeline %d events, was %d", res, err, len(timelineOf(t, s, tk.ID)), before)
		}
		reply.Inbound.SID = "SM2"
		if res, err := apply(t, s, reply); err != nil || !res.Otherwise || len(res.Messages) != 0 ||
			len(timelineOf(t, s, tk.ID)) != before+1 {
			t.Fatalf("second unexpected reply: %+v, %v: want only the ignored entry", res, err)
		}

		// A booking, then another of the same slot.
		start := now.Add(48 * time.Hour).Truncate(time.Hour)
		book := func(ticket int64) devices.Change {
			return devices.Change{At: now, Ticket: ticket,
				Entries: []devices.Entry{{Ticket: ticket, Actor: "customer", Body: map[string]any{"handled": "slot 1"}}},
				Book: &devices.Booking{Ticket: ticket, Technician: "tom", Start: start, End: start.Add(2 * time.Hour),
					Buffer: 30 * time.Minute, Actor: "customer", Note: "visit booked", At: now},
				Stage: "scheduled", ReleaseHolds: true, CancelJobs: []string{"offer_expire"},
				Messages: []devices.NewMessage{msg(ticket, "confirm")}}
		}
		res, err = apply(t, s, book(tk.ID))
		if err != nil || res.Appointment == 0 {
			t.Fatalf("booking: %+v, %v", res, err)
		}
		if got, _ := s.GetTicket(ctx, tk.ID); got.Status != proactive.TicketScheduled || got.Technician != "tom" {
			t.Errorf("booked ticket %s assigned to %q, want scheduled with tom", got.Status, got.Technician)
		}
		other := mustOpenTicket(t, s, alert("fridge-2", "compressor"))
		mustTransition(t, s, other.ID, proactive.TicketOffered)
		before = len(timelineOf(t, s, other.ID))
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			_, err := tx.Apply(ctx, book(other.ID))
			if !errors.Is(err, devices.ErrSlotTaken) {
				t.Errorf("booking a taken slot: %v, want ErrSlotTaken", err)
			}
			return nil // commit what came before the booking
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := timelineOf(t, s, other.ID), before+1; len(got) != want {
			t.Errorf("after a taken slot the timeline is %v: want the entry only (%d events)", got, want)
		}
		if got, _ := s.GetTicket(ctx, other.ID); got.Status != proactive.TicketOffered {
			t.Errorf("ticket of the taken slot is %s, want still offered", got.Status)
		}
	})
}
