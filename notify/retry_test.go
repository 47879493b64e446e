package notify_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
)

// An alert that arrives while the database fails is retried until it is
// stored: its ticket opens and its offer goes out once the database is
// back. An alert for an unregistered device is not retried.
func TestAlertRetriedWhileDatabaseFails(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.RetryBackoff, o.Registerer = 5*time.Millisecond, reg })
		db := testenv.RawDB(t, dsn)
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE outreach RENAME TO outreach_away`); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.n.Alerts(e.ctx, []proactive.Alert{
				alert("unregistered-1", "compressor", proactive.SeverityWarning, e.clock.Now()),
				alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now()),
			})
		}()
		// Once an attempt has failed and been retried, Alerts returning
		// would mean the alert was dropped.
		testenv.Eventually(t, 0, func() error {
			if n := counter(t, reg, "proactive_notify_alert_errors_total"); n < 2 {
				return fmt.Errorf("%v failed attempts to store the alert, want 2", n)
			}
			return nil
		})
		select {
		case <-done:
			t.Fatal("Alerts returned while the database was failing: the alert was dropped")
		default:
		}
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE outreach_away RENAME TO outreach`); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Alerts did not return once the database was back")
		}
		e.poll()
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketOffered {
			t.Errorf("ticket %+v, want offered", tk)
		}
		e.wantSent("+33611111111", 1)
	})
}

// A reply whose handling fails on the database answers 500, and Twilio's
// retry of the same message is handled, not taken for a repeat and lost.
func TestInboundRetriedAfterFailure(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.wantSent("+33611111111", 1)
		db := testenv.RawDB(t, dsn)
		form := url.Values{"MessageSid": {"SMretry000001"}, "From": {"+33611111111"}, "To": {"+15005550006"}, "Body": {"2"},
			"AccountSid": {"AC0123456789"}}
		sig := faketwilio.Sign(authToken, e.web.URL+notify.SMSPath, form)
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE appointments RENAME TO appointments_away`); err != nil {
			t.Fatal(err)
		}
		if code := e.post(notify.SMSPath, form, sig); code != 500 {
			t.Fatalf("reply while the database fails: %d, want 500 so that Twilio retries", code)
		}
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE appointments_away RENAME TO appointments`); err != nil {
			t.Fatal(err)
		}
		if code := e.post(notify.SMSPath, form, sig); code != 200 {
			t.Fatalf("Twilio's retry: %d, want 200", code)
		}
		e.poll()
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketScheduled {
			t.Errorf("after the retry the ticket is %s, want scheduled", tk.Status)
		}
		if code := e.post(notify.SMSPath, form, sig); code != 200 {
			t.Fatalf("a repeat of the handled message: %d, want 200", code)
		}
	})
}

// A job that fails on the database is tried again a minute later, not at
// every poll at the head of the queue, and not lost.
func TestJobRetriedLater(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		if code := e.reply("+33611111111", "2"); code != 200 {
			t.Fatalf("reply: %d", code)
		}
		e.poll()
		e.wantSent("+33611111111", 2) // offer, confirmation
		db := testenv.RawDB(t, dsn)
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE appointments RENAME TO appointments_away`); err != nil {
			t.Fatal(err)
		}
		e.clock.Set(time.Date(2026, 3, 9, 18, 0, 0, 0, paris)) // the visit reminder is due
		e.poll()
		if _, err := db.ExecContext(e.ctx, `ALTER TABLE appointments_away RENAME TO appointments`); err != nil {
			t.Fatal(err)
		}
		var due time.Time
		if err := db.QueryRowContext(e.ctx, `SELECT due_at FROM jobs WHERE kind = 'visit_reminder'`).Scan(&due); err != nil {
			t.Fatal(err)
		}
		if want := e.clock.Now().Add(time.Minute); !due.Equal(want) {
			t.Errorf("failed job due at %s, want a minute later, %s", due, want)
		}
		e.poll()
		e.wantSent("+33611111111", 2) // not yet
		e.clock.Add(time.Minute)
		e.poll()
		got := e.wantSent("+33611111111", 3)
		contains(t, got[2], "Reminder")
	})
}

// counter returns the value of a counter without labels, 0 before it is
// first gathered.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// An alert whose ticket the database refuses for good (a constraint) is
// given up on with a count, not retried forever: Alerts returns, and the
// next alert in the same call is still stored.
func TestAlertWithPermanentErrorGivenUp(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.RetryBackoff, o.Registerer = 5*time.Millisecond, reg })
		db := testenv.RawDB(t, dsn)
		refuse := `CREATE TRIGGER refuse_fridge1 BEFORE INSERT ON tickets WHEN NEW.device_id = 'fridge-1'
			BEGIN SELECT RAISE(ABORT, 'fridge-1 refused'); END`
		if strings.HasPrefix(dsn, "postgres") {
			refuse = `ALTER TABLE tickets ADD CONSTRAINT refuse_fridge1 CHECK (device_id <> 'fridge-1') NOT VALID`
		}
		if _, err := db.ExecContext(e.ctx, refuse); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.n.Alerts(e.ctx, []proactive.Alert{
				alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now()),
				alert("fridge-2", "compressor", proactive.SeverityWarning, e.clock.Now()),
			})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Alerts still retrying an alert the database refuses for good")
		}
		if got := counters(t, reg, "proactive_notify_alerts_dropped_total"); got[proactive.EInternal] != 1 {
			t.Errorf("alerts dropped %v, want 1 internal", got)
		}
		if n := counter(t, reg, "proactive_notify_alert_errors_total"); n != 0 {
			t.Errorf("%v retries of a permanent error, want none", n)
		}
		e.poll()
		if tk := e.ticket("fridge-2", "compressor"); tk.Status != proactive.TicketOffered {
			t.Errorf("the next alert's ticket %+v, want offered", tk)
		}
	})
}
