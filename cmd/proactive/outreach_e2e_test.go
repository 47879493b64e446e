package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestServeOutreachLoop runs the whole chain through the real binary:
// telemetry over MQTT → rule fires → ticket → offer SMS (console sender) →
// a signed reply from `proactive sms reply` books a slot → confirmation SMS,
// and the ticket, scheduled, is visible through the API with a token.
func TestServeOutreachLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n    when: compressor_current > 10\n    summary: \"Compressor current {{ .Metrics.compressor_current }} A\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_PUBLIC_URL"] = "http://" + env["PROACTIVE_HTTP_ADDR"]
	env["PROACTIVE_TWILIO_AUTH_TOKEN"] = "e2e-auth-token"

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

	// A webhook: serve's dispatcher posts the ticket's events to it.
	var hookMu sync.Mutex
	var hooked []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hooked = append(hooked, r.Header.Get("X-Proactive-Event"))
	}))
	defer receiver.Close()
	if _, err := store.CreateWebhook(ctx, proactive.Webhook{URL: receiver.URL, Events: []proactive.EventType{proactive.EventTicketOpened,
		proactive.EventTicketOffered, proactive.EventTicketScheduled}}, "e2e-webhook-secret"); err != nil {
		t.Fatal(err)
	}

	p := startChild(t, env)
	p.waitReady(t)
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-1", false)
	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"compressor_current": 12.5}}`)
	waitLogWithin(t, p, "── SMS to "+phone+" (offer", 20*time.Second)

	// An unsigned reply is refused; a signed one books the first slot.
	resp, err := http.PostForm(env["PROACTIVE_PUBLIC_URL"]+"/webhooks/twilio/sms", url.Values{"From": {phone}, "Body": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned webhook: %s, want 403", resp.Status)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"proactive", "sms", "reply", "--from", phone, "1"}, envMap(env), &out, &errOut); err != nil {
		t.Fatalf("sms reply: %v\n%s", err, errOut.String())
	}
	waitLogWithin(t, p, "── SMS to "+phone+" (confirm", 20*time.Second)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/api/v1/tickets?device_id=fridge-1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct {
			Status     string `json:"status"`
			Rule       string `json:"rule"`
			Technician string `json:"technician_id"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tickets: %s, %v", resp.Status, err)
	}
	if len(page.Items) != 1 || page.Items[0].Status != "scheduled" || page.Items[0].Rule != "compressor_hot" {
		t.Errorf("tickets %+v, want one scheduled compressor_hot ticket", page.Items)
	}
	// The web page is served at / beside the API: signed out, it asks for a token.
	signin, err := http.Get("http://" + p.http + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(signin.Body)
	signin.Body.Close()
	if signin.StatusCode != http.StatusOK || !strings.Contains(string(html), "token") {
		t.Errorf("GET / (following redirects): %s\n%.500s", signin.Status, html)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		hookMu.Lock()
		defer hookMu.Unlock()
		if want := []string{"ticket.opened", "ticket.offered", "ticket.scheduled"}; !slices.Equal(hooked, want) {
			return fmt.Errorf("webhook got %v, want %v", hooked, want)
		}
		return nil
	})
	if strings.Contains(p.logs.String(), "e2e-auth-token") || strings.Contains(p.logs.String(), token) {
		t.Error("a secret appears in the logs")
	}
	p.terminate(t)
	if testing.Verbose() {
		t.Log(p.logs.String())
	}
}

// waitLogWithin waits for text in the platform's output.
func waitLogWithin(t *testing.T, p *platform, text string, d time.Duration) {
	t.Helper()
	testenv.Eventually(t, d, func() error {
		if logs := p.logs.String(); !strings.Contains(logs, text) {
			return fmt.Errorf("output does not say %q:\n%s", text, tail(logs, 4000))
		}
		return nil
	})
}

// seedOutreach registers, in store, a customer with phone who consented
// and has no quiet hours (so a test does not depend on the hour it runs), a
// fridge-1 of theirs, and a technician who repairs compressors anywhere at
// any hour: an alert on fridge-1's compressor then opens a ticket and texts
// an offer.
func seedOutreach(t *testing.T, store *devices.Store, phone string) {
	t.Helper()
	ctx := t.Context()
	noQuiet := proactive.QuietHours{}
	if _, err := store.CreateCustomer(ctx, proactive.Customer{ID: "c1", Name: "Ann", Phone: phone, QuietHours: &noQuiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordConsent(ctx, "c1", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateDevice(ctx, proactive.Device{ID: "fridge-1", Model: "fridge-a1", CustomerID: "c1", TimeZone: "UTC",
		Site: proactive.Address{PostalCode: "10115", Country: "DE"}}); err != nil {
		t.Fatal(err)
	}
	hours, err := devices.ParseWeeklyHours("mon-sun 00:00-23:59")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateTechnician(ctx, proactive.Technician{ID: "tess", Name: "Tess", Phone: "+4915550999001", TimeZone: "UTC",
		Skills: []string{"compressor"}, ServiceArea: []string{"*"}, Hours: hours}); err != nil {
		t.Fatal(err)
	}
}
