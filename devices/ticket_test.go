package devices_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

func TestOpenTicket(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")

		a := alert("d1", "compressor")
		a.FiredAt = clk.Now().Add(-time.Minute)
		a.Metrics = map[string]float64{"compressor_current": 6.1}
		tk, created, err := s.OpenTicket(ctx, a)
		if err != nil || !created {
			t.Fatalf("OpenTicket: created %v, %v", created, err)
		}
		want := proactive.Ticket{ID: tk.ID, Device: "d1", Component: "compressor", Rule: "compressor_wear",
			Status: proactive.TicketOpen, Severity: proactive.SeverityWarning, Summary: a.Summary,
			PredictedFailure: a.FiredAt.Add(72 * time.Hour), OpenedAt: clk.Now(), UpdatedAt: clk.Now(), FiredAt: a.FiredAt}
		if !reflect.DeepEqual(tk, want) {
			t.Errorf("OpenTicket:\n got %+v\nwant %+v", tk, want)
		}

		// The alert it absorbs is counted on it, with its own time.
		clk.Add(time.Hour)
		again, created, err := s.OpenTicket(ctx, a)
		want.AlertsAbsorbed, want.LastAlertAt, want.LastAlertFiredAt = 1, clk.Now(), a.FiredAt
		if err != nil || created || !reflect.DeepEqual(again, want) {
			t.Errorf("second OpenTicket: created %v, %v, %+v; want the first ticket", created, err, again)
		}
		if got, err := s.GetTicket(ctx, tk.ID); err != nil || got.AlertsAbsorbed != 1 || !got.LastAlertFiredAt.Equal(a.FiredAt) {
			t.Errorf("stored ticket %+v, %v: want one absorbed alert fired at %v", got, err, a.FiredAt)
		}
		// Another component is another ticket.
		other := mustOpenTicket(t, s, alert("d1", "fan"))
		if other.ID == tk.ID {
			t.Error("fan ticket has the compressor ticket's id")
		}

		// Once the ticket is finished, the next alert opens a new one.
		mustTransition(t, s, tk.ID, proactive.TicketCancelled)
		next := mustOpenTicket(t, s, a)
		if next.ID == tk.ID {
			t.Error("a cancelled ticket was reopened")
		}

		_, _, err = s.OpenTicket(ctx, alert("unregistered", "compressor"))
		wantCode(t, err, proactive.ENotFound)

		long := alert("d1", "door_seal")
		long.Summary = strings.Repeat("é", 5000)
		lt := mustOpenTicket(t, s, long)
		if n := len([]rune(lt.Summary)); n != 1000 {
			t.Errorf("long summary kept %d characters, want 1000", n)
		}

		got, err := s.GetTicket(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Timeline) != 2 || got.Timeline[0].Kind != proactive.TicketEventAlert || got.Timeline[0].Actor != "rules" {
			t.Fatalf("timeline %+v", got.Timeline)
		}
		var body map[string]any
		if err := json.Unmarshal(got.Timeline[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		if body["rule"] != "compressor_wear" || body["time_to_failure"] != "72h0m0s" ||
			body["metrics"].(map[string]any)["compressor_current"] != 6.1 {
			t.Errorf("alert event body %s", got.Timeline[0].Body)
		}
		if at, ok := s.ActiveTicket(ctx, "d1", "compressor"); ok != nil || at.ID != next.ID {
			t.Errorf("ActiveTicket = %d, %v; want %d", at.ID, ok, next.ID)
		}
		_, err = s.ActiveTicket(ctx, "d1", "hinge")
		wantCode(t, err, proactive.ENotFound)
	})
}

// TestOpenTicketConcurrent opens the same device+component from 20
// goroutines spread over two stores (two processes on one database): one
// ticket, one created=true.
func TestOpenTicketConcurrent(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		stores := []*devices.Store{mustOpen(t, dsn), mustOpen(t, dsn)}
		ctx := t.Context()
		mustDevice(t, stores[0], "d1", "")
		for round := range 3 {
			component := fmt.Sprintf("part_%d", round)
			const n = 20
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				ids     = map[int64]int{}
				created int
				start   = make(chan struct{})
			)
			for i := range n {
				wg.Go(func() {
					<-start
					tk, c, err := stores[i%2].OpenTicket(ctx, alert("d1", component))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("goroutine %d: %v", i, err)
						return
					}
					ids[tk.ID]++
					if c {
						created++
					}
				})
			}
			close(start)
			wg.Wait()
			if len(ids) != 1 || created != 1 {
				t.Errorf("round %d: tickets %v, created %d; want one ticket, created once", round, ids, created)
			}
			p, err := stores[0].ListTickets(ctx, devices.TicketFilter{Device: "d1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != round+1 {
				t.Errorf("round %d: %d tickets stored, want %d", round, len(p.Items), round+1)
			}
		}
	})
}

// TestTransitions walks the state machine: every legal move, and a sample
// of illegal ones with their reasons.
func TestTransitions(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		n := 0
		fresh := func() proactive.Ticket {
			n++
			return mustOpenTicket(t, s, alert("d1", fmt.Sprintf("c%d", n)))
		}

		// The happy path to closed.
		tk := fresh()
		for _, to := range []proactive.TicketStatus{proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketVisited} {
			clk.Add(time.Minute)
			got, err := s.Transition(ctx, tk.ID, to, "dispatcher", "")
			if err != nil || got.Status != to || !got.UpdatedAt.Equal(clk.Now()) || !got.ClosedAt.IsZero() {
				t.Fatalf("to %s: %+v, %v", to, got, err)
			}
		}
		_, err := s.Transition(ctx, tk.ID, proactive.TicketClosed, "tech", "")
		wantCode(t, err, proactive.EInvalid) // closing takes an outcome
		_, err = s.CloseTicket(ctx, tk.ID, "fixed", "", "tech")
		wantCode(t, err, proactive.EInvalid)
		clk.Add(time.Minute)
		closed, err := s.CloseTicket(ctx, tk.ID, proactive.OutcomePartReplaced, "new start relay", "tech-1")
		if err != nil {
			t.Fatal(err)
		}
		if closed.Status != proactive.TicketClosed || closed.Outcome != proactive.OutcomePartReplaced ||
			closed.OutcomeNotes != "new start relay" || !closed.ClosedAt.Equal(clk.Now()) {
			t.Errorf("closed: %+v", closed)
		}
		if got, _ := s.GetTicket(ctx, tk.ID); got.Outcome != proactive.OutcomePartReplaced || !got.ClosedAt.Equal(clk.Now()) {
			t.Errorf("stored closed ticket: %+v", got)
		}

		// Every other legal move, from a fresh ticket at the source state.
		paths := map[proactive.TicketStatus][]proactive.TicketStatus{
			proactive.TicketOpen:      nil,
			proactive.TicketOffered:   {proactive.TicketOffered},
			proactive.TicketScheduled: {proactive.TicketOffered, proactive.TicketScheduled},
			proactive.TicketVisited:   {proactive.TicketScheduled, proactive.TicketVisited},
		}
		for from, path := range paths {
			for _, to := range from.Next() {
				if to == proactive.TicketClosed {
					continue
				}
				tk := fresh()
				mustTransition(t, s, tk.ID, path...)
				got, err := s.Transition(ctx, tk.ID, to, "dispatcher", "why not")
				if err != nil || got.Status != to || to.Terminal() == got.ClosedAt.IsZero() {
					t.Errorf("%s → %s: %+v, %v", from, to, got, err)
				}
			}
		}

		// Illegal moves are conflicts that say why.
		for _, c := range []struct {
			path []proactive.TicketStatus
			to   proactive.TicketStatus
			msg  string
		}{
			{nil, proactive.TicketVisited, "is open: it cannot become visited, only review, offered, scheduled, closed, cancelled"},
			{nil, proactive.TicketOpen, "is open: it cannot become open"},
			{[]proactive.TicketStatus{proactive.TicketOffered}, proactive.TicketVisited, "is offered: it cannot become visited"},
			{[]proactive.TicketStatus{proactive.TicketCancelled}, proactive.TicketOffered, "is cancelled, a final state: it cannot become offered"},
			{[]proactive.TicketStatus{proactive.TicketOffered, proactive.TicketDeclined}, proactive.TicketCancelled, "is declined, a final state"},
			{[]proactive.TicketStatus{proactive.TicketOffered, proactive.TicketExpired}, proactive.TicketScheduled, "is expired, a final state"},
		} {
			tk := fresh()
			mustTransition(t, s, tk.ID, c.path...)
			_, err := s.Transition(ctx, tk.ID, c.to, "dispatcher", "")
			wantCode(t, err, proactive.EConflict)
			if !strings.Contains(proactive.ErrorMessage(err), c.msg) {
				t.Errorf("%v → %s: %q, want it to contain %q", c.path, c.to, proactive.ErrorMessage(err), c.msg)
			}
		}
		_, err = s.CloseTicket(ctx, fresh().ID, proactive.OutcomeNoFaultFound, "", "tech")
		wantCode(t, err, proactive.EConflict)
		_, err = s.Transition(ctx, 999999, proactive.TicketOffered, "dispatcher", "")
		wantCode(t, err, proactive.ENotFound)
		_, err = s.Transition(ctx, tk.ID, "reopened", "", "")
		wantCode(t, err, proactive.EInvalid)
		if fe := fieldErrors(t, err); len(fe.Fields) != 2 {
			t.Errorf("fields %v, want status and actor", fe.Fields)
		}
	})
}

// TestTransitionConcurrent has two dispatchers, on two stores, move the same
// offered tickets at once, one to scheduled and one to declined: on each
// ticket exactly one wins and the other gets a conflict.
func TestTransitionConcurrent(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		a, b := mustOpen(t, dsn), mustOpen(t, dsn)
		ctx := t.Context()
		mustDevice(t, a, "d1", "")
		const n = 15
		var ids []int64
		for i := range n {
			tk := mustOpenTicket(t, a, alert("d1", fmt.Sprintf("c%d", i)))
			mustTransition(t, a, tk.ID, proactive.TicketOffered)
			ids = append(ids, tk.ID)
		}
		for _, id := range ids {
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, 2)
			for i, c := range []struct {
				s  *devices.Store
				to proactive.TicketStatus
			}{{a, proactive.TicketScheduled}, {b, proactive.TicketDeclined}} {
				wg.Go(func() {
					<-start
					_, errs[i] = c.s.Transition(ctx, id, c.to, fmt.Sprintf("dispatcher-%d", i), "")
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch proactive.ErrorCode(err) {
				case "":
					won++
				case proactive.EConflict:
				default:
					t.Errorf("ticket %d: unexpected error %v", id, err)
				}
			}
			if won != 1 {
				t.Errorf("ticket %d: %d winners (%v), want exactly 1", id, won, errs)
			}
			tk, err := a.GetTicket(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			states := 0
			for _, e := range tk.Timeline {
				if e.Kind == proactive.TicketEventState {
					states++
				}
			}
			if states != 2 { // open → offered, and the winner's
				t.Errorf("ticket %d: %d state events, want 2", id, states)
			}
		}
	})
}

// TestTransitionLostRace makes the race deterministic: a second dispatcher
// reads the ticket while the first one's transition is not yet committed.
// On PostgreSQL it blocks on the row lock and its compare-and-set then finds
// the status changed; on SQLite it waits for the write lock and then reads
// the new status. Either way it gets a conflict and the first one wins.
func TestTransitionLostRace(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		a := mustOpen(t, dsn)
		bDSN := dsn
		if a.Dialect() == devices.Postgres {
			bDSN += "&application_name=" + t.Name() // for waitBlocked to find it
		}
		b := mustOpen(t, bDSN)
		ctx := t.Context()
		mustDevice(t, a, "d1", "")
		tk := mustOpenTicket(t, a, alert("d1", "compressor"))
		mustTransition(t, a, tk.ID, proactive.TicketOffered)
		var errB error
		done := make(chan struct{})
		err := a.WithTx(ctx, func(tx *devices.Tx) error {
			if _, err := tx.Transition(ctx, tk.ID, proactive.TicketScheduled, "dispatcher-a", ""); err != nil {
				return err
			}
			go func() {
				defer close(done)
				_, errB = b.Transition(ctx, tk.ID, proactive.TicketDeclined, "dispatcher-b", "")
			}()
			waitBlocked(t, a, t.Name())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		<-done
		wantCode(t, errB, proactive.EConflict)
		want := "is scheduled: it cannot become declined"
		if a.Dialect() == devices.Postgres {
			want = "went from offered to scheduled meanwhile"
		}
		if !strings.Contains(proactive.ErrorMessage(errB), want) {
			t.Errorf("loser's error %q, want it to contain %q", proactive.ErrorMessage(errB), want)
		}
		if got, _ := a.GetTicket(ctx, tk.ID); got.Status != proactive.TicketScheduled {
			t.Errorf("status %s, want scheduled", got.Status)
		}
	})
}

// waitBlocked waits until the session named app is blocked: on PostgreSQL
// until it waits for a lock, on SQLite (where a waiter polls its busy
// timeout and cannot be observed) for a moment.
func waitBlocked(t *testing.T, s *devices.Store, app string) {
	t.Helper()
	if s.Dialect() != devices.Postgres {
		// No condition to await: SQLite shows no busy waiter; the sleep makes the blocked path likely, and the outcome is the same either way.
		time.Sleep(200 * time.Millisecond)
		return
	}
	testenv.Eventually(t, 0, func() error {
		var n int
		err := s.ReadDB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return fmt.Errorf("session %s not blocked on the ticket's row lock", app)
		}
		return nil
	})
}

// TestTimeline checks that every change lands on the timeline, in order,
// and that the timeline cannot be rewritten.
func TestTimeline(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		mustTechnician(t, s, "tech-1")
		mustTechnician(t, s, "tech-2")
		tk := mustOpenTicket(t, s, alert("d1", "compressor"))
		step := func(f func() error) {
			t.Helper()
			clk.Add(time.Second)
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		step(func() error { _, err := s.Assign(ctx, tk.ID, "tech-1", "dispatcher"); return err })
		step(func() error {
			_, err := s.Record(ctx, tk.ID, proactive.TicketEventMessage, "notify",
				map[string]any{"direction": "out", "to": "+33612345678", "body": "Your fridge…", "sid": "SM1"})
			return err
		})
		step(func() error {
			_, err := s.Transition(ctx, tk.ID, proactive.TicketOffered, "notify", "offer sent")
			return err
		})
		step(func() error {
			_, err := s.Comment(ctx, tk.ID, "dispatcher", "  customer prefers mornings  ")
			return err
		})
		step(func() error { _, err := s.Assign(ctx, tk.ID, "tech-2", "dispatcher"); return err })
		step(func() error { _, err := s.Assign(ctx, tk.ID, "tech-2", "dispatcher"); return err }) // no change, no event
		step(func() error { _, err := s.Assign(ctx, tk.ID, "", "dispatcher"); return err })

		got, err := s.GetTicket(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		type ev struct {
			kind  proactive.TicketEventKind
			actor string
			body  string
		}
		want := []ev{
			{proactive.TicketEventAlert, "rules", ""},
			{proactive.TicketEventAssignment, "dispatcher", `{"previous":"","technician":"tech-1"}`},
			{proactive.TicketEventMessage, "notify", `{"body":"Your fridge…","direction":"out","sid":"SM1","to":"+33612345678"}`},
			{proactive.TicketEventState, "notify", `{"from":"open","note":"offer sent","to":"offered"}`},
			{proactive.TicketEventComment, "dispatcher", `{"text":"customer prefers mornings"}`},
			{proactive.TicketEventAssignment, "dispatcher", `{"previous":"tech-1","technician":"tech-2"}`},
			{proactive.TicketEventAssignment, "dispatcher", `{"previous":"tech-2","technician":""}`},
		}
		if len(got.Timeline) != len(want) {
			t.Fatalf("timeline has %d events, want %d: %+v", len(got.Timeline), len(want), got.Timeline)
		}
		for i, e := range got.Timeline {
			w := want[i]
			if e.Kind != w.kind || e.Actor != w.actor || (w.body != "" && string(e.Body) != w.body) || e.TicketID != tk.ID {
				t.Errorf("event %d: %s by %s %s, want %s by %s %s", i, e.Kind, e.Actor, e.Body, w.kind, w.actor, w.body)
			}
			if i > 0 && (!e.At.After(got.Timeline[i-1].At) || e.ID <= got.Timeline[i-1].ID) {
				t.Errorf("event %d at %v (id %d) is not after event %d", i, e.At, e.ID, i-1)
			}
		}
		if got.Technician != "" {
			t.Errorf("technician %q after unassigning", got.Technician)
		}

		_, err = s.Assign(ctx, tk.ID, "nobody", "dispatcher")
		wantCode(t, err, proactive.ENotFound)
		_, err = s.Comment(ctx, tk.ID, "dispatcher", "   ")
		wantCode(t, err, proactive.EInvalid)
		_, err = s.Comment(ctx, 999999, "dispatcher", "hello")
		wantCode(t, err, proactive.ENotFound)
		_, err = s.Record(ctx, tk.ID, proactive.TicketEventState, "me", map[string]any{})
		wantCode(t, err, proactive.EInvalid)
		_, err = s.Record(ctx, tk.ID, proactive.TicketEventMessage, "me", []int{1})
		wantCode(t, err, proactive.EInvalid)
		mustTransition(t, s, tk.ID, proactive.TicketCancelled)
		_, err = s.Assign(ctx, tk.ID, "tech-1", "dispatcher")
		wantCode(t, err, proactive.EConflict)
		if _, err := s.Comment(ctx, tk.ID, "dispatcher", "closed after a call"); err != nil {
			t.Errorf("comment on a cancelled ticket: %v", err)
		}

		// Append-only, even to SQL.
		for _, q := range []string{`UPDATE ticket_events SET actor = 'forger'`, `DELETE FROM ticket_events`} {
			err := s.WithTx(ctx, func(tx *devices.Tx) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v, want the append-only error", q, err)
			}
		}
	})
}

// TestListTickets pages through tickets newest first, with filters.
func TestListTickets(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		mustDevice(t, s, "d2", "")
		mustTechnician(t, s, "tech-1")
		var all []int64
		for i := range 25 {
			dev := "d1"
			if i%5 == 0 {
				dev = "d2"
			}
			tk := mustOpenTicket(t, s, alert(dev, fmt.Sprintf("c%02d", i)))
			switch i % 3 {
			case 1:
				mustTransition(t, s, tk.ID, proactive.TicketOffered)
			case 2:
				mustTransition(t, s, tk.ID, proactive.TicketCancelled)
			}
			if i%4 == 0 {
				if _, err := s.Assign(ctx, tk.ID, "tech-1", "dispatcher"); err != nil && i%3 != 2 {
					t.Fatal(err)
				}
			}
			all = append([]int64{tk.ID}, all...) // newest first
		}
		list := func(f devices.TicketFilter) (ids []int64, pages int) {
			t.Helper()
			for {
				p, err := s.ListTickets(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, tk := range p.Items {
					ids = append(ids, tk.ID)
				}
				if p.Next == "" {
					return ids, pages
				}
				f.Cursor = p.Next
			}
		}
		ids, pages := list(devices.TicketFilter{ListOptions: devices.ListOptions{Limit: 10}})
		if !reflect.DeepEqual(ids, all) || pages != 3 {
			t.Errorf("all tickets in %d pages: %v, want 3 pages of %v", pages, ids, all)
		}
		count := func(f devices.TicketFilter) int {
			t.Helper()
			f.Limit = 7
			ids, _ := list(f)
			return len(ids)
		}
		for name, c := range map[string]struct {
			f    devices.TicketFilter
			want int
		}{
			"offered":          {devices.TicketFilter{Status: []proactive.TicketStatus{proactive.TicketOffered}}, 8},
			"open or offered":  {devices.TicketFilter{Status: []proactive.TicketStatus{proactive.TicketOpen, proactive.TicketOffered}}, 17},
			"active":           {devices.TicketFilter{Active: true}, 17},
			"device d2":        {devices.TicketFilter{Device: "d2"}, 5},
			"active on d2":     {devices.TicketFilter{Device: "d2", Active: true}, 3},
			"technician":       {devices.TicketFilter{Technician: "tech-1"}, 5},
			"rule":             {devices.TicketFilter{Rule: "compressor_wear"}, 25},
			"other rule":       {devices.TicketFilter{Rule: "door_seal_leak"}, 0},
			"technician, open": {devices.TicketFilter{Technician: "tech-1", Status: []proactive.TicketStatus{proactive.TicketOpen}}, 3},
		} {
			if got := count(c.f); got != c.want {
				t.Errorf("%s: %d tickets, want %d", name, got, c.want)
			}
		}
		_, err := s.ListTickets(ctx, devices.TicketFilter{ListOptions: devices.ListOptions{Cursor: "abc"}})
		wantCode(t, err, proactive.EInvalid)
		_, err = s.ListTickets(ctx, devices.TicketFilter{Status: []proactive.TicketStatus{"lost"}})
		wantCode(t, err, proactive.EInvalid)
	})
}

// A rule's cooldown holds in the store: within it of the last ticket for a
// device and component, a new firing opens nothing, even once that ticket
// is closed, and is recorded on it; past it, a new ticket opens.
func TestOpenTicketCooldown(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		a := alert("d1", "compressor")
		a.Cooldown = 168 * time.Hour
		first := mustOpenTicket(t, s, a)
		mustTransition(t, s, first.ID, proactive.TicketCancelled)

		clk.Add(100 * time.Hour)
		again, created, err := s.OpenTicket(ctx, a)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("within the cooldown: ticket %d, created %v, %v; want ticket %d again", again.ID, created, err, first.ID)
		}
		got, err := s.GetTicket(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		alerts := 0
		for _, ev := range got.Timeline {
			if ev.Kind == proactive.TicketEventAlert {
				alerts++
			}
		}
		if alerts != 2 {
			t.Errorf("%d alert events on the ticket, want the opening one and the one in the cooldown", alerts)
		}
		// Another component, or no cooldown, is not held back.
		mustOpenTicket(t, s, alert("d1", "fan"))

		clk.Add(69 * time.Hour)
		if next := mustOpenTicket(t, s, a); next.ID == first.ID {
			t.Error("past the cooldown the old ticket came back")
		}
	})
}

// TestTicketFilterSearch lists and counts tickets by severity, search,
// region and age, alone and together.
func TestTicketFilterSearch(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clock := newClock()
		s := mustOpen(t, dsn, withClock(clock))
		ctx := t.Context()
		mustDevice(t, s, "paris-1", "")
		if _, err := s.CreateDevice(ctx, proactive.Device{ID: "london_1", Model: "boiler-x", TimeZone: "Europe/London",
			Site: proactive.Address{PostalCode: "sw1a 1aa", Country: "GB"}}); err != nil {
			t.Fatal(err)
		}
		mustTechnician(t, s, "Tech-Nadia")
		open := func(dev, component string, sev proactive.Severity, summary string) int64 {
			a := alert(dev, component)
			a.Severity, a.Summary = sev, summary
			return mustOpenTicket(t, s, a).ID
		}
		// A day apart each: fan is the oldest, boiler the newest.
		fan := open("paris-1", "fan", proactive.SeverityInfo, "Fan speed 100% of its norm")
		clock.Add(24 * time.Hour)
		comp := open("paris-1", "compressor", proactive.SeverityCritical, "Compressor current 9 A")
		clock.Add(24 * time.Hour)
		pump := open("london_1", "pump", proactive.SeverityWarning, "Pump_pressure low")
		clock.Add(24 * time.Hour)
		boiler := open("london_1", "burner", proactive.SeverityCritical, "Flame lost twice; ÖLDRUCK niedrig")
		if _, err := s.Assign(ctx, pump, "Tech-Nadia", "dispatcher"); err != nil {
			t.Fatal(err)
		}
		mustTransition(t, s, comp, proactive.TicketOffered)
		now := clock.Now()

		for _, c := range []struct {
			name string
			f    devices.TicketFilter
			want []int64
		}{
			{"critical", devices.TicketFilter{Severity: []proactive.Severity{proactive.SeverityCritical}}, []int64{boiler, comp}},
			{"info or warning", devices.TicketFilter{Severity: []proactive.Severity{proactive.SeverityInfo, proactive.SeverityWarning}}, []int64{pump, fan}},
			{"device, any case", devices.TicketFilter{Query: "LONDON"}, []int64{boiler, pump}},
			{"summary", devices.TicketFilter{Query: "flame"}, []int64{boiler}},
			{"summary, non-ASCII in another case", devices.TicketFilter{Query: "öldruck"}, []int64{boiler}},
			{"component", devices.TicketFilter{Query: "BURN"}, []int64{boiler}},
			{"rule", devices.TicketFilter{Query: "Compressor_Wear"}, []int64{boiler, pump, comp, fan}},
			{"technician", devices.TicketFilter{Query: "nadia"}, []int64{pump}},
			{"number", devices.TicketFilter{Query: fmt.Sprintf("#%d", fan)}, []int64{fan}},
			{"not a number", devices.TicketFilter{Query: "#flame"}, nil},
			{"bare number", devices.TicketFilter{Query: fmt.Sprint(comp)}, []int64{comp}},
			{"percent is literal", devices.TicketFilter{Query: "100%"}, []int64{fan}},
			{"underscore is literal", devices.TicketFilter{Query: "on_1"}, []int64{boiler, pump}},
			{"wildcards match nothing", devices.TicketFilter{Query: "%_%"}, nil},
			{"ids", devices.TicketFilter{IDs: []int64{fan, boiler, 999}}, []int64{boiler, fan}},
			{"region Paris", devices.TicketFilter{Region: "75"}, []int64{comp, fan}},
			{"region with space", devices.TicketFilter{Region: "SW1A 1"}, []int64{boiler, pump}},
			{"region elsewhere", devices.TicketFilter{Region: "69"}, nil},
			{"opened in the last 36 h", devices.TicketFilter{OpenedAfter: now.Add(-36 * time.Hour)}, []int64{boiler, pump}},
			{"open for over 36 h", devices.TicketFilter{OpenedBefore: now.Add(-36 * time.Hour)}, []int64{comp, fan}},
			{"all together", devices.TicketFilter{Severity: []proactive.Severity{proactive.SeverityCritical}, Region: "75",
				Query: "current", OpenedBefore: now, Status: []proactive.TicketStatus{proactive.TicketOffered}}, []int64{comp}},
		} {
			t.Run(c.name, func(t *testing.T) {
				page, err := s.ListTickets(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, tk := range page.Items {
					got = append(got, tk.ID)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("listed %v, want %v", got, c.want)
				}
				counts, err := s.CountTickets(ctx, c.f)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, k := range counts {
					n += k
				}
				if n != len(c.want) {
					t.Errorf("counted %v, want %d in all", counts, len(c.want))
				}
			})
		}
		counts, err := s.CountTickets(ctx, devices.TicketFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if rules, err := s.TicketRules(ctx); err != nil || !reflect.DeepEqual(rules, []string{"compressor_wear"}) {
			t.Errorf("TicketRules: %v, %v", rules, err)
		}
		if want := map[proactive.TicketStatus]int{proactive.TicketOpen: 3, proactive.TicketOffered: 1}; !reflect.DeepEqual(counts, want) {
			t.Errorf("counts %v, want %v", counts, want)
		}
		for name, f := range map[string]devices.TicketFilter{
			"severity":   {Severity: []proactive.Severity{"high"}},
			"long query": {Query: strings.Repeat("x", 201)},
			"region":     {Region: "75%"},
			"ids":        {IDs: make([]int64, 501)},
			"status":     {Status: []proactive.TicketStatus{"lost"}},
		} {
			_, err := s.CountTickets(ctx, f)
			wantCode(t, err, proactive.EInvalid)
			_, err = s.ListTickets(ctx, f)
			if proactive.ErrorCode(err) != proactive.EInvalid {
				t.Errorf("%s: list error %v, want EInvalid", name, err)
			}
		}
	})
}
