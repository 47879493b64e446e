package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api/client"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// twilioAPI is a fake Twilio Messages API: it takes every message and
// remembers to whom and what.
type twilioAPI struct {
	*httptest.Server
	mu   sync.Mutex
	sent []string // "to: body"
}

func newTwilioAPI(t *testing.T) *twilioAPI {
	f := &twilioAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Messages.json") || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		f.sent = append(f.sent, r.PostForm.Get("To")+": "+r.PostForm.Get("Body"))
		sid := fmt.Sprintf("SM%032d", len(f.sent))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"sid": sid, "to": r.PostForm.Get("To"), "status": "queued"})
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *twilioAPI) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

// TestServeContactReview runs a `contact: review` rule through the real
// binary with a fake Twilio API: the alert opens a ticket in review and
// texts nobody, across a restart; a dispatcher's approval through the API
// sends exactly one offer.
func TestServeContactReview(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rule := "rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n    contact: review\n    when: compressor_current > 10\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	tw := newTwilioAPI(t)
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_TWILIO_ACCOUNT_SID"] = "AC0123456789"
	env["PROACTIVE_TWILIO_AUTH_TOKEN"] = "0123456789abcdef0123456789abcdef" // twilio-go checks its form
	env["PROACTIVE_TWILIO_FROM"] = "+15005550006"
	env["PROACTIVE_TWILIO_API_URL"] = tw.URL
	env["PROACTIVE_PUBLIC_URL"] = "http://" + env["PROACTIVE_HTTP_ADDR"] // required with Twilio

	ctx := t.Context()
	store, err := devices.Open(ctx, env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const phone = "+4915550000001"
	seedOutreach(t, store, phone)
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(ctx, "e2e", devices.Role("dispatcher"), "")
	if err != nil {
		t.Fatal(err)
	}
	api := client.New("http://"+env["PROACTIVE_HTTP_ADDR"], client.Options{Token: token})

	p := startChild(t, env)
	p.waitReady(t)
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-1", false)
	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"compressor_current": 12.5}}`)
	var review proactive.Ticket
	testenv.Eventually(t, 0, func() error {
		page, err := api.Tickets(ctx, "", 10)
		if err != nil {
			return err
		}
		if len(page.Items) != 1 || page.Items[0].Status != proactive.TicketReview {
			return fmt.Errorf("tickets %+v, want one in review", page.Items)
		}
		review = page.Items[0]
		return nil
	})
	if review.HeldReason != "review" {
		t.Errorf("held_reason %q, want review", review.HeldReason)
	}
	if got := metric(t, p.http, `proactive_alerts_held_total{reason="review"}`); got != 1 {
		t.Errorf("alerts held for review: %v, want 1", got)
	}
	if got := metric(t, p.http, `proactive_build_info{goversion="`+runtime.Version()+`",version="`+version+`"}`); got != 1 {
		t.Errorf("proactive_build_info %v, want 1", got)
	}

	// A restart keeps the ticket in review, and still nobody is texted.
	p.terminate(t)
	p = startChild(t, env)
	p.waitReady(t)
	if tk, err := api.Ticket(ctx, review.ID); err != nil || tk.Status != proactive.TicketReview {
		t.Fatalf("after the restart: %s, %v; want review", tk.Status, err)
	}
	if got := tw.messages(); len(got) != 0 {
		t.Fatalf("texted before any approval: %q", got)
	}

	approved, err := api.Approve(ctx, review.ID)
	if err != nil || approved.Status != proactive.TicketOffered {
		t.Fatalf("approve: %s, %v; want offered", approved.Status, err)
	}
	testenv.Eventually(t, 0, func() error {
		if got := metric(t, p.http, `proactive_notify_attempts_total{result="sent"}`); got != 1 {
			msgs, err := store.OutboundMessages(ctx, review.ID, "")
			return fmt.Errorf("%v messages sent, want 1; the ticket's: %+v, %v", got, msgs, err)
		}
		return nil
	})
	if _, err := api.Approve(ctx, review.ID); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("second approval: %v, want a 409", err)
	}
	if got := tw.messages(); len(got) != 1 || !strings.HasPrefix(got[0], phone+": ") {
		t.Errorf("Twilio got %q, want exactly one offer to %s", got, phone)
	}
	if pending := metric(t, p.http, `proactive_notify_outbox_messages{state="pending"}`); pending != 0 {
		t.Errorf("%v messages still pending, want none", pending)
	}
	p.terminate(t)
}

// TestServeContactNoneAndTrust runs the other two paths through the real
// binary with a fake Twilio API: a `contact: none` rule opens a ticket for
// the field team and never texts; an `auto` rule whose tickets are
// dismissed as false alarms loses its precision and is held to review, so
// its next alert texts nobody.
func TestServeContactNoneAndTrust(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rule := "rules:\n" +
		"  - name: link_lost\n    component: connectivity\n    severity: info\n    contact: none\n    when: signal_dbm < -100\n" +
		"  - name: door_hot\n    component: door\n    severity: warning\n    when: door_temp > 30\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	tw := newTwilioAPI(t)
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_TWILIO_ACCOUNT_SID"] = "AC0123456789"
	env["PROACTIVE_TWILIO_AUTH_TOKEN"] = "0123456789abcdef0123456789abcdef"
	env["PROACTIVE_TWILIO_FROM"] = "+15005550006"
	env["PROACTIVE_TWILIO_API_URL"] = tw.URL
	env["PROACTIVE_PUBLIC_URL"] = "https://proactive.example"
	env["PROACTIVE_NOTIFY_MIN_OUTCOMES"] = "2"

	ctx := t.Context()
	store, err := devices.Open(ctx, env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const phone = "+4915550000001"
	seedOutreach(t, store, phone)                                     // fridge-1, its customer texted
	for _, id := range []proactive.DeviceID{"fridge-2", "fridge-3"} { // no customer: held, then dismissed
		if _, err := store.CreateDevice(ctx, proactive.Device{ID: id, Model: "fridge-a1", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
	}
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(ctx, "e2e", devices.Role("dispatcher"), "")
	if err != nil {
		t.Fatal(err)
	}
	api := client.New("http://"+env["PROACTIVE_HTTP_ADDR"], client.Options{Token: token})
	p := startChild(t, env)
	p.waitReady(t)
	broker := "tcp://" + env["PROACTIVE_MQTT_LISTEN"]
	ticketOf := func(dev proactive.DeviceID, component string, status proactive.TicketStatus) proactive.Ticket {
		t.Helper()
		var found proactive.Ticket
		testenv.Eventually(t, 0, func() error {
			page, err := api.Tickets(ctx, "", 50)
			if err != nil {
				return err
			}
			for _, tk := range page.Items {
				if tk.Device == dev && tk.Component == component && tk.Status == status {
					found = tk
					return nil
				}
			}
			return fmt.Errorf("no %s ticket of %s/%s among %+v", status, dev, component, page.Items)
		})
		return found
	}

	// contact: none — a ticket for the field team, open, and no text.
	c1 := device(t, broker, "fridge-1", false)
	publish(t, c1, "devices/fridge-1/telemetry", `{"metrics": {"signal_dbm": -120}}`)
	if tk := ticketOf("fridge-1", "connectivity", proactive.TicketOpen); tk.HeldReason != "contact_none" {
		t.Errorf("link_lost ticket held_reason %q, want contact_none", tk.HeldReason)
	}

	// Two door_hot tickets without a customer wait in review; dismissed,
	// they are the rule's two outcomes, both false alarms.
	for _, id := range []proactive.DeviceID{"fridge-2", "fridge-3"} {
		c := device(t, broker, string(id), false)
		publish(t, c, "devices/"+string(id)+"/telemetry", `{"metrics": {"door_temp": 35}}`)
		tk := ticketOf(id, "door", proactive.TicketReview)
		if _, err := api.Dismiss(ctx, tk.ID, "door sensor in the sun"); err != nil {
			t.Fatalf("dismiss %d: %v", tk.ID, err)
		}
	}
	var rulesList struct {
		Items []struct {
			Name      string   `json:"name"`
			Precision *float64 `json:"precision"`
			Outcomes  int      `json:"outcomes"`
			Held      bool     `json:"held"`
		} `json:"items"`
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+env["PROACTIVE_HTTP_ADDR"]+"/api/v1/rules", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&rulesList)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, r := range rulesList.Items {
		if r.Name == "door_hot" {
			held = r.Held && r.Outcomes == 2 && r.Precision != nil && *r.Precision == 0
		}
	}
	if !held {
		t.Fatalf("GET /rules %+v, want door_hot held with precision 0 of 2 outcomes", rulesList.Items)
	}

	// Held: fridge-1's customer could be texted, but the untrusted rule's
	// ticket waits in review.
	publish(t, c1, "devices/fridge-1/telemetry", `{"metrics": {"door_temp": 36}}`)
	if tk := ticketOf("fridge-1", "door", proactive.TicketReview); tk.HeldReason != "untrusted_rule" {
		t.Errorf("held_reason %q, want untrusted_rule", tk.HeldReason)
	}
	if got := metric(t, p.http, `proactive_alerts_held_total{reason="untrusted_rule"}`); got != 1 {
		t.Errorf("alerts held as untrusted: %v, want 1", got)
	}
	if got := tw.messages(); len(got) != 0 {
		t.Errorf("Twilio got %q, want nothing: contact none and an untrusted rule text nobody", got)
	}
	if tk := ticketOf("fridge-1", "connectivity", proactive.TicketOpen); tk.Status != proactive.TicketOpen {
		t.Errorf("the link_lost ticket is %s, want it open for the field team", tk.Status)
	}
	p.terminate(t)
}
