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

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// silence is the threshold of the outage tests' rule: since_seen() > 8s
// for a device with samples in its last hour.
const silence = 8 * time.Second

// silentFleet is the outage tests' platform environment: the silence rule
// evaluated every second, and 21 registered devices whose customers may be
// texted at any hour. fridge-20 is the one that goes quiet.
func silentFleet(t *testing.T) (env map[string]string, store *devices.Store, ids []string) {
	t.Helper()
	dir := t.TempDir()
	// The window gives the rule a lookback, so that a restart restores the
	// devices' windows (and their last samples) from the snapshot.
	rule := "rules:\n  - name: silent\n    component: connectivity\n    severity: info\n" +
		"    when: since_seen() > duration(\"8s\") && count(cabinet_temp, \"1h\") > 0\n    summary: \"{{ .Device.ID }} has sent nothing\"\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t)
	env = baseEnv(t, influx)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_RULES_TICK_INTERVAL"] = "1s"
	ctx := t.Context()
	store, err := devices.Open(ctx, env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	noQuiet := proactive.QuietHours{}
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
	return env, store, ids
}

// feeder publishes a sample for every device every 4s, as devices report
// less often than the rules' clock ticks (every second here), until the test
// ends. While the broker is unreachable the client keeps the messages for
// its reconnect.
type feeder struct {
	quiet  atomic.Bool // fridge-20 sends no more
	paused atomic.Bool // nobody sends: the platform is down
}

func feed(t *testing.T, pub paho.Client, ids []string) *feeder {
	f := &feeder{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(4 * time.Second)
		defer tick.Stop()
		for {
			for i, id := range ids {
				if f.paused.Load() || i == 20 && f.quiet.Load() {
					continue
				}
				pub.Publish("devices/"+id+"/telemetry", 1, false, `{"metrics": {"cabinet_temp": 4.2}}`)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return f
}

// waitSamples waits until the platform's rules have taken n samples.
func waitSamples(t *testing.T, p *platform, n float64) float64 {
	t.Helper()
	return testenv.EventuallyValue(t, 30*time.Second, func() (float64, error) {
		if got := metric(t, p.http, "proactive_rules_samples_total"); got < n {
			return got, fmt.Errorf("%v samples reached the rules, want %v", got, n)
		}
		return metric(t, p.http, "proactive_rules_samples_total"), nil
	})
}

// onlyQuietOneFires waits for fridge-20's silence alert and checks that no
// other device fired or has a ticket: nobody else is texted.
func onlyQuietOneFires(t *testing.T, p *platform, store *devices.Store) {
	t.Helper()
	fired := `"msg":"alert firing","component":"rules","alert":{"rule":"silent","device_id":"`
	waitLogWithin(t, p, fired+"fridge-20\"", 40*time.Second)
	if n := strings.Count(p.logs.String(), fired); n != 1 {
		t.Errorf("%d silence alerts, want the one of fridge-20 (silent since before the outage):\n%s", n, tail(p.logs.String(), 4000))
	}
	// The alert is logged before the notifier stores its ticket.
	page := testenv.EventuallyValue(t, 10*time.Second, func() (devices.Page[proactive.Ticket], error) {
		page, err := store.ListTickets(t.Context(), devices.TicketFilter{})
		if err == nil && len(page.Items) == 0 {
			err = fmt.Errorf("no ticket yet for fridge-20's alert")
		}
		return page, err
	})
	if len(page.Items) != 1 || page.Items[0].Device != "fridge-20" {
		t.Errorf("%d tickets (%+v), want only fridge-20's: the outage made no other device silent", len(page.Items), page.Items)
	}
}

// Our own outage is no device's silence, through the real binary: 20
// devices publish every 4s to a Mosquitto of the test's own, a
// 21st stops before the broker does; the broker is down for longer than the
// silence rule's threshold and comes back on its port. The 20 never fire
// and have no ticket (so nobody is texted); the 21st, silent since before
// the outage, fires once the threshold has passed after intake resumed.
func TestServeBrokerOutageIsNoSilence(t *testing.T) {
	t.Parallel()
	mq := testenv.RestartableMosquitto(t, "listener {{port}} 127.0.0.1\nallow_anonymous true\npersistence false")
	broker := "tcp://127.0.0.1:" + strconv.Itoa(mq.Port)
	env, store, ids := silentFleet(t)
	env["PROACTIVE_MQTT_URL"] = broker
	env["PROACTIVE_MQTT_CLIENT_ID"] = "proactive-outage-test"

	p := startServe(t, env)
	p.waitReady(t)
	f := feed(t, device(t, broker, "outage-test-devices", false), ids)
	waitSamples(t, p, 2*21)
	f.quiet.Store(true)
	// fridge-20's queued publishes are delivered: its last sample is
	// before the outage.
	waitSamples(t, p, metric(t, p.http, "proactive_rules_samples_total")+2*20)

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
	onlyQuietOneFires(t, p, store)
}

// A restart after downtime makes no device silent either: the platform is
// stopped for longer than the threshold and started again from its
// snapshot, whose windows hold every device's last sample from before; the
// rules' clock ticks before the devices' next samples arrive.
func TestServeRestartAfterDowntimeIsNoSilence(t *testing.T) {
	t.Parallel()
	env, store, ids := silentFleet(t)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)

	p := startServe(t, env)
	p.waitReady(t)
	f := feed(t, device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "restart-test-devices", false), ids)
	waitSamples(t, p, 2*21)
	f.quiet.Store(true)
	waitSamples(t, p, metric(t, p.http, "proactive_rules_samples_total")+2*20)
	f.paused.Store(true) // the devices' next samples come after the restart
	if err := p.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The downtime must outlast the rule's threshold of silence; nothing
	// happens meanwhile that could be awaited.
	time.Sleep(silence + 4*time.Second)
	p = startServe(t, env)
	p.waitReady(t)
	f.paused.Store(false)
	waitLogWithin(t, p, `"msg":"rule windows restored from the snapshot`, 10*time.Second) // every device, last seen before the downtime
	onlyQuietOneFires(t, p, store)
}
