package main

import (
	"context"
	"fmt"
	"time"

	"github.com/proactivehq/proactive/api/client"
	"github.com/proactivehq/proactive/internal/config"
)

var healthcheckUsage = helpText("healthcheck")

// healthcheck is the `proactive healthcheck` command.
func healthcheck(ctx context.Context, e env) error {
	fs, load := configFlags("healthcheck", e)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), healthcheckUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	ready := fs.Bool("ready", false, "ask /readyz (every dependency usable) instead of /healthz (the process answers)")
	target := fs.String("url", "", "the `URL` to ask (default http://127.0.0.1:PORT/healthz with PORT from http.addr)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this `duration`")
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck takes no arguments, got %q", fs.Args())
	}
	u := *target
	if u == "" {
		cfg, err := load()
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		u, err = config.LocalURL(cfg.HTTP.Addr)
		if err != nil {
			return err
		}
		if *ready {
			u += "/readyz"
		} else {
			u += "/healthz"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := client.Probe(ctx, u)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s", body)
	return err
}
