package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/ingest"
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
	dsn, influx, c, dir, store := kafkaSetup(t, 6, "rules:\n  - name: compressor_hot\n    component: compressor\n    severity: warning\n    when: compressor_current > 10\n")
	ctx := t.Context()
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

// TestKafkaPartitionMoveKeepsWindows: an instance takes a week of readings
// through Kafka; a second instance joins, and the partitions it gets move
// to it with their windows (the first instance's snapshots in the shared
// directory). A rule that compares the last hour with the last 7 days then
// fires on the first reading after the move, for every device, as it would
// have without the move; an engine without the week would not fire.
func TestKafkaPartitionMoveKeepsWindows(t *testing.T) {
	t.Parallel()
	const partitions = 6
	dsn, influx, c, dir, store := kafkaSetup(t, partitions, "rules:\n  - name: compressor_wear\n    component: compressor\n    severity: warning\n    when: avg(compressor_current, \"1h\") > 1.25 * avg(compressor_current, \"7d\")\n")
	ctx := t.Context()
	// One device in every partition, so that the joining instance gets some
	// whichever half the group gives it.
	run := fmt.Sprintf("m%d", time.Now().UnixNano()%1e9)
	var ids []string
	covered := map[int32]bool{}
	for i := 0; len(covered) < partitions; i++ {
		id := fmt.Sprintf("%s-fridge-%03d", run, i)
		if p := ingest.KafkaPartition(proactive.DeviceID(id), partitions); !covered[p] {
			covered[p] = true
			ids = append(ids, id)
			if _, err := store.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a1", TimeZone: "UTC"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	snapshots := t.TempDir()
	instance := func() *platform {
		env := baseEnv(t, influx)
		env["PROACTIVE_DB"] = dsn
		env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
		env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
		env["PROACTIVE_INGEST_SOURCE"] = "kafka"
		env["PROACTIVE_KAFKA_BROKERS"] = strings.Join(c.ListenAddrs(), ",")
		env["PROACTIVE_KAFKA_SNAPSHOT_DIR"] = snapshots
		env["PROACTIVE_KAFKA_SESSION_TIMEOUT"] = "2s"
		env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // a week of readings comes at once
		p := startChild(t, env)
		p.waitReady(t)
		return p
	}
	a := instance()

	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	reading := func(id string, ts time.Time, v float64) *kgo.Record {
		return &kgo.Record{Topic: "proactive.telemetry", Key: []byte(id),
			Value:   fmt.Appendf(nil, `{"ts": %d, "metrics": {"compressor_current": %g}}`, ts.UnixMilli(), v),
			Headers: []kgo.RecordHeader{{Key: "topic", Value: []byte("devices/" + id + "/telemetry")}}}
	}
	now := time.Now().Truncate(time.Second)
	base := now.Add(-7*24*time.Hour - 30*time.Minute)
	var week []*kgo.Record
	for h := range 7 * 24 {
		for _, id := range ids {
			week = append(week, reading(id, base.Add(time.Duration(h)*time.Hour), 5))
		}
	}
	if err := prod.ProduceSync(ctx, week...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		n := 0
		for _, s := range influx.Query(t, fmt.Sprintf(`SELECT count("compressor_current") FROM "telemetry" WHERE "device_id" =~ /^%s-/`, run)) {
			for _, row := range s.Values {
				if f, ok := row[1].(float64); ok {
					n += int(f)
				}
			}
		}
		if n != len(week) {
			return fmt.Errorf("%d of %d readings stored", n, len(week))
		}
		return nil
	})

	b := instance() // the group rebalances: a snapshots its partitions, b restores its share
	testenv.Eventually(t, 0, func() error {
		if !regexp.MustCompile(`"msg":"partition restored from its snapshot".*"devices":[1-9]`).MatchString(b.logs.String()) {
			return fmt.Errorf("the joining instance restored no partition from a snapshot:\n%s", tail(b.logs.String(), 3000))
		}
		return nil
	})
	var hot []*kgo.Record
	for _, id := range ids {
		hot = append(hot, reading(id, now.Add(-time.Minute), 20))
	}
	if err := prod.ProduceSync(ctx, hot...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, id := range ids {
			page, err := store.ListTickets(ctx, devices.TicketFilter{Device: proactive.DeviceID(id)})
			if err != nil {
				return err
			}
			if len(page.Items) != 1 {
				return fmt.Errorf("%s: %d tickets, want 1:\nA:\n%s\nB:\n%s", id, len(page.Items), tail(a.logs.String(), 2000), tail(b.logs.String(), 2000))
			}
		}
		return nil
	})
	a.terminate(t)
	b.terminate(t)
}

// TestKafkaForwardsMQTTIntake: with ingest.source: kafka, what a device
// publishes to the instance's embedded broker goes through Kafka (the
// forwarder), is consumed by the partition's owner and stored; the
// device's QoS 1 publish is acknowledged once Kafka has it.
func TestKafkaForwardsMQTTIntake(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "proactive.telemetry", "proactive.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := baseEnv(t, influx)
	listen := testenv.FreeAddr(t)
	env["PROACTIVE_MQTT_LISTEN"] = listen
	env["PROACTIVE_INGEST_SOURCE"] = "kafka"
	env["PROACTIVE_KAFKA_BROKERS"] = strings.Join(c.ListenAddrs(), ",")
	env["PROACTIVE_KAFKA_SNAPSHOT_DIR"] = t.TempDir()
	p := startServe(t, env)
	p.waitReady(t)

	dev := device(t, "tcp://"+listen, "fwd-fridge-1", false)
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range 5 {
		publish(t, dev, "devices/fwd-fridge-1/telemetry",
			fmt.Sprintf(`{"ts": %d, "metrics": {"compressor_current": %d}}`, ts.Add(time.Duration(i)*time.Second).UnixMilli(), i))
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := influx.Count(t, "telemetry"); n != 5 {
			return fmt.Errorf("%d of 5 points stored:\n%s", n, tail(p.logs.String(), 3000))
		}
		return nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("proactive.telemetry"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < 5 {
		fs := cl.PollFetches(ctxTimeout(t, 10*time.Second))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if string(r.Key) != "fwd-fridge-1" || r.Partition != ingest.KafkaPartition("fwd-fridge-1", 3) {
				t.Errorf("record key %q in partition %d", r.Key, r.Partition)
			}
		})
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// kafkaSetup gives a Kafka test its PostgreSQL, influxd, an in-process Kafka
// with both topics in partitions partitions, a directory holding the rule
// file r.yaml, and a store on the database; all closed with the test.
func kafkaSetup(t *testing.T, partitions int32, rules string) (string, *testenv.InfluxServer, *kfake.Cluster, string, *devices.Store) {
	t.Helper()
	dsn := testenv.Postgres(t)
	influx := testenv.Influx(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "proactive.telemetry", "proactive.events"),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := devices.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return dsn, influx, c, dir, store
}
