package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// A receiver that refuses an event (410: dead at once) gets it again, with
// the same event id, once an admin retries it over the API; a delivered
// delivery is a 409, another webhook's a 404.
func TestWebhookRetryDelivery(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		var mu sync.Mutex
		answer, ids := http.StatusGone, []string{}
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, r.Header.Get(notify.HeaderEventID))
			w.WriteHeader(answer)
		}))
		t.Cleanup(rc.Close)
		hook := must(f.store.CreateWebhook(t.Context(), proactive.Webhook{URL: rc.URL, Events: []proactive.EventType{proactive.EventCustomerOptedOut}}, hookSecret))
		other := f.webhook(t, proactive.EventTicketClosed)
		must(f.store.CreateCustomer(t.Context(), proactive.Customer{ID: "c-retry", Name: "Rita", Phone: "+33699887766", Language: "en"}))
		for _, granted := range []bool{true, false} {
			must(f.store.RecordConsent(t.Context(), "c-retry", proactive.ConsentEvent{Granted: granted, Method: proactive.ConsentAPI, Actor: "test"}))
		}
		dp := notify.NewDispatcher(f.store, notify.DispatcherOptions{})
		deliver := func() {
			t.Helper()
			if _, err := dp.Deliver(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		deliver()
		log := func() devices.Delivery {
			t.Helper()
			r := f.as(t, admin, "GET", fmt.Sprintf("/webhooks/%d/deliveries", hook.ID), "")
			want(t, r, http.StatusOK)
			var page struct{ Items []devices.Delivery }
			if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 1 {
				t.Fatalf("log %s: %v", r.body, err)
			}
			return page.Items[0]
		}
		dead := log()
		if dead.State != devices.DeliveryDead || dead.LastStatus != http.StatusGone {
			t.Fatalf("after a 410: %+v", dead)
		}

		mu.Lock()
		answer = http.StatusOK
		mu.Unlock()
		retry := fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", hook.ID, dead.ID)
		r := f.as(t, admin, "POST", retry, "")
		want(t, r, http.StatusOK)
		var d devices.Delivery
		if err := json.Unmarshal(r.body, &d); err != nil || d.State != devices.DeliveryPending || d.Attempts != 0 ||
			d.EventID != dead.EventID || d.NextAttempt.IsZero() {
			t.Fatalf("retry answered %s (%v)", r.body, err)
		}
		deliver()
		if d := log(); d.State != devices.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != http.StatusOK {
			t.Fatalf("after the retry: %+v", d)
		}
		mu.Lock()
		got := ids
		mu.Unlock()
		if len(got) != 2 || got[0] != dead.EventID || got[1] != dead.EventID {
			t.Errorf("the receiver got event ids %v, want %s twice", got, dead.EventID)
		}

		r = f.as(t, admin, "POST", retry, "")
		want(t, r, http.StatusConflict)
		hasFields("conflict")(t, f, r)
		r = f.as(t, admin, "POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", other.ID, dead.ID), "")
		want(t, r, http.StatusNotFound)
		hasFields("not_found")(t, f, r)
		want(t, f.as(t, admin, "POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", hook.ID, dead.ID+1000), ""), http.StatusNotFound)
		want(t, f.as(t, admin, "POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", hook.ID+1000, dead.ID), ""), http.StatusNotFound)
	})
}

// Once retention has pruned a delivery, the API's log no longer lists it
// and it cannot be retried.
func TestWebhookLogAfterRetention(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
		t.Cleanup(rc.Close)
		hook := must(f.store.CreateWebhook(t.Context(), proactive.Webhook{URL: rc.URL, Events: []proactive.EventType{proactive.EventCustomerOptedOut}}, hookSecret))
		must(f.store.CreateCustomer(t.Context(), proactive.Customer{ID: "c-old", Name: "Olga", Phone: "+33699887711", Language: "en"}))
		for _, granted := range []bool{true, false} {
			must(f.store.RecordConsent(t.Context(), "c-old", proactive.ConsentEvent{Granted: granted, Method: proactive.ConsentAPI, Actor: "test"}))
		}
		if _, err := notify.NewDispatcher(f.store, notify.DispatcherOptions{}).Deliver(t.Context()); err != nil {
			t.Fatal(err)
		}
		logged := func() []devices.Delivery {
			t.Helper()
			r := f.as(t, admin, "GET", fmt.Sprintf("/webhooks/%d/deliveries", hook.ID), "")
			want(t, r, http.StatusOK)
			var page struct{ Items []devices.Delivery }
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatalf("log %s: %v", r.body, err)
			}
			return page.Items
		}
		l := logged()
		if len(l) != 1 || l[0].State != devices.DeliveryDead {
			t.Fatalf("log before pruning: %+v", l)
		}
		// A dispatcher a month and a day later, keeping 30 days.
		later := func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
		n, err := notify.NewDispatcher(f.store, notify.DispatcherOptions{Retention: 30 * 24 * time.Hour, Now: later}).Prune(t.Context())
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want 1", n, err)
		}
		if l := logged(); len(l) != 0 {
			t.Errorf("log after pruning: %+v", l)
		}
		want(t, f.as(t, admin, "POST", fmt.Sprintf("/webhooks/%d/deliveries/%d/retry", hook.ID, l[0].ID), ""), http.StatusNotFound)
	})
}
