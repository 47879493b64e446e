package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

const hookSecret = "s3cret-s3cret-s3cret"

// received is one request the receiver got.
type received struct {
	Event     proactive.OutboundEvent
	Body      []byte
	Type      string
	Signature string
	// Answer is the status the receiver gave it, 0 for none (it waited
	// out the attempt).
	Answer int
}

// receiver is a local webhook endpoint that records every request and
// answers what answer says (200 when nil); an answer of 0 waits until the
// sender gives up.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(e proactive.OutboundEvent) int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var e proactive.OutboundEvent
		_ = json.Unmarshal(body, &e)
		if e.ID == "" {
			e.ID, e.Type = r.Header.Get(notify.HeaderEventID), proactive.EventType(r.Header.Get(notify.HeaderEvent))
		}
		rc.mu.Lock()
		answer := rc.answer
		rc.mu.Unlock()
		code := http.StatusOK
		if answer != nil {
			code = answer(e)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{Event: e, Body: body, Type: r.Header.Get(notify.HeaderEvent),
			Signature: r.Header.Get(notify.HeaderSignature), Answer: code})
		rc.mu.Unlock()
		if code == 0 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setAnswer(f func(e proactive.OutboundEvent) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// ofTicket returns the types the receiver got for ticket id's events (data
// with that id or ticket_id), in the order they came, with their answers.
func (rc *receiver) ofTicket(id int64) []string {
	var out []string
	for _, r := range rc.requests() {
		var d struct {
			ID     int64 `json:"id"`
			Ticket int64 `json:"ticket_id"`
		}
		_ = json.Unmarshal(r.Event.Data, &d)
		if strings.HasPrefix(string(r.Event.Type), "ticket.") && d.ID == id || d.Ticket == id && d.Ticket != 0 {
			out = append(out, fmt.Sprintf("%s:%d", r.Event.Type, r.Answer))
		}
	}
	return out
}

func (e *env) webhook(url string, format string, events ...proactive.EventType) proactive.Webhook {
	e.t.Helper()
	if len(events) == 0 {
		events = proactive.EventTypes
	}
	return must(e.store.CreateWebhook(e.ctx, proactive.Webhook{URL: url, Events: events, Format: format}, hookSecret))
}

func (e *env) dispatcher(st notify.WebhookStore, tune func(*notify.DispatcherOptions)) *notify.Dispatcher {
	opt := notify.DispatcherOptions{Now: e.clock.Now, Logger: discard(), Backoff: time.Minute, MaxBackoff: time.Hour,
		Timeout: 2 * time.Second}
	if tune != nil {
		tune(&opt)
	}
	return notify.NewDispatcher(st, opt)
}

func deliver(t *testing.T, d *notify.Dispatcher) int {
	t.Helper()
	n, err := d.Deliver(t.Context())
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return n
}

func (e *env) log(hook int64) []devices.Delivery {
	e.t.Helper()
	return must(e.store.WebhookDeliveries(e.ctx, hook, devices.ListOptions{Limit: 500})).Items
}

// Driving tickets through their lives emits every event type, each signed
// with the webhook's secret, each ticket's events in the order they
// happened.
func TestWebhookEveryEventType(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		rc := newReceiver(t)
		hook := e.webhook(rc.URL, "")
		// One that wants only a closed ticket, in Slack's form.
		slack := newReceiver(t)
		e.webhook(slack.URL, proactive.WebhookSlack, proactive.EventTicketClosed)

		// Alice's ticket: opened, offered, a call asked for, scheduled,
		// visited, closed when the survey times out.
		e.fire("fridge-1", "compressor")
		a := e.ticket("fridge-1", "compressor")
		e.reply(alice, "CALL")
		e.reply(alice, "1")
		must(e.n.VisitDone(e.ctx, a.ID, "", proactive.OutcomePartReplaced, "new compressor"))
		e.poll()
		e.clock.Add(48 * time.Hour)
		e.poll()
		// Bruno's: offered, declined; then he opts out.
		e.fire("fridge-2", "compressor")
		b := e.ticket("fridge-2", "compressor")
		e.reply("+33622222222", "NON")
		e.reply("+33622222222", "STOP")
		// Through the store: review, back to open, offered, expired; and a
		// cancelled one; an incident.
		c := e.open("fridge-1", "fan")
		for _, to := range []proactive.TicketStatus{proactive.TicketReview, proactive.TicketOpen, proactive.TicketOffered, proactive.TicketExpired} {
			must(e.store.Transition(e.ctx, c.ID, to, "test", ""))
		}
		d := e.open("fridge-2", "fan")
		must(e.store.Transition(e.ctx, d.ID, proactive.TicketCancelled, "test", "duplicate"))
		if err := e.store.WithTx(e.ctx, func(tx *devices.Tx) error {
			_, err := tx.OpenIncident(e.ctx, "fan_wear", e.clock.Now(), 2)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		dp := e.dispatcher(e.store, nil)
		deliver(t, dp)
		got := map[proactive.EventType]bool{}
		for _, r := range rc.requests() {
			got[r.Event.Type] = true
			if r.Type != string(r.Event.Type) {
				t.Errorf("%s: header %s %q", r.Event.Type, notify.HeaderEvent, r.Type)
			}
			if r.Signature != notify.Sign(r.Body, hookSecret) || !strings.HasPrefix(r.Signature, "sha256=") {
				t.Errorf("%s: signature %q does not match the body", r.Event.Type, r.Signature)
			}
			if r.Event.ID == "" || r.Event.Time.IsZero() || len(r.Event.Data) == 0 {
				t.Errorf("incomplete event %+v", r.Event)
			}
		}
		for _, typ := range proactive.EventTypes {
			if !got[typ] {
				t.Errorf("no %s delivered", typ)
			}
		}
		wantSeq := func(id int64, want ...string) {
			t.Helper()
			if got := rc.ofTicket(id); !slices.Equal(got, want) {
				t.Errorf("ticket %d: events %v, want %v", id, got, want)
			}
		}
		wantSeq(a.ID, "ticket.opened:200", "ticket.offered:200", "customer.callback_requested:200", "ticket.scheduled:200",
			"ticket.visited:200", "ticket.closed:200")
		wantSeq(b.ID, "ticket.opened:200", "ticket.offered:200", "ticket.declined:200")
		wantSeq(c.ID, "ticket.opened:200", "ticket.review:200", "ticket.opened:200", "ticket.offered:200", "ticket.expired:200")
		wantSeq(d.ID, "ticket.opened:200", "ticket.cancelled:200")
		for _, r := range rc.requests() {
			switch r.Event.Type {
			case proactive.EventTicketClosed:
				var tk proactive.Ticket
				if err := json.Unmarshal(r.Event.Data, &tk); err != nil || tk.Device != "fridge-1" || tk.Outcome != proactive.OutcomePartReplaced {
					t.Errorf("closed ticket's data %s (%v)", r.Event.Data, err)
				}
			case proactive.EventTicketScheduled:
				// The booked visit comes with the ticket: who, when, and
				// the time as the site sees it.
				var tk proactive.TicketEventData
				if err := json.Unmarshal(r.Event.Data, &tk); err != nil || tk.Visit == nil || tk.Visit.TechnicianID == "" || tk.Visit.Start.IsZero() {
					t.Fatalf("scheduled ticket's data %s (%v): want its visit", r.Event.Data, err)
				}
				loc, err := time.LoadLocation(tk.Visit.TimeZone)
				if err != nil || !strings.Contains(tk.Visit.Label, tk.Visit.Start.In(loc).Format("15:04")) || tk.ID != a.ID {
					t.Errorf("visit %+v (%v): want its label in the site's zone", tk.Visit, err)
				}
			case proactive.EventCustomerOptedOut:
				if !strings.Contains(string(r.Event.Data), `"customer_id":"bruno"`) {
					t.Errorf("opt-out data %s", r.Event.Data)
				}
			case proactive.EventCallbackRequested:
				if !strings.Contains(string(r.Event.Data), `"customer_id":"alice"`) || !strings.Contains(string(r.Event.Data), `"device_id":"fridge-1"`) {
					t.Errorf("callback data %s", r.Event.Data)
				}
			}
		}

		s := slack.requests()
		if len(s) != 1 {
			t.Fatalf("slack receiver got %d requests, want the one closed ticket", len(s))
		}
		var text map[string]string
		if err := json.Unmarshal(s[0].Body, &text); err != nil || !strings.Contains(text["text"], fmt.Sprintf("Ticket #%d closed", a.ID)) {
			t.Errorf("slack body %s (%v)", s[0].Body, err)
		}
		if s[0].Signature != notify.Sign(s[0].Body, hookSecret) {
			t.Error("slack delivery not signed")
		}
		for _, l := range e.log(hook.ID) {
			if l.State != devices.DeliveryDelivered || l.Attempts != 1 || l.LastStatus != 200 || l.Finished.IsZero() {
				t.Errorf("log entry %+v, want delivered at the first attempt", l)
			}
		}
	})
}

// open opens a ticket through the store, as an alert would.
func (e *env) open(dev, component string) proactive.Ticket {
	e.t.Helper()
	t, _, err := e.store.OpenTicket(e.ctx, alert(dev, component, proactive.SeverityInfo, e.clock.Now()))
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// A delivery that fails is retried with backoff, keeping its id, while the
// ticket's later events wait; a timeout counts as a failure; after the last
// attempt it is dead, and the ticket's next event goes.
func TestWebhookRetryOrderAndDead(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		rc := newReceiver(t)
		hook := e.webhook(rc.URL, "")
		reg := prometheus.NewRegistry()
		dp := e.dispatcher(e.store, func(o *notify.DispatcherOptions) {
			o.Attempts, o.Timeout, o.Registerer = 4, 300*time.Millisecond, reg
		})
		if n := testutil.CollectAndCount(reg, "proactive_webhook_deliveries_total"); n != 3 {
			t.Fatalf("%d delivery counters before any delivery, want 3 at zero", n)
		}

		// The first event of ticket 1 meets a 500, then a timeout, then a 200.
		var calls int
		rc.setAnswer(func(ev proactive.OutboundEvent) int {
			if ev.Type != proactive.EventTicketOpened {
				return 200
			}
			calls++
			return []int{500, 0, 200}[min(calls-1, 2)]
		})
		tk := e.open("fridge-1", "fan")
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketReview, "test", ""))
		deliver(t, dp)
		if got := rc.ofTicket(tk.ID); !slices.Equal(got, []string{"ticket.opened:500"}) {
			t.Fatalf("after a 500: %v; the review must wait", got)
		}
		l := e.log(hook.ID)
		if len(l) != 2 || l[1].State != devices.DeliveryPending || l[1].Attempts != 1 || l[1].LastStatus != 500 ||
			!l[1].NextAttempt.Equal(e.clock.Now().Add(time.Minute)) {
			t.Fatalf("log after a 500: %+v", l)
		}
		deliver(t, dp) // not due yet
		if n := len(rc.requests()); n != 1 {
			t.Fatalf("%d requests before the backoff passed", n)
		}
		e.clock.Add(time.Minute)
		deliver(t, dp)
		if got := rc.ofTicket(tk.ID); !slices.Equal(got, []string{"ticket.opened:500", "ticket.opened:0"}) {
			t.Fatalf("after a timeout: %v", got)
		}
		if l := e.log(hook.ID); !strings.Contains(l[1].LastError, "no answer within") || l[1].Attempts != 2 {
			t.Fatalf("log after a timeout: %+v", l[1])
		}
		e.clock.Add(2 * time.Minute)
		deliver(t, dp)
		if got := rc.ofTicket(tk.ID); !slices.Equal(got, []string{"ticket.opened:500", "ticket.opened:0", "ticket.opened:200", "ticket.review:200"}) {
			t.Fatalf("after success: %v", got)
		}
		ids := map[string]bool{}
		for _, r := range rc.requests()[:3] {
			ids[r.Event.ID] = true
		}
		if len(ids) != 1 {
			t.Errorf("retries changed the event id: %v", ids)
		}

		// Dead: every attempt fails; then the next event of the ticket goes.
		rc.setAnswer(func(ev proactive.OutboundEvent) int {
			if ev.Type == proactive.EventTicketOffered {
				return 503
			}
			return 200
		})
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketOffered, "test", ""))
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketExpired, "test", ""))
		for range 4 {
			deliver(t, dp)
			e.clock.Add(time.Hour)
		}
		got := rc.ofTicket(tk.ID)[4:]
		if !slices.Equal(got, []string{"ticket.offered:503", "ticket.offered:503", "ticket.offered:503", "ticket.offered:503", "ticket.expired:200"}) {
			t.Fatalf("dead letter: %v", got)
		}
		l = e.log(hook.ID)
		if l[1].State != devices.DeliveryDead || l[1].Attempts != 4 || l[1].LastStatus != 503 || l[0].State != devices.DeliveryDelivered {
			t.Fatalf("log: %+v", l[:2])
		}
		// A refusal no retry changes (410 Gone) is dead at once.
		rc.setAnswer(func(proactive.OutboundEvent) int { return http.StatusGone })
		must(e.store.Transition(e.ctx, e.open("fridge-2", "fan").ID,
			proactive.TicketCancelled, "test", ""))
		deliver(t, dp)
		if l := e.log(hook.ID); l[0].State != devices.DeliveryDead || l[0].Attempts != 1 || l[0].LastStatus != 410 {
			t.Fatalf("after 410: %+v", l[0])
		}
		if err := testutil.CollectAndCompare(reg, strings.NewReader(`
# HELP proactive_webhook_deliveries_total Webhook delivery attempts by result: delivered, retry, dead.
# TYPE proactive_webhook_deliveries_total counter
proactive_webhook_deliveries_total{result="dead"} 3
proactive_webhook_deliveries_total{result="delivered"} 3
proactive_webhook_deliveries_total{result="retry"} 5
`), "proactive_webhook_deliveries_total"); err != nil {
			t.Error(err)
		}
	})
}

// A dispatcher stopped while a delivery is failing, and one that died in
// the middle of an attempt: a new dispatcher on the same database, in
// another process, delivers the event at most once more.
func TestWebhookRestartMidRetry(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		rc := newReceiver(t)
		e.webhook(rc.URL, "")
		rc.setAnswer(func(proactive.OutboundEvent) int { return 500 })
		tk := e.open("fridge-1", "fan")

		ctx, cancel := context.WithCancel(t.Context())
		first := e.dispatcher(e.store, func(o *notify.DispatcherOptions) { o.PollInterval = 10 * time.Millisecond })
		done := make(chan error, 1)
		go func() { done <- first.Run(ctx) }()
		testenv.Eventually(t, 0, func() error {
			if len(rc.requests()) == 0 {
				return errors.New("no attempt yet")
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		failed := len(rc.requests())

		// The other process: its own store on the same database.
		st2 := must(devices.OpenOptions(e.ctx, dsn, devices.Options{Now: e.clock.Now}))
		t.Cleanup(func() { st2.Close() })
		rc.setAnswer(nil)
		second := e.dispatcher(st2, nil)
		e.clock.Add(time.Hour)
		deliver(t, second)
		deliver(t, second)
		if got := rc.ofTicket(tk.ID); len(got) != failed+1 || got[failed] != "ticket.opened:200" {
			t.Fatalf("after the restart: %v, want %d failures then one delivery", got, failed)
		}

		// Died mid-attempt: claimed, never recorded. Due again only when
		// its lease runs out, and then delivered once.
		must(st2.Transition(e.ctx, tk.ID, proactive.TicketCancelled, "test", ""))
		due := must(st2.WebhookDue(e.ctx, e.clock.Now(), 10))
		if len(due) != 1 || !must(st2.WebhookClaim(e.ctx, due[0].ID, e.clock.Now(), e.clock.Now().Add(30*time.Second))) {
			t.Fatalf("due %+v", due)
		}
		deliver(t, second)
		if got := rc.ofTicket(tk.ID); len(got) != failed+1 {
			t.Fatalf("a claimed delivery was sent again before its lease ran out: %v", got)
		}
		e.clock.Add(31 * time.Second)
		deliver(t, second)
		deliver(t, second)
		if got := rc.ofTicket(tk.ID); len(got) != failed+2 || got[failed+1] != "ticket.cancelled:200" {
			t.Fatalf("after the lease: %v", got)
		}
	})
}

// Bad registrations name what is wrong.
func TestWebhookValidation(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		for _, c := range []struct {
			w      proactive.Webhook
			secret string
			field  string
			says   string
		}{
			{proactive.Webhook{URL: "ftp://x", Events: proactive.EventTypes}, hookSecret, "url", "http"},
			{proactive.Webhook{URL: "http://x", Events: []proactive.EventType{"ticket.exploded"}}, hookSecret, "events", "ticket.opened, ticket.review"},
			{proactive.Webhook{URL: "http://x"}, hookSecret, "events", "at least one"},
			{proactive.Webhook{URL: "http://x", Events: proactive.EventTypes}, "short", "secret", "16"},
			{proactive.Webhook{URL: "http://x", Events: proactive.EventTypes, Format: "teams"}, hookSecret, "format", "json or slack"},
		} {
			_, err := e.store.CreateWebhook(e.ctx, c.w, c.secret)
			var fe *devices.FieldErrors
			if !errors.As(err, &fe) || !strings.Contains(fe.Fields[c.field], c.says) {
				t.Errorf("%+v: %v, want %s: ...%s...", c.w, err, c.field, c.says)
			}
		}
		w := e.webhook("http://127.0.0.1:1/x", "", proactive.EventTicketClosed, proactive.EventTicketClosed)
		if len(w.Events) != 1 || w.Format != proactive.WebhookJSON || !w.Enabled {
			t.Errorf("created %+v", w)
		}
		if w = must(e.store.EnableWebhook(e.ctx, w.ID, false)); w.Enabled {
			t.Error("not disabled")
		}
		// A disabled webhook's queued deliveries wait; it gets no new events.
		rc := newReceiver(t)
		on := e.webhook(rc.URL, "", proactive.EventTicketCancelled)
		tk := e.open("fridge-2", "fan")
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketCancelled, "test", ""))
		must(e.store.EnableWebhook(e.ctx, on.ID, false))
		e.open("fridge-1", "fan")
		must(e.store.Transition(e.ctx, e.open("fridge-1", "door").ID, proactive.TicketCancelled, "test", ""))
		dp := e.dispatcher(e.store, nil)
		deliver(t, dp)
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("a disabled webhook got %d requests", n)
		}
		must(e.store.EnableWebhook(e.ctx, on.ID, true))
		deliver(t, dp)
		if got := rc.requests(); len(got) != 1 || got[0].Event.Type != proactive.EventTicketCancelled {
			t.Fatalf("after enabling: %+v", got)
		}
		if err := e.store.DeleteWebhook(e.ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Webhook(e.ctx, w.ID); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("after delete: %v", err)
		}
	})
}

// A receiver that cannot be reached is retried; the log's error does not
// repeat the URL, which may hold a secret.
func TestWebhookUnreachable(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	rc := newReceiver(t)
	url := rc.URL + "/services/T000/B000/secretpart"
	rc.Close()
	hook := e.webhook(url, proactive.WebhookSlack)
	e.open("fridge-1", "fan")
	deliver(t, e.dispatcher(e.store, nil))
	l := e.log(hook.ID)
	if len(l) != 1 || l[0].State != devices.DeliveryPending || l[0].Attempts != 1 || l[0].LastError == "" ||
		strings.Contains(l[0].LastError, "secretpart") {
		t.Fatalf("log %+v", l)
	}
}

// A dead delivery retried goes out again with the same event id, and before
// the ticket's later events still pending; later events already delivered
// stay delivered. Only a dead delivery of that webhook can be retried.
func TestWebhookRetryDead(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		rc := newReceiver(t)
		hook := e.webhook(rc.URL, "")
		other := e.webhook("http://127.0.0.1:9/other", "", proactive.EventTicketClosed)
		dp := e.dispatcher(e.store, nil)

		// The opening is refused (410: dead at once), the review goes; the
		// offer meets a 503 and waits for its retry.
		rc.setAnswer(func(ev proactive.OutboundEvent) int {
			switch ev.Type {
			case proactive.EventTicketOpened:
				return http.StatusGone
			case proactive.EventTicketOffered:
				return http.StatusServiceUnavailable
			}
			return 200
		})
		tk := e.open("fridge-1", "fan")
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketReview, "test", ""))
		deliver(t, dp)
		must(e.store.Transition(e.ctx, tk.ID, proactive.TicketOffered, "test", ""))
		deliver(t, dp)
		if got := rc.ofTicket(tk.ID); !slices.Equal(got, []string{"ticket.opened:410", "ticket.review:200", "ticket.offered:503"}) {
			t.Fatalf("before the retry: %v", got)
		}
		l := e.log(hook.ID)
		opened, review := l[2], l[1]
		if opened.State != devices.DeliveryDead || review.State != devices.DeliveryDelivered || l[0].State != devices.DeliveryPending {
			t.Fatalf("log before the retry: %+v", l)
		}

		rc.setAnswer(nil)
		d, err := e.store.RetryWebhookDelivery(e.ctx, hook.ID, opened.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != devices.DeliveryPending || d.Attempts != 0 || !d.NextAttempt.Equal(e.clock.Now()) || d.EventID != opened.EventID {
			t.Fatalf("retried: %+v", d)
		}
		// The offer is due too: the retried opening still goes first.
		e.clock.Add(time.Hour)
		deliver(t, dp)
		got := rc.ofTicket(tk.ID)
		if !slices.Equal(got[3:], []string{"ticket.opened:200", "ticket.offered:200"}) {
			t.Fatalf("after the retry: %v", got)
		}
		if reqs := rc.requests(); reqs[3].Event.ID != opened.EventID || reqs[0].Event.ID != opened.EventID {
			t.Errorf("the retry sent %s, the first attempt %s, want %s", reqs[3].Event.ID, reqs[0].Event.ID, opened.EventID)
		}
		l = e.log(hook.ID)
		if l[2].State != devices.DeliveryDelivered || l[2].Attempts != 1 || l[2].LastStatus != 200 || l[1].State != devices.DeliveryDelivered {
			t.Fatalf("log after the retry: %+v", l)
		}

		for _, c := range []struct {
			hook, delivery int64
			code           string
		}{
			{hook.ID, opened.ID, proactive.EConflict},  // delivered
			{hook.ID, review.ID, proactive.EConflict},  // delivered
			{other.ID, opened.ID, proactive.ENotFound}, // another webhook's
			{hook.ID, 1 << 40, proactive.ENotFound},
			{1 << 40, opened.ID, proactive.ENotFound},
		} {
			if _, err := e.store.RetryWebhookDelivery(e.ctx, c.hook, c.delivery); proactive.ErrorCode(err) != c.code {
				t.Errorf("retry %d of webhook %d: %v, want %s", c.delivery, c.hook, err, c.code)
			}
		}
	})
}

// Retention: the dispatcher deletes delivered and dead deliveries older
// than Retention, and counts them; a pending one stays whatever its age
// and is still delivered; Run prunes too. Without Retention nothing goes.
func TestWebhookRetention(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		rc := newReceiver(t)
		hook := e.webhook(rc.URL, "")
		const month = 30 * 24 * time.Hour
		reg := prometheus.NewRegistry()
		dp := e.dispatcher(e.store, func(o *notify.DispatcherOptions) { o.Retention, o.Registerer = month, reg })
		pruned := func() float64 {
			t.Helper()
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == "proactive_webhook_deliveries_pruned_total" {
					return mf.GetMetric()[0].GetCounter().GetValue()
				}
			}
			t.Fatal("no proactive_webhook_deliveries_pruned_total series")
			return 0
		}
		if n := pruned(); n != 0 {
			t.Fatalf("pruned %v before anything", n)
		}

		// fridge-1's ticket: opened delivered, review refused (dead);
		// fridge-2's: opened retrying.
		rc.setAnswer(func(ev proactive.OutboundEvent) int {
			switch {
			case ev.Type == proactive.EventTicketReview:
				return http.StatusGone
			case strings.Contains(string(ev.Data), `"device_id":"fridge-2"`):
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		old := e.open("fridge-1", "fan")
		must(e.store.Transition(e.ctx, old.ID, proactive.TicketReview, "test", ""))
		retrying := e.open("fridge-2", "fan")
		deliver(t, dp)
		if got := rc.ofTicket(old.ID); !slices.Equal(got, []string{"ticket.opened:200", "ticket.review:410"}) {
			t.Fatalf("fridge-1's ticket: %v", got)
		}

		e.clock.Add(month + time.Hour)
		e.open("fridge-1", "door")
		deliver(t, dp) // the new ticket's event goes; the retrying one fails again
		if n, err := e.dispatcher(e.store, nil).Prune(e.ctx); err != nil || n != 0 {
			t.Fatalf("without retention pruned %d (%v)", n, err)
		}
		if n := len(e.log(hook.ID)); n != 4 {
			t.Fatalf("%d deliveries before pruning, want 4", n)
		}
		if n, err := dp.Prune(e.ctx); err != nil || n != 2 {
			t.Fatalf("pruned %d (%v), want fridge-1's ticket's two", n, err)
		}
		if n := pruned(); n != 2 {
			t.Errorf("pruned counter %v, want 2", n)
		}
		l := e.log(hook.ID)
		if len(l) != 2 || l[0].State != devices.DeliveryDelivered || l[1].State != devices.DeliveryPending || l[1].Attempts != 2 {
			t.Fatalf("log after pruning: %+v; want the recent delivery and the retrying one", l)
		}

		// The old retrying delivery still goes out; a month on, Run prunes
		// it with the recent one.
		rc.setAnswer(nil)
		e.clock.Add(time.Hour)
		deliver(t, dp)
		if got := rc.ofTicket(retrying.ID); len(got) != 3 || got[2] != "ticket.opened:200" {
			t.Fatalf("the retrying ticket: %v", got)
		}
		e.clock.Add(month + time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- dp.Run(ctx) }()
		testenv.Eventually(t, 0, func() error {
			if n := pruned(); n != 4 {
				return fmt.Errorf("pruned %v, want 4", n)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if l := e.log(hook.ID); len(l) != 0 {
			t.Errorf("log after Run pruned: %+v", l)
		}
	})
}
