package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// These tests run Notifier.Run itself, its ticker and timers, inside a
// testing/synctest bubble, on a real SQLite store: the fake clock moves on
// only when every goroutine of the bubble is blocked, so days of polling
// pass at once and each message's send time is exact. SQLite (modernc, pure
// Go) works in a bubble: its file I/O returns promptly, and the only
// goroutine database/sql starts waits on channels. PostgreSQL does not
// (network I/O is not a durable block, so synctest.Wait would not return),
// nor does the fake Twilio (an HTTP server): the sender is a SenderFunc.

// sent is a message as the sender saw it, with the bubble's time.
type sent struct {
	at  time.Time
	msg notify.Message
}

// recorder is a Sender that records each attempt and fails the first
// fail attempts with a temporary error.
type recorder struct {
	mu    sync.Mutex
	fail  int
	tries []sent
}

func (r *recorder) send(_ context.Context, m notify.Message) (notify.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries = append(r.tries, sent{at: time.Now(), msg: m})
	if len(r.tries) <= r.fail {
		return notify.Receipt{}, fmt.Errorf("%w: provider answered 503", notify.ErrTemporary)
	}
	return notify.Receipt{SID: fmt.Sprintf("SM%06d", len(r.tries)), Status: "queued"}, nil
}

// to returns the attempts at messages to phone, oldest first.
func (r *recorder) to(phone string) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.tries {
		if s.msg.To == phone {
			out = append(out, s)
		}
	}
	return out
}

// bubble is a notifier running under Run in the current synctest bubble,
// on a SQLite store holding the Paris crew, with the bubble's clock set to
// monday0830. Run stops, and the store closes, inside the bubble when the
// test ends.
type bubble struct {
	t     *testing.T
	ctx   context.Context
	dsn   string
	store *devices.Store
	n     *notify.Notifier
}

func newBubble(t *testing.T, sender notify.Sender, tune func(*notify.Options)) *bubble {
	t.Helper()
	// The bubble's clock starts at midnight UTC, 1 January 2000; sleeping
	// is how it moves on, at once.
	time.Sleep(time.Until(monday0830))
	dsn := testenv.SQLite(t)
	st, err := devices.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	testenv.Seed(t, st, testenv.ParisCrew())
	// No Now: the notifier and the store read the bubble's time.Now.
	opt := notify.Options{Store: st, Sender: sender, Logger: discard()}
	if tune != nil {
		tune(&opt)
	}
	n := notify.New(opt)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		st.Close()
	})
	return &bubble{t: t, ctx: t.Context(), dsn: dsn, store: st, n: n}
}

// until moves the bubble's clock to at and returns once the notifier has
// done all it does by then.
func (b *bubble) until(at time.Time) {
	b.t.Helper()
	if d := time.Until(at); d > 0 {
		// In a bubble a sleep is the fake clock moving: it returns as soon
		// as every other goroutine is blocked, having run all that was due.
		time.Sleep(d)
	}
	synctest.Wait()
}

// A message the provider refuses for a while is retried by Run with a
// growing backoff, each retry at most one poll after it is due, until it
// goes out once.
func TestRunRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			base = 2 * time.Second
			poll = time.Second
		)
		sender := &recorder{fail: 4}
		b := newBubble(t, notify.SenderFunc(sender.send), func(o *notify.Options) {
			o.RetryBackoff, o.MaxBackoff, o.PollInterval = base, time.Minute, poll
		})
		b.n.Alerts(b.ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, time.Now())})
		b.until(time.Now().Add(5 * time.Minute))

		tries := sender.to("+33611111111")
		if len(tries) != 5 {
			t.Fatalf("%d attempts, want 4 refused and 1 taken", len(tries))
		}
		if !tries[0].at.Equal(monday0830) {
			t.Errorf("first attempt at %s, want at once, %s", tries[0].at, monday0830)
		}
		// The first retry waits about base, each next one about twice the
		// one before: within [step/2, step] of the doubled step (the
		// platform's backoff may add jitter), plus up to a poll.
		step := base
		for i := 1; i < len(tries); i++ {
			gap := tries[i].at.Sub(tries[i-1].at)
			if gap < step/2 || gap > step+poll {
				t.Errorf("retry %d came %v after the attempt before, want within [%v, %v]", i, gap, step/2, step+poll)
			}
			if tries[i].msg.ID != tries[0].msg.ID || tries[i].msg.Kind != notify.KindOffer {
				t.Errorf("retry %d is message %d (%s), want the offer, %d", i, tries[i].msg.ID, tries[i].msg.Kind, tries[0].msg.ID)
			}
			step *= 2
		}
	})
}

// An alert that arrives while the database fails is retried on a timer
// until it is stored: Alerts does not return, and then does, with the
// offer sent. TestAlertRetriedWhileDatabaseFails checks the same on both
// dialects in real time; here the backoff's timer runs on the bubble's
// clock, and synctest.Wait says when Alerts is blocked on it.
func TestAlertsWaitForTheDatabase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sender := &recorder{}
		b := newBubble(t, notify.SenderFunc(sender.send), nil)
		db := testenv.RawDB(t, b.dsn)
		if _, err := db.ExecContext(b.ctx, `ALTER TABLE outreach RENAME TO outreach_away`); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.n.Alerts(b.ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, time.Now())})
		}()
		synctest.Wait() // Alerts failed and waits on its backoff timer
		select {
		case <-done:
			t.Fatal("Alerts returned while the database was failing: the alert was dropped")
		default:
		}
		if _, err := db.ExecContext(b.ctx, `ALTER TABLE outreach_away RENAME TO outreach`); err != nil {
			t.Fatal(err)
		}
		b.until(time.Now().Add(time.Minute))
		select {
		case <-done:
		default:
			t.Fatal("Alerts did not return a minute after the database was back")
		}
		if got := sender.to("+33611111111"); len(got) != 1 || got[0].msg.Kind != notify.KindOffer {
			t.Errorf("sent %+v, want the offer", got)
		}
	})
}

// The visit reminder goes out the day before the visit at VisitReminderAt
// (18:00 local) and only once; the offer's reminder goes out a day before
// the offer expires and, when the customer books, not at all.
func TestRunRemindsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Days pass: poll less often than in production, so that the test
		// makes hundreds of passes, not thousands.
		const poll = 10 * time.Minute
		sender := &recorder{}
		b := newBubble(t, notify.SenderFunc(sender.send), func(o *notify.Options) { o.PollInterval = poll })
		const alice = "+33611111111"
		b.n.Alerts(b.ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, time.Now())})
		b.until(time.Now())
		if got := sender.to(alice); len(got) != 1 || got[0].msg.Kind != notify.KindOffer {
			t.Fatalf("sent %+v, want the offer", got)
		}
		// Alice books the second slot, Tuesday 08:00, an hour later.
		b.until(time.Now().Add(time.Hour))
		if err := b.n.Inbound(b.ctx, "SMin000001", alice, "2"); err != nil {
			t.Fatalf("inbound: %v", err)
		}
		b.until(time.Now())
		if got := sender.to(alice); len(got) != 2 || got[1].msg.Kind != notify.KindConfirm {
			t.Fatalf("sent %+v, want the offer and the confirmation", got)
		}

		reminderAt := time.Date(2026, 3, 9, 18, 0, 0, 0, paris)
		b.until(reminderAt.Add(-time.Second))
		if got := sender.to(alice); len(got) != 2 {
			t.Fatalf("before 18:00 the day before: %d messages, want no reminder yet", len(got))
		}
		b.until(time.Date(2026, 3, 10, 10, 0, 0, 0, paris)) // the end of the visit
		got := sender.to(alice)
		if len(got) != 3 {
			for _, s := range got {
				t.Logf("%s %s: %q", s.at, s.msg.Kind, s.msg.Body)
			}
			t.Fatalf("by the end of the visit %d messages, want the offer, the confirmation and one reminder", len(got))
		}
		r := got[2]
		if r.msg.Kind != notify.KindVisitReminder || r.at.Before(reminderAt) || r.at.After(reminderAt.Add(poll)) {
			t.Errorf("third message %s at %s, want the visit reminder at %s (within a poll)", r.msg.Kind, r.at, reminderAt)
		}
		contains(t, r.msg.Body, "Reminder", "tomorrow", "08:00-10:00")
	})
}

// An offer without a reply is reminded once, OfferReminder before it
// expires, naming the slots still ahead, and then expires; nothing more is
// sent. (With the defaults, 72h and 24h, every slot of the offer would have
// passed by the reminder, which is then not sent.)
func TestRunRemindsOfferOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const poll = 10 * time.Minute
		sender := &recorder{}
		b := newBubble(t, notify.SenderFunc(sender.send), func(o *notify.Options) {
			o.PollInterval, o.OfferExpiry, o.OfferReminder = poll, 24*time.Hour, 12*time.Hour
		})
		const alice = "+33611111111"
		b.n.Alerts(b.ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, time.Now())})
		b.until(monday0830.Add(36 * time.Hour)) // the offer expired 12 hours ago

		got := sender.to(alice)
		if len(got) != 2 {
			for _, s := range got {
				t.Logf("%s %s: %q", s.at, s.msg.Kind, s.msg.Body)
			}
			t.Fatalf("%d messages to Alice, want the offer and one reminder", len(got))
		}
		remindAt := monday0830.Add(12 * time.Hour) // Monday 20:30, before the quiet hours
		if r := got[1]; r.msg.Kind != notify.KindOfferReminder || r.at.Before(remindAt) || r.at.After(remindAt.Add(poll)) {
			t.Errorf("second message %s at %s, want the offer reminder at %s (within a poll)", r.msg.Kind, r.at, remindAt)
		}
		contains(t, got[1].msg.Body, "Tue 10 Mar 08:00-10:00", "Wed 11 Mar 08:00-10:00")
		page, err := b.store.ListTickets(b.ctx, devices.TicketFilter{Device: "fridge-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].Status != proactive.TicketExpired {
			t.Errorf("tickets of fridge-1 %+v, want one, expired", page.Items)
		}
	})
}
