package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

var secretUsage = helpText("devices-secret")

// devicesSecret is `proactive devices secret`.
func devicesSecret(ctx context.Context, e env) error {
	fs, load := configFlags("devices secret", e)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), secretUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	revoke := fs.Bool("revoke", false, "delete the devices' secrets instead of issuing new ones")
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("devices secret wants one or more device ids")
	}
	var bad []error
	for _, id := range fs.Args() {
		if !proactive.ValidDeviceID(id) {
			bad = append(bad, fmt.Errorf("%q is not a device id ([A-Za-z0-9_.-]{1,64})", id))
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	store, err := devices.Open(ctx, cfg.DB.Reveal())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	if *revoke {
		for _, id := range fs.Args() {
			if err := store.DeleteDeviceSecret(ctx, proactive.DeviceID(id)); err != nil {
				return fmt.Errorf("revoke %s: %w", id, err)
			}
			fmt.Fprintf(e.stderr, "secret of %s revoked\n", id)
		}
		return nil
	}
	w := csv.NewWriter(e.stdout)
	_ = w.Write([]string{"device_id", "secret"})
	for _, id := range fs.Args() {
		secret, err := store.SetDeviceSecret(ctx, proactive.DeviceID(id))
		if err != nil {
			w.Flush()
			return fmt.Errorf("issue a secret to %s: %w", id, err)
		}
		_ = w.Write([]string{id, secret})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "the secrets are shown only this once: store them now")
	return nil
}
