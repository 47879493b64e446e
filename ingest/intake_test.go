package ingest_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// runBroker serves an embedded broker on addr until the returned stop is
// called.
func runBroker(t *testing.T, addr string) func() {
	t.Helper()
	var once sync.Once
	in, _ := newIngester(t, ingest.Options{Writer: &store{}})
	b, err := ingest.NewBroker(in, ingest.BrokerOptions{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Error("broker did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// The ingester tells its Intake when its source connects and when it loses
// the broker, so that the rules know our own outage from silent devices.
func TestSubscriberReportsIntake(t *testing.T) {
	changes := make(chan bool, 16)
	in, _ := newIngester(t, ingest.Options{Writer: &store{}, Intake: func(up bool) { changes <- up }})
	mustRun(t, in)
	// An embedded broker on a fixed port, so that a second one can take its
	// place once it has stopped.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	drain := func() {
		for {
			select {
			case <-changes:
			default:
				return
			}
		}
	}
	expect := func(want bool, why string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case up := <-changes:
				if up == want {
					return
				}
			case <-deadline:
				t.Fatalf("intake not reported %v %s", want, why)
			}
		}
	}
	stopBroker := runBroker(t, addr)
	sub, err := ingest.NewSubscriber(in, ingest.SubscriberOptions{URL: "mqtt://" + addr, ClientID: "intake-test", KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	expect(true, "once the subscriber connected")
	stopBroker()
	expect(false, "once the broker stopped")
	drain()
	runBroker(t, addr)
	expect(true, "once the broker was back")
	cancel()
	<-done
	expect(false, "once the subscriber stopped")
}
