package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/ingest"
)

var aclUsage = helpText("devices-acl")

// aclPageSize is how many devices one registry query reads.
const aclPageSize = 500

func devicesACL(ctx context.Context, e env) error {
	fs, load := configFlags("devices acl", e)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), aclUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	out := fs.String("out", "", "write the ACL to this `file` (atomically) instead of standard output")
	platformUser := fs.String("platform-user", "", "the platform's MQTT `user` (default mqtt.username, or proactive when that is empty)")
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("devices acl takes no arguments, got %q", fs.Args())
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	user := *platformUser
	if user == "" {
		user = cfg.MQTT.Username
	}
	if user == "" {
		user = "proactive"
	}
	store, err := devices.Open(ctx, cfg.DB.Reveal())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()

	var ids []proactive.DeviceID
	for cursor := ""; ; {
		page, err := store.ListDevices(ctx, devices.DeviceFilter{ListOptions: devices.ListOptions{Limit: aclPageSize, Cursor: cursor}})
		if err != nil {
			return err
		}
		for _, d := range page.Items {
			ids = append(ids, d.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	var b strings.Builder
	if err := ingest.WriteMosquittoACL(&b, cfg.MQTT.TopicPrefix, user, ids); err != nil {
		return err
	}
	if *out == "" {
		_, err = io.WriteString(e.stdout, b.String())
		return err
	}
	// A broker reloading on SIGHUP reads the old file or the new one.
	if err := renameio.WriteFile(*out, []byte(b.String()), 0o644, renameio.WithTempDir(filepath.Dir(*out)), renameio.WithStaticPermissions(0o644)); err != nil {
		return fmt.Errorf("write acl: %w", err)
	}
	_, err = fmt.Fprintf(e.stderr, "%s: platform user %s and %d device(s)\n", *out, user, len(ids))
	return err
}
