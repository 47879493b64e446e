package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// Our own outage is no device's silence, through the real binary: 20
// devices publish every half second to a Mosquitto of the test's own, a
// 21st stops before the broker does; the broker is down for longer than the
// silence rule's threshold and comes back on its port. The 20 never fire
// and have no ticket (so nobody is texted); the 21st, silent since before
// the outage, fires once the threshold has passed after intake resumed.
func TestServeBrokerOutageIsNoSilence(t *testing.T) {
	t.Parallel()
	mq := testenv.RestartableMosquitto(t, "listener {{port}} 127.0.0.1\nallow_anonymous true\npersistence false")
	broker := "tcp://127.0.0.1:" + strconv.Itoa(mq.Port)
	dir := t.TempDir()
	const silence = 8 * time.Second
	rule := "rules:\n  - name: silent\n    component: connectivity\n    severity: info\n" +
		"    when: since_seen() > duration(\"8s\")\n    summary: \"{{ .Device.ID }} has sent nothing\"\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.InfluxWith(t, testenv.InfluxOptions{DisableFlux: true})
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_URL"] = broker
	env["PROACTIVE_MQTT_CLIENT_ID"] = "proactive-outage-test"
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_RULES_TICK_INTERVAL"] = "1s"

	ctx := t.Context()
	store, err := devices.Open(ctx, env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	noQuiet := proactive.QuietHours{}
	var ids []string
	for i := range 21 {
		id := fmt.Sprintf("fridge-%02d", i)
		ids = append(ids, id)
		c := proactive.Customer{ID: "c-" + id, Name: "Customer " + id, Phone: fmt.Sprintf("+4915550001%03d", i), QuietHours: &noQuiet}
		if _, err := store.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := store.RecordConsent(ctx, c.ID, proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a1", CustomerID: c.ID,
			TimeZone: "UTC", Site: proactive.Address{PostalCode: "10115", Country: "DE"}}); err != nil {
			t.Fatal(err)
		}
	}

	p := startServe(t, env)
	p.waitReady(t)
	pub := device(t, broker, "outage-test-devices", false)
	var last atomic.Bool // the 21st device has gone quiet
	feedCtx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopFeed(); wg.Wait() }()
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, id := range ids {
				if i == 20 && last.Load() {
					continue
				}
				// While the broker is down the client keeps these for its
				// reconnect; nothing waits on them.
				pub.Publish("devices/"+id+"/telemetry", 1, false, `{"metrics": {"cabinet_temp": 4.2}}`)
			}
			select {
			case <-feedCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := metric(t, p.http, "proactive_rules_samples_total"); n < 2*21 {
			return fmt.Errorf("%v samples reached the rules, want every device's", n)
		}
		return nil
	})
	last.Store(true)
	samples := metric(t, p.http, "proactive_rules_samples_total")
	// Its queued publishes are delivered: the 21st's last sample is before
	// the outage.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := metric(t, p.http, "proactive_rules_samples_total"); n < samples+2*20 {
			return fmt.Errorf("%v samples, want two more rounds of the 20", n)
		}
		return nil
	})

	mq.Stop(t)
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, _ := get(p.http, "/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d with the broker down, want 503", code)
		}
		return nil
	})
	// The outage must outlast the rule's threshold of silence; nothing
	// happens meanwhile that could be awaited.
	time.Sleep(silence + 4*time.Second)
	mq.Start(t)
	p.waitReady(t)

	fired := `"msg":"alert firing","component":"rules","alert":{"rule":"silent","device_id":"`
	waitLogWithin(t, p, fired+"fridge-20\"", 40*time.Second)
	if n := strings.Count(p.logs.String(), fired); n != 1 {
		t.Errorf("%d silence alerts, want the one of fridge-20 (silent since before the outage):\n%s", n, tail(p.logs.String(), 4000))
	}
	page, err := store.ListTickets(ctx, devices.TicketFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Device != "fridge-20" {
		t.Errorf("tickets %+v, want only fridge-20's: the outage made no other device silent", page.Items)
	}
}
