package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/proactivehq/proactive/devices"
)

const devicesUsage = `usage: proactive devices import [--config FILE] FILE.csv

Imports devices and their customers into the registry (the configured db:
a SQLite file or a postgres:// URL). The CSV has a header line naming its
columns, in any order:

  %s

device_id and model are required; time_zone (IANA, like Europe/Paris) is
required for a new device; installed_on is YYYY-MM-DD; customer_phone is
E.164 (+4915550000001); sms_consent is true or false and is recorded in the
customer's consent trail (method import) when it changes. An empty cell
keeps the stored value. Rows are upserts, so importing a file again is safe.

Each rejected row is listed with its line and reasons, the other rows are
imported all the same, and the exit status is still 0: only a file-level
error (unreadable file, unknown column, malformed CSV, database failure)
exits non-zero.
`

func devicesCmd(ctx context.Context, e env) error {
	if len(e.args) == 0 || e.args[0] != "import" {
		fmt.Fprintf(e.stderr, devicesUsage, strings.Join(devices.ImportColumns, ","))
		if len(e.args) > 0 && (e.args[0] == "-h" || e.args[0] == "--help" || e.args[0] == "help") {
			return nil
		}
		return errors.New("devices: want a subcommand: import")
	}
	fs, load := configFlags("devices import", e)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), devicesUsage+"\nFlags:\n", strings.Join(devices.ImportColumns, ","))
		fs.PrintDefaults()
	}
	if err := fs.Parse(e.args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("devices import takes one FILE.csv, got %d arguments", fs.NArg())
	}
	name := fs.Arg(0)
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	store, err := devices.Open(ctx, cfg.DB.Reveal())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()

	start := time.Now()
	var lastRows int
	var lastAt time.Time
	progress := func(done int) {
		if done/1000 > lastRows/1000 && time.Since(lastAt) >= time.Second {
			fmt.Fprintf(e.stderr, "%s: %d rows processed (%s)\n", name, done, time.Since(start).Round(time.Millisecond))
			lastRows, lastAt = done, time.Now()
		}
	}
	rep, err := devices.Import(ctx, store, f, progress)
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d rows: %d created, %d updated, %d unchanged, %d rejected\n",
		rep.Rows, rep.Created, rep.Updated, rep.Unchanged, len(rep.Rejected))
	for _, r := range rep.Rejected {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}
