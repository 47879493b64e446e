package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestScaleOutTwoInstancesOnePostgres runs two `proactive serve` processes
// on one PostgreSQL schema and one Mosquitto, each subscribed under its own
// client id, so that both receive every reading (the worst case of
// docs/scaling.md). A burst of readings fires the rule on both instances,
// many times: exactly one ticket opens, with one alert event, and exactly
// one offer SMS is sent across both instances.
func TestScaleOutTwoInstancesOnePostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	broker := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n    when: compressor_current > 10\n    summary: \"Compressor current {{ .Metrics.compressor_current }} A\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const phone = "+4915550000002"
	seedOutreach(t, store, phone)

	prefix, _ := uniqueSession(t, broker)
	var ps []*platform
	for range 2 {
		_, clientID := uniqueSession(t, broker) // one session per instance: each gets every message
		env := baseEnv(t, influx)
		env["PROACTIVE_DB"] = dsn
		env["PROACTIVE_MQTT_URL"] = broker
		env["PROACTIVE_MQTT_TOPIC_PREFIX"] = prefix
		env["PROACTIVE_MQTT_CLIENT_ID"] = clientID
		env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
		ps = append(ps, startChild(t, env))
	}
	for _, p := range ps {
		p.waitReady(t)
	}

	c := device(t, broker, prefix+"-fridge-1", false)
	topic := prefix + "/fridge-1/telemetry"
	base := time.Now().Add(-time.Minute)
	for i := range 30 {
		ts := base.Add(time.Duration(i) * time.Second)
		publish(t, c, topic, fmt.Sprintf(`{"ts": %d, "metrics": {"compressor_current": %g}}`, ts.UnixMilli(), 11+float64(i)/10))
	}

	// Both instances see the rule fire.
	fired := `proactive_rules_alert_transitions_total{rule="compressor_hot",state="firing"}`
	for _, p := range ps {
		testenv.Eventually(t, 0, func() error {
			if !hasMetric(p.http, fired) {
				return fmt.Errorf("instance %s has not fired the rule:\n%s", p.http, tail(p.logs.String(), 4000))
			}
			return nil
		})
	}
	offer := "── SMS to " + phone + " (offer"
	testenv.Eventually(t, 0, func() error {
		if countIn(ps, offer) == 0 {
			return errors.New("no offer SMS yet")
		}
		return nil
	})
	// Rather than waiting for a duplicate to show, wait until none can come:
	// a reading resolves the alert, which an engine takes only after its
	// notifier has handled the firing one (a device's samples and alerts go
	// through one engine worker in order), and then the outbox settles.
	publish(t, c, topic, fmt.Sprintf(`{"ts": %d, "metrics": {"compressor_current": 5}}`, base.Add(30*time.Second).UnixMilli()))
	resolved := `proactive_rules_alert_transitions_total{rule="compressor_hot",state="resolved"}`
	for _, p := range ps {
		testenv.Eventually(t, 0, func() error {
			if !hasMetric(p.http, resolved) {
				return fmt.Errorf("instance %s has not resolved the alert:\n%s", p.http, tail(p.logs.String(), 4000))
			}
			return nil
		})
	}
	testenv.Eventually(t, 0, func() error {
		for _, state := range []string{"pending", "sending", "unknown"} {
			if n := metric(t, ps[0].http, `proactive_notify_outbox_messages{state="`+state+`"}`); n != 0 {
				return fmt.Errorf("%v outbox messages %s", n, state)
			}
		}
		return nil
	})
	if n := countIn(ps, offer); n != 1 {
		t.Errorf("%d offer SMS across both instances, want 1:\nA:\n%s\nB:\n%s", n,
			tail(ps[0].logs.String(), 3000), tail(ps[1].logs.String(), 3000))
	}
	page, err := store.ListTickets(ctx, devices.TicketFilter{Device: "fridge-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Status != proactive.TicketOffered {
		t.Fatalf("tickets %+v, want one offered ticket", page.Items)
	}
	tk, err := store.GetTicket(ctx, page.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, ev := range tk.Timeline {
		if ev.Kind == proactive.TicketEventAlert {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d alert events on the ticket, want 1", alerts)
	}
	msgs, err := store.OutboundMessages(ctx, tk.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	rows, sent := len(msgs), 0
	for _, m := range msgs {
		if m.Status == "sent" {
			sent++
		}
	}
	if rows != 1 || sent != 1 {
		t.Errorf("outbox has %d rows for the ticket, %d sent; want 1 sent offer", rows, sent)
	}
	for _, p := range ps {
		p.terminate(t)
	}
}

// hasMetric reports whether /metrics at addr has a sample of series above 0.
func hasMetric(addr, series string) bool {
	code, body := get(addr, "/metrics")
	if code != 200 {
		return false
	}
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest != "0"
		}
	}
	return false
}

// countIn counts text in the output of the platforms.
func countIn(ps []*platform, text string) int {
	n := 0
	for _, p := range ps {
		n += strings.Count(p.logs.String(), text)
	}
	return n
}
