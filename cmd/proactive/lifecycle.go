package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// part is one long-running component of serve. run returns once its
// in-flight work is drained after ctx ends; before that, its return ends
// the service.
type part struct {
	name string
	run  func(ctx context.Context) error
	// stop bounds the wait for run after its ctx ends (default: the
	// group's).
	stop time.Duration
}

// runParts starts the parts in order (sinks first), waits until ctx ends or
// one of them returns, then stops them in the reverse order (sources
// first), one at a time, each given its bound to drain. Each part's ctx is
// its own, so that a part still draining keeps the parts it feeds running.
// It returns why the service stopped, if not by ctx, and each part that
// failed or did not stop in time.
func runParts(ctx context.Context, bound time.Duration, parts ...part) error {
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
			err := p.run(pctx)
			rs[i].done <- err
			ended <- i
		}()
	}
	var errs []error
	select {
	case <-ctx.Done():
	case i := <-ended:
		err := <-rs[i].done
		errs = append(errs, fmt.Errorf("%s stopped: %w", parts[i].name, err))
		rs[i].done <- nil
	}
	for i := len(parts) - 1; i >= 0; i-- {
		rs[i].cancel()
		d := parts[i].stop
		if d <= 0 {
			d = bound
		}
		select {
		case err := <-rs[i].done:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("%s: %w", parts[i].name, err))
			}
		case <-time.After(d):
			errs = append(errs, fmt.Errorf("%s: did not stop within %s", parts[i].name, d))
		}
	}
	return errors.Join(errs...)
}
