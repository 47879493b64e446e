package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive/internal/lifecycle"
)

// recorder is a part that drains for drain after its ctx ends and notes
// when it stopped, and whether the parts it feeds were still running.
type recorder struct {
	mu      sync.Mutex
	stopped []string
	running map[string]bool
}

func (r *recorder) part(name string, drain time.Duration, feeds ...string) lifecycle.Part {
	return lifecycle.Part{Name: name, Run: func(ctx context.Context) error {
		r.mu.Lock()
		r.running[name] = true
		r.mu.Unlock()
		<-ctx.Done()
		time.Sleep(drain) // synctest's fake clock: the drain takes this long, it waits for nothing
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range feeds {
			if !r.running[f] {
				return fmt.Errorf("%s drained after %s had stopped", name, f)
			}
		}
		r.running[name] = false
		r.stopped = append(r.stopped, name)
		return ctx.Err()
	}}
}

// Parts stop in the reverse order of their start, each after the one
// before it has drained: a source's last work reaches a running sink.
func TestRunStopsInReverseOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{running: map[string]bool{}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- lifecycle.Run(ctx, time.Minute, r.part("sink", 0), r.part("middle", time.Second, "sink"), r.part("source", 2*time.Second, "middle", "sink"))
		}()
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(r.stopped, " "); got != "source middle sink" {
			t.Errorf("stopped %s, want source middle sink", got)
		}
	})
}

// A part that returns early ends the service and names itself; one that
// does not drain within its bound is reported, and the others still stop.
func TestRunFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{running: map[string]bool{}}
		broken := errors.New("connection lost")
		release := make(chan struct{})
		defer close(release)
		err := lifecycle.Run(t.Context(), time.Minute,
			r.part("sink", 0),
			lifecycle.Part{Name: "stuck", Run: func(ctx context.Context) error { <-ctx.Done(); <-release; return nil }, Stop: time.Second},
			lifecycle.Part{Name: "mqtt", Run: func(context.Context) error { return broken }},
		)
		if !errors.Is(err, broken) || !strings.Contains(err.Error(), "mqtt stopped: connection lost") ||
			!strings.Contains(err.Error(), "stuck: did not stop within 1s") {
			t.Errorf("error %v", err)
		}
		if got := strings.Join(r.stopped, " "); got != "sink" {
			t.Errorf("stopped %q, want the sink", got)
		}
	})
}

// ServeHTTP serves until ctx ends, then shuts down.
func TestServeHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- lifecycle.ServeHTTP(srv, ln, time.Second)(ctx) }()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after shutdown: %v", err)
	}
}

// OnSignal calls its function on each signal until ctx ends.
func TestOnSignal(t *testing.T) {
	called := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	run := lifecycle.OnSignal(func() { called <- struct{}{} }, syscall.SIGUSR1)
	// The signal is caught from OnSignal on, before run starts.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	go func() { done <- run(ctx) }()
	<-called
	cancel()
	if err := <-done; err != nil {
		t.Errorf("after ctx: %v", err)
	}
}
