package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

const hookSecret = "a-secret-of-20-chars"

// Admins register, disable and delete webhooks and read their delivery
// log; dispatchers see neither the page nor its link; a bad registration
// shows its problems and keeps what was typed, never the secret.
func TestWebhooksPage(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	d := e.signedIn("dispatcher")
	resp, page := d.get("/webhooks")
	wantStatus(t, resp, page, http.StatusForbidden)
	_, page = d.get("/")
	wantNotIn(t, page, `href="/webhooks"`)

	a := e.signedIn("admin")
	resp, page = a.get("/webhooks")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `href="/webhooks" aria-current="page"`, "No webhooks registered.", `value="customer.opted_out"`)

	resp, page = a.post("/webhooks", url.Values{"url": {"ftp://crm.example"}, "events": {"ticket.closed"}, "secret": {"short"}})
	wantStatus(t, resp, page, http.StatusBadRequest)
	wantIn(t, page, "was not registered", `value="ftp://crm.example"`, "http:// or https://", "16 to 256", `value="ticket.closed" checked`)
	wantNotIn(t, page, `value="short"`)

	resp, page = a.post("/webhooks", url.Values{"url": {"http://127.0.0.1:9/crm"}, "events": {"ticket.cancelled", "ticket.closed"},
		"secret": {hookSecret}, "format": {"slack"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	_, page = a.get("/webhooks")
	wantIn(t, page, "Webhook 1 registered", "1: http://127.0.0.1:9/crm", "ticket.cancelled, ticket.closed", "slack", "Enabled")
	wantNotIn(t, page, hookSecret)

	must(e.store.Transition(e.ctx, e.open, proactive.TicketCancelled, "test", "duplicate"))
	resp, page = a.get("/webhooks/1")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "evt_", "ticket.cancelled", "Pending")

	resp, page = a.post("/webhooks/1/enable", url.Values{"enabled": {"false"}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	_, page = a.get("/webhooks")
	wantIn(t, page, "Webhook 1 disabled", "Disabled", ">Enable<")
	if w := must(e.store.Webhook(e.ctx, 1)); w.Enabled {
		t.Error("still enabled")
	}
	resp, page = d.post("/webhooks/1/delete", url.Values{})
	wantStatus(t, resp, page, http.StatusForbidden)
	resp, page = a.post("/webhooks/1/delete", url.Values{})
	wantStatus(t, resp, page, http.StatusSeeOther)
	_, page = a.get("/webhooks")
	wantIn(t, page, "Webhook 1 deleted.", "No webhooks registered.")
	resp, page = a.get("/webhooks/1")
	wantStatus(t, resp, page, http.StatusNotFound)
	resp, page = a.post("/webhooks/1/delete", url.Values{"csrf": {"forged"}})
	wantStatus(t, resp, page, http.StatusForbidden)
}

// The webhooks page and a delivery log in a browser: registering with the
// keyboard's form, and no accessibility violation at either width.
func TestBrowserWebhooks(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	ctx := newBrowser(t)
	base := e.plainServer()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/webhooks"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.tok["admin"]),
	)
	submit(t, ctx, "sign in", "main form button[type=submit]")
	do(t, ctx, "webhooks", chromedp.WaitVisible(chromedp.CSS("#w-url")))
	checkPage(t, ctx, "webhooks-empty")
	do(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.CSS("#w-url"), "http://127.0.0.1:9/crm"),
		chromedp.Click(chromedp.CSS(`input[value="ticket.cancelled"]`)),
		// Every other event too: the long list narrows the State column,
		// where a badge must not break (checkPage).
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('input[name="events"]').forEach(c => c.checked = true)`),
		chromedp.SendKeys(chromedp.CSS("#w-secret"), hookSecret),
	)
	submit(t, ctx, "register", `form[action="/webhooks"] button[type=submit]`)
	do(t, ctx, "listed", chromedp.WaitVisible(chromedp.CSS("table.stack")))
	if flash := text(t, ctx, ".flash"); !strings.Contains(flash, "registered") {
		t.Errorf("flash %q", flash)
	}
	checkPage(t, ctx, "webhooks")
	must(e.store.Transition(e.ctx, e.open, proactive.TicketCancelled, "test", "duplicate"))
	do(t, ctx, "log", chromedp.Navigate(fmt.Sprintf("%s/webhooks/%d", base, 1)), chromedp.WaitVisible(chromedp.CSS("table.stack")))
	if s := text(t, ctx, "table.stack"); !strings.Contains(s, "ticket.cancelled") {
		t.Errorf("log shows:\n%s", s)
	}
	checkPage(t, ctx, "webhook-log")
}

// A dead delivery has a Retry button in the log; it queues the delivery
// again with a flash. A second press (no longer dead) says so; only admins
// may, with the form's CSRF token; another webhook's delivery is a 404.
func TestWebhookRetryButton(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	hook := must(e.store.CreateWebhook(e.ctx, proactive.Webhook{URL: "http://127.0.0.1:9/crm",
		Events: []proactive.EventType{proactive.EventTicketCancelled}}, hookSecret))
	other := must(e.store.CreateWebhook(e.ctx, proactive.Webhook{URL: "http://127.0.0.1:9/erp",
		Events: []proactive.EventType{proactive.EventTicketClosed}}, hookSecret))
	must(e.store.Transition(e.ctx, e.open, proactive.TicketCancelled, "test", "duplicate"))
	d := must(e.store.WebhookDeliveries(e.ctx, hook.ID, devices.ListOptions{})).Items[0]
	now := e.clock.Now()
	if ok, err := e.store.WebhookClaim(e.ctx, d.ID, now, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := e.store.WebhookResult(e.ctx, d.ID, devices.DeliveryResult{State: devices.DeliveryDead, Status: http.StatusGone, At: now}); err != nil {
		t.Fatal(err)
	}

	a := e.signedIn("admin")
	logPage := fmt.Sprintf("/webhooks/%d", hook.ID)
	retry := fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", hook.ID, d.ID)
	resp, page := a.get(logPage)
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "Dead", `action="`+retry+`"`, ">Retry<")

	disp := e.signedIn("dispatcher")
	resp, page = disp.post(retry, url.Values{})
	wantStatus(t, resp, page, http.StatusForbidden)
	resp, page = a.post(retry, url.Values{"csrf": {"forged"}})
	wantStatus(t, resp, page, http.StatusForbidden)
	resp, page = a.post(fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", other.ID, d.ID), url.Values{})
	wantStatus(t, resp, page, http.StatusNotFound)
	if got := must(e.store.WebhookDeliveries(e.ctx, hook.ID, devices.ListOptions{})).Items[0]; got.State != devices.DeliveryDead {
		t.Fatalf("refused retries changed the delivery: %+v", got)
	}

	resp, page = a.post(retry, url.Values{})
	wantStatus(t, resp, page, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != logPage {
		t.Errorf("back to %q, want %q", loc, logPage)
	}
	_, page = a.get(logPage)
	wantIn(t, page, "Delivery of "+d.EventID+" (ticket.cancelled) queued again", "Pending")
	wantNotIn(t, page, `action="`+retry+`"`)
	if got := must(e.store.WebhookDeliveries(e.ctx, hook.ID, devices.ListOptions{})).Items[0]; got.State != devices.DeliveryPending ||
		got.Attempts != 0 || got.EventID != d.EventID {
		t.Fatalf("after the retry: %+v", got)
	}

	resp, page = a.post(retry, url.Values{})
	wantStatus(t, resp, page, http.StatusSeeOther)
	_, page = a.get(logPage)
	wantIn(t, page, "is pending, not dead")
}
