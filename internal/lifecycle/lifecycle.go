// Package lifecycle runs the long-running parts of a service under one
// owner: started in order, stopped in the reverse order, each given a
// bounded time to drain.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"
)

// Part is one long-running component. Run returns once its in-flight work
// is drained after ctx ends; a return before that ends the service.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
	// Stop bounds the wait for Run after its ctx ends (default: the bound
	// given to Run).
	Stop time.Duration
}

// Run starts the parts in order (sinks first), waits until ctx ends or
// one of them returns, then stops them in the reverse order (sources
// first), one at a time, each given its bound to drain. Each part's ctx is
// its own, so that a part still draining keeps the parts it feeds running.
// It returns why the service stopped, if not by ctx, and each part that
// failed or did not stop in time.
func Run(ctx context.Context, bound time.Duration, parts ...Part) error {
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	rs := make([]running, len(parts))
	ended := make(chan int, len(parts))
	for i, p := range parts {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rs[i] = running{cancel, make(chan error, 1)}
		go func() {
			err := p.Run(pctx)
			rs[i].done <- err
			ended <- i
		}()
	}
	var errs []error
	select {
	case <-ctx.Done():
	case i := <-ended:
		err := <-rs[i].done
		errs = append(errs, fmt.Errorf("%s stopped: %w", parts[i].Name, err))
		rs[i].done <- nil
	}
	for i := len(parts) - 1; i >= 0; i-- {
		rs[i].cancel()
		d := parts[i].Stop
		if d <= 0 {
			d = bound
		}
		select {
		case err := <-rs[i].done:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("%s: %w", parts[i].Name, err))
			}
		case <-time.After(d):
			errs = append(errs, fmt.Errorf("%s: did not stop within %s", parts[i].Name, d))
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP returns the Run of an HTTP server: it serves ln until ctx ends,
// then shuts the server down, giving the requests in flight grace.
func ServeHTTP(srv *http.Server, ln net.Listener, grace time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		if err := srv.Shutdown(shCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
}

// OnSignal returns the Run of a part that calls fn on each of the signals
// sigs (like SIGHUP for a reload), one at a time, until ctx ends. It
// catches sigs from the moment it is called, so that one arriving before
// Run starts is neither missed nor left to its default action (SIGHUP ends
// the process); the Run must then be called.
func OnSignal(fn func(), sigs ...os.Signal) func(ctx context.Context) error {
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	return func(ctx context.Context) error {
		defer signal.Stop(c)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-c:
				fn()
			}
		}
	}
}
