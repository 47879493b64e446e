package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestKafkaThreeInstancesKillOne runs three `proactive serve` processes
// sharing the fleet through Kafka (franz-go's kfake, real protocol over
// TCP) on one PostgreSQL and one InfluxDB. A burst of telemetry from 40
// devices goes to the topic; one instance is killed (SIGKILL) in the middle
// of it, and its partitions move to the others after the session timeout,
// which rebuild their devices' windows from InfluxDB. Every point ends up in
// InfluxDB, and each of the four devices that run hot in the burst's second
// half has exactly one ticket with one alert event.
func TestKafkaThreeInstancesKillOne(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	influx := testenv.Influx(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "proactive.telemetry", "proactive.events"),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n    when: compressor_current > 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Device ids unique to this run: the schema is shared with other tests.
	run := fmt.Sprintf("k%d", time.Now().UnixNano()%1e9)
	id := func(i int) string { return fmt.Sprintf("%s-fridge-%02d", run, i) }
	const fleet, hot, per = 40, 4, 20
	for i := range hot {
		if _, err := store.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(id(i)), Model: "fridge-a1", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
	}

	snapshots := t.TempDir()
	var ps []*platform
	for range 3 {
		env := baseEnv(t, influx)
		env["PROACTIVE_DB"] = dsn
		env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
		env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
		env["PROACTIVE_INGEST_SOURCE"] = "kafka"
		env["PROACTIVE_KAFKA_BROKERS"] = strings.Join(c.ListenAddrs(), ",")
		env["PROACTIVE_KAFKA_SNAPSHOT_DIR"] = snapshots
		env["PROACTIVE_KAFKA_SESSION_TIMEOUT"] = "2s"
		ps = append(ps, startChild(t, env))
	}
	for _, p := range ps {
		p.waitReady(t)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	send := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			for d := range fleet {
				v := 5.0
				if d < hot && i >= per/2+2 {
					v = 12 // hot once the killed instance is gone
				}
				recs = append(recs, &kgo.Record{Topic: "proactive.telemetry", Key: []byte(id(d)),
					Value:   fmt.Appendf(nil, `{"ts": %d, "metrics": {"compressor_current": %g}}`, base.Add(time.Duration(i)*time.Second).UnixMilli(), v),
					Headers: []kgo.RecordHeader{{Key: "topic", Value: []byte("devices/" + id(d) + "/telemetry")}}})
			}
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() int {
		n := 0
		for _, s := range influx.Query(t, fmt.Sprintf(`SELECT count("compressor_current") FROM "telemetry" WHERE "device_id" =~ /^%s-/`, run)) {
			for _, row := range s.Values {
				if len(row) > 1 {
					if f, ok := row[1].(float64); ok {
						n += int(f)
					}
				}
			}
		}
		return n
	}

	send(0, per/2)
	testenv.Eventually(t, 0, func() error {
		if n := stored(); n == 0 {
			return errors.New("nothing stored yet")
		}
		return nil
	})
	ps[1].kill(t) // mid-burst: what it consumed and did not commit goes to the others
	send(per/2, per)

	testenv.Eventually(t, 60*time.Second, func() error {
		if n := stored(); n != fleet*per {
			return fmt.Errorf("%d of %d points stored:\nA:\n%s\nC:\n%s", n, fleet*per, tail(ps[0].logs.String(), 2000), tail(ps[2].logs.String(), 2000))
		}
		return nil
	})
	tickets := func(dev string) []proactive.Ticket {
		page, err := store.ListTickets(ctx, devices.TicketFilter{Device: proactive.DeviceID(dev)})
		if err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		for d := range hot {
			if len(tickets(id(d))) == 0 {
				return fmt.Errorf("no ticket for %s yet:\nA:\n%s\nC:\n%s", id(d), tail(ps[0].logs.String(), 3000), tail(ps[2].logs.String(), 3000))
			}
		}
		return nil
	})
	// A clean stop drains what the survivors hold: nothing can come after.
	ps[0].terminate(t)
	ps[2].terminate(t)
	for d := range fleet {
		items := tickets(id(d))
		if d >= hot {
			if len(items) != 0 {
				t.Errorf("%s never ran hot and has %d tickets", id(d), len(items))
			}
			continue
		}
		if len(items) != 1 {
			t.Errorf("%s: %d tickets, want 1", id(d), len(items))
			continue
		}
		tk, err := store.GetTicket(ctx, items[0].ID)
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
			t.Errorf("%s: %d alert events on its ticket, want 1", id(d), alerts)
		}
	}
}
