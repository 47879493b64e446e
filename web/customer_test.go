package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// linkRE finds a customer link in an SMS.
var linkRE = regexp.MustCompile(`https?://\S+/c/([A-Za-z0-9_-]{22})\b`)

// customerEnv is the pages with the customer's page, the device of Alice's
// offered ticket named as she knows it.
func customerEnv(t *testing.T, dsn string) *env {
	t.Helper()
	e := newEnv(t, dsn)
	d := must(e.store.GetDevice(e.ctx, "fridge-1"))
	d.Name = "kitchen fridge"
	must(e.store.UpdateDevice(e.ctx, d))
	return e
}

// codeIn returns the code of the link in the latest SMS to phone.
func (e *env) codeIn(phone string) string {
	e.t.Helper()
	msgs := e.sms.to(phone)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := linkRE.FindStringSubmatch(msgs[i]); m != nil {
			return m[1]
		}
	}
	e.t.Fatalf("no link in the SMS to %s:\n%s", phone, strings.Join(msgs, "\n---\n"))
	return ""
}

// poll delivers the outbox.
func (e *env) poll() {
	e.t.Helper()
	if err := e.n.Poll(e.ctx); err != nil {
		e.t.Fatalf("poll: %v", err)
	}
}

var slotRE = regexp.MustCompile(`name="slot" value="(\d+)"`)

// freeStarts are the slot values a page offers.
func freeStarts(page string) []string {
	var out []string
	for _, m := range slotRE.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestCustomerPage(t *testing.T) {
	testenv.EachDialect(t, customerPage)
}

func customerPage(t *testing.T, dsn string) {
	e := customerEnv(t, dsn)
	code := e.codeIn("+33611111111")
	b := e.browser() // no JavaScript: plain GETs and form POSTs
	path := "/c/" + code

	resp, page := b.get(path)
	wantStatus(t, resp, page, http.StatusOK)
	for k, v := range map[string]string{"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	wantIn(t, page, `lang="en"`, "kitchen fridge", "compressor", "within about 5 days", "Europe/Paris", "CET",
		"Call me", "No visit, thanks", "Book this time")
	wantNotIn(t, page, "Alice", "+33611111111", "rue Oberkampf", "Paula")
	conv := must(e.n.Conversation(e.ctx, e.offered))
	offered := map[string]bool{}
	for _, s := range conv.Slots {
		offered[strconv.FormatInt(s.Start.Unix(), 10)] = true
	}
	starts := freeStarts(page)
	if len(starts) <= len(conv.Slots) || len(conv.Slots) != 3 {
		t.Fatalf("page lists %d times, the SMS %d: want every free time of two weeks", len(starts), len(conv.Slots))
	}
	last := must(time.Parse(time.RFC3339, "2026-03-22T00:00:00Z"))
	if s, _ := strconv.ParseInt(starts[len(starts)-1], 10, 64); time.Unix(s, 0).Before(last) {
		t.Errorf("the last time listed is %v: want two weeks of times", time.Unix(s, 0))
	}
	var pick string
	for _, s := range starts {
		if !offered[s] {
			pick = s
			break
		}
	}

	// Two weeks of times fold by day on a phone: the first two days and
	// the days with an offered time open, the others under their date.
	if open, all := strings.Count(page, `<details class="day" open>`), strings.Count(page, `<details class="day"`); open < 2 || open >= all {
		t.Errorf("%d of %d days open, want the first two (and offered ones) open and the rest folded", open, all)
	}
	wantIn(t, page, "free times")

	t.Run("book without a time", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"book"}})
		wantStatus(t, resp, page, http.StatusUnprocessableEntity)
		wantIn(t, page, "Choose one of the times below first", "Book this time")
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketOffered {
			t.Errorf("ticket %s, want still offered", tk.Status)
		}
	})

	t.Run("forged form", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"call"}, "csrf": {"forged"}})
		wantStatus(t, resp, page, http.StatusForbidden)
		wantNotIn(t, page, "kitchen fridge")
	})

	t.Run("book a time the SMS did not offer", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"book"}, "slot": {pick}})
		wantStatus(t, resp, page, http.StatusSeeOther)
		resp, page = b.get(resp.Header.Get("Location"))
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "your visit is booked", "Move my visit", "Cancel my visit")
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketScheduled {
			t.Fatalf("ticket %s, want scheduled", tk.Status)
		}
		apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: tk.ID}))
		if len(apps) != 1 || strconv.FormatInt(apps[0].Start.Unix(), 10) != pick {
			t.Fatalf("appointments %+v, want one at %s", apps, pick)
		}
		wantPageEntry(t, tk, "slot ")
		e.poll()
		msgs := e.sms.to("+33611111111")
		if last := msgs[len(msgs)-1]; !strings.HasPrefix(last, "Booked:") || !linkRE.MatchString(last) {
			t.Errorf("confirmation %q: want one with a link", last)
		}
	})

	t.Run("change it", func(t *testing.T) {
		_, page := b.get(path)
		starts := freeStarts(page)
		if slicesContains(starts, pick) {
			t.Errorf("the booked time is still listed as free")
		}
		to := starts[len(starts)-1]
		resp, page := b.post(path, url.Values{"action": {"book"}, "slot": {to}})
		wantStatus(t, resp, page, http.StatusSeeOther)
		var booked []notify.Appointment
		for _, a := range must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered})) {
			if a.Status == "booked" {
				booked = append(booked, a)
			}
		}
		if len(booked) != 1 || strconv.FormatInt(booked[0].Start.Unix(), 10) != to {
			t.Fatalf("booked visits %+v, want one at %s", booked, to)
		}
		wantPageEntry(t, e.ticket("fridge-1", "compressor"), "reschedule ")
	})

	t.Run("a slot that is not free", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"book"}, "slot": {"1773100000"}})
		wantStatus(t, resp, page, http.StatusConflict)
		wantIn(t, page, "could not be done")
	})

	t.Run("ask for a call", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"call"}})
		wantStatus(t, resp, page, http.StatusSeeOther)
		tk := e.ticket("fridge-1", "compressor")
		if tk.FollowUp == nil || tk.FollowUp.Reason != proactive.FollowUpCall {
			t.Fatalf("follow-up %+v, want %s", tk.FollowUp, proactive.FollowUpCall)
		}
		if tk.Status != proactive.TicketScheduled {
			t.Errorf("ticket %s, want it to stay scheduled", tk.Status)
		}
	})

	t.Run("forged and mistyped codes", func(t *testing.T) {
		other := []byte(code)
		other[5] ^= 1 // another code of the same shape
		for _, p := range []string{"/c/" + string(other), "/c/AAAAAAAAAAAAAAAAAAAAAA", "/c/short", "/c/" + code + "x"} {
			resp, page := b.get(p)
			wantStatus(t, resp, page, http.StatusNotFound)
			wantIn(t, page, "does not work any more", "To reach us:")
			wantNotIn(t, page, "kitchen fridge", "compressor", "Alice")
		}
	})

	t.Run("cancel", func(t *testing.T) {
		resp, page := b.post(path, url.Values{"action": {"cancel"}})
		wantStatus(t, resp, page, http.StatusSeeOther)
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketCancelled {
			t.Fatalf("ticket %s, want cancelled", tk.Status)
		}
		for _, a := range must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: tk.ID})) {
			if a.Status == "booked" {
				t.Errorf("visit %d still booked", a.ID)
			}
		}
		_, page = b.get(path)
		wantIn(t, page, "visit cancelled")
		wantNotIn(t, page, "Book this time", "Cancel my visit")
	})

	t.Run("expired", func(t *testing.T) {
		e.clock.Add(31 * 24 * time.Hour)
		resp, page := b.get(path)
		wantStatus(t, resp, page, http.StatusNotFound)
		wantNotIn(t, page, "kitchen fridge", "compressor")
	})
}

// wantPageEntry fails unless ticket t's timeline has an inbound message
// handled as handled (a prefix), marked as made on the page.
func wantPageEntry(t *testing.T, tk proactive.Ticket, handled string) {
	t.Helper()
	for _, ev := range tk.Timeline {
		var body struct{ Via, Handled string }
		_ = json.Unmarshal(ev.Body, &body)
		if ev.Kind == proactive.TicketEventMessage && body.Via == "page" && strings.HasPrefix(body.Handled, handled) {
			return
		}
	}
	t.Errorf("ticket %d has no %q entry via the page: %+v", tk.ID, handled, tk.Timeline)
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestCustomerPageOthers: a French customer gets a French page; a code
// opens its own ticket only, and a declined offer's page offers a call.
func TestCustomerPageOthers(t *testing.T) {
	e := customerEnv(t, testenv.SQLite(t))
	alice := e.codeIn("+33611111111")
	must(e.store.RecordConsent(e.ctx, "bruno", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentSMS, Actor: "test"}))
	slots := must(e.n.Slots(e.ctx, e.open))
	must(e.n.Book(e.ctx, e.open, slots[0], "dispatcher"))
	e.poll()
	bruno := e.codeIn("+33622222222")
	if bruno == alice {
		t.Fatal("two tickets share a code")
	}
	b := e.browser()
	resp, page := b.get("/c/" + bruno)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `lang="fr"`, "Votre intervention", "ventilateur", "visite réservée", "Déplacer ma visite", "Annuler ma visite")
	wantNotIn(t, page, "kitchen fridge", "compresseur")

	resp, page = b.get("/c/" + alice)
	wantIn(t, page, "kitchen fridge")
	wantNotIn(t, page, "ventilateur", "fan")

	resp, page = b.post("/c/"+alice, url.Values{"action": {"no"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketDeclined {
		t.Fatalf("ticket %s, want declined", tk.Status)
	}
	_, page = b.get("/c/" + alice)
	wantIn(t, page, "no visit planned", "Call me")
	wantNotIn(t, page, "Book this time")
	resp, page = b.post("/c/"+alice, url.Values{"action": {"call"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	if tk := e.ticket("fridge-1", "compressor"); tk.FollowUp == nil || tk.FollowUp.Reason != proactive.FollowUpAfterDecline {
		t.Errorf("follow-up %+v, want %s", tk.FollowUp, proactive.FollowUpAfterDecline)
	}
	// Bruno's page is untouched by Alice's actions.
	if tk := must(e.store.GetTicket(e.ctx, e.open)); tk.Status != proactive.TicketScheduled {
		t.Errorf("Bruno's ticket %s, want scheduled", tk.Status)
	}
	// A page of a closed ticket opens nothing.
	must(e.store.Transition(e.ctx, e.open, proactive.TicketVisited, "test", ""))
	must(e.store.CloseTicket(e.ctx, e.open, proactive.OutcomeFaultConfirmed, "", "test"))
	resp, page = b.get("/c/" + bruno)
	wantStatus(t, resp, page, http.StatusNotFound)
}

// TestCustomerPageRateLimit: one code answers 429 past its rate.
func TestCustomerPageRateLimit(t *testing.T) {
	e := customerEnv(t, testenv.SQLite(t))
	b := e.browser()
	var last int
	for range 40 {
		resp, _ := b.get("/c/AAAAAAAAAAAAAAAAAAAAAA")
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("the 40th request in a minute answered %d, want 429", last)
	}
}

// TestCustomerBrowser opens the link of the offer SMS in Chromium: books a
// time the SMS did not name, moves it, asks for a call; every page is axe
// clean at phone and desktop widths, the French one too.
func TestCustomerBrowser(t *testing.T) {
	e := customerEnv(t, testenv.SQLite(t))
	ctx := newBrowser(t)
	base := e.plainServer()
	link := linkRE.FindString(e.sms.to("+33611111111")[0])
	if link == "" {
		t.Fatalf("no link in the offer: %q", e.sms.to("+33611111111")[0])
	}
	code := linkRE.FindStringSubmatch(link)[1]
	offered := map[string]bool{}
	for _, s := range must(e.n.Conversation(e.ctx, e.offered)).Slots {
		offered[strconv.FormatInt(s.Start.Unix(), 10)] = true
	}
	pickOther := func(page string, not string) string {
		for _, s := range freeStarts(page) {
			if !offered[s] && s != not {
				return s
			}
		}
		t.Fatal("no time besides the offered ones")
		return ""
	}
	html := func() string {
		s, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bookedAt := func() string {
		for _, a := range must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered})) {
			if a.Status == "booked" {
				return strconv.FormatInt(a.Start.Unix(), 10)
			}
		}
		return ""
	}

	do(t, ctx, "open the link", chromedp.Navigate(base+"/c/"+code), chromedp.WaitVisible(chromedp.CSS("h1")))
	checkPage(t, ctx, "customer-offer")
	first := pickOther(html(), "")
	do(t, ctx, "choose a time", chromedp.Click(chromedp.CSS(`input[name=slot][value="`+first+`"]`)))
	submit(t, ctx, "book", "form.act-book button[type=submit]")
	if got := text(t, ctx, "main"); !strings.Contains(got, "your visit is booked") {
		t.Fatalf("after booking the page says:\n%s", got)
	}
	if got := bookedAt(); got != first {
		t.Fatalf("visit at %s, want %s", got, first)
	}
	checkPage(t, ctx, "customer-booked")

	second := pickOther(html(), first)
	do(t, ctx, "choose another time", chromedp.Click(chromedp.CSS(`input[name=slot][value="`+second+`"]`)))
	submit(t, ctx, "move", "form.act-book button[type=submit]")
	if got := bookedAt(); got != second {
		t.Fatalf("visit at %s after the move, want %s", got, second)
	}

	submit(t, ctx, "call me", "form.act-call button[type=submit]")
	if got := text(t, ctx, "main"); !strings.Contains(got, "we will call you shortly") {
		t.Fatalf("after asking for a call the page says:\n%s", got)
	}
	if tk := e.ticket("fridge-1", "compressor"); tk.FollowUp == nil || tk.FollowUp.Reason != proactive.FollowUpCall {
		t.Fatalf("follow-up %+v, want a call", tk.FollowUp)
	}

	do(t, ctx, "a forged code", chromedp.Navigate(base+"/c/AAAAAAAAAAAAAAAAAAAAAA"), chromedp.WaitVisible(chromedp.CSS("h1")))
	checkPage(t, ctx, "customer-404")

	// Bruno, French, booked by phone: his confirmation's link.
	must(e.store.RecordConsent(e.ctx, "bruno", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentSMS, Actor: "test"}))
	must(e.n.Book(e.ctx, e.open, must(e.n.Slots(e.ctx, e.open))[0], "dispatcher"))
	e.poll()
	do(t, ctx, "open the French link", chromedp.Navigate(base+"/c/"+e.codeIn("+33622222222")), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := text(t, ctx, "h1"); !strings.Contains(got, "Votre intervention") {
		t.Errorf("French page's heading %q", got)
	}
	checkPage(t, ctx, "customer-fr")
}
