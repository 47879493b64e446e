package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api/client"
)

// EachTicket follows the cursor to the last page with the token; Ticket
// reads the timeline that FiredAt takes the alert's time from.
func TestClientTickets(t *testing.T) {
	fired := time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tickets", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Query().Get("cursor") {
		case "":
			fmt.Fprint(w, `{"items": [{"id": 2, "device_id": "fridge-2", "rule": "hot"}], "next": "c1"}`)
		case "c1":
			fmt.Fprint(w, `{"items": [{"id": 1, "device_id": "fridge-1", "rule": "hot"}]}`)
		}
	})
	mux.HandleFunc("GET /api/v1/tickets/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 2, "opened_at": fired.Add(time.Hour),
			"timeline": []map[string]any{{"kind": "comment", "body": map[string]any{}}, {"kind": "alert", "body": map[string]any{"fired_at": fired}}}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var ids []int64
	err := client.New(srv.URL+"/", client.Options{Token: "tok"}).EachTicket(t.Context(), func(tk proactive.Ticket) error {
		ids = append(ids, tk.ID)
		return nil
	})
	if err != nil || fmt.Sprint(ids) != "[2 1]" {
		t.Fatalf("tickets %v, %v; want [2 1]", ids, err)
	}
	tk, err := client.New(srv.URL, client.Options{Token: "tok"}).Ticket(t.Context(), 2)
	if err != nil || !client.FiredAt(tk).Equal(fired) {
		t.Errorf("fired at %v, %v; want %v", client.FiredAt(tk), err, fired)
	}
	if client.FiredAt(proactive.Ticket{OpenedAt: fired}) != fired {
		t.Error("without an alert event, FiredAt is not the opening time")
	}
	if _, err := client.New(srv.URL, client.Options{Token: "bad"}).Tickets(t.Context(), "", 10); err == nil {
		t.Error("no error for a 401")
	}
}

// SendInboundSMS posts the form with the signature over the URL and form.
func TestClientSendInboundSMS(t *testing.T) {
	var got url.Values
	var sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.URL.Path != "/webhooks/twilio/sms" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got, sig = r.PostForm, r.Header.Get("X-Twilio-Signature")
	}))
	defer srv.Close()
	m := client.InboundSMS{MessageSID: "SM1", From: "+4915550000001", To: "+15005550006", Body: "1"}
	err := client.New(srv.URL, client.Options{}).SendInboundSMS(t.Context(), "/webhooks/twilio/sms", m,
		func(target string, form url.Values) string { return target + "|" + form.Get("Body") })
	if err != nil || got.Get("From") != m.From || got.Get("MessageSid") != "SM1" || sig != srv.URL+"/webhooks/twilio/sms|1" {
		t.Errorf("posted %v signed %q: %v", got, sig, err)
	}
	if err := client.New(srv.URL, client.Options{}).SendInboundSMS(t.Context(), "/other", m, func(string, url.Values) string { return "" }); err == nil {
		t.Error("no error for a 400")
	}
}

// Probe returns the body of a 200 and names the status of anything else.
func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	if body, err := client.Probe(t.Context(), srv.URL+"/healthz"); err != nil || string(body) != `{"status":"ok"}` {
		t.Errorf("200: %q, %v", body, err)
	}
	status = http.StatusServiceUnavailable
	if _, err := client.Probe(t.Context(), srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
}

// Approve and Dismiss post to the ticket's routes with the token; Dismiss
// sends its note; an error answer is an error naming the route.
func TestClientApproveDismiss(t *testing.T) {
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/tickets/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Note string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		got = append(got, r.PathValue("id")+" "+r.PathValue("action")+" "+body.Note+" "+r.Header.Get("Authorization"))
		if r.PathValue("id") == "9" {
			http.Error(w, `{"error":{"code":"conflict"}}`, http.StatusConflict)
			return
		}
		status := map[string]string{"approve": "offered", "dismiss": "closed"}[r.PathValue("action")]
		fmt.Fprintf(w, `{"id": %s, "status": %q}`, r.PathValue("id"), status)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := client.New(srv.URL, client.Options{Token: "tok"})
	if tk, err := c.Approve(t.Context(), 3); err != nil || tk.ID != 3 || tk.Status != proactive.TicketOffered {
		t.Errorf("approve: %+v, %v", tk, err)
	}
	if tk, err := c.Dismiss(t.Context(), 4, "cleaning crew"); err != nil || tk.Status != proactive.TicketClosed {
		t.Errorf("dismiss: %+v, %v", tk, err)
	}
	if _, err := c.Approve(t.Context(), 9); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "/tickets/9/approve") {
		t.Errorf("conflict: %v", err)
	}
	if want := "[3 approve  Bearer tok 4 dismiss cleaning crew Bearer tok 9 approve  Bearer tok]"; fmt.Sprint(got) != want {
		t.Errorf("requests %q, want %q", got, want)
	}
}
