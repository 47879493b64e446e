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
       proactive devices import --technicians [--config FILE] FILE.csv
       proactive devices import --maintenance [--config FILE] FILE.csv
       proactive devices acl [--config FILE] [--out FILE]   (a Mosquitto ACL from the registry; acl -h)
       proactive devices secret [--revoke] ID...             (issue or revoke device MQTT secrets; secret -h)

Imports devices and their customers into the registry (the configured db:
a SQLite file or a postgres:// URL). The CSV has a header line naming its
columns, in any order:

  %s

device_id and model are required; time_zone (IANA, like Europe/Paris) is
required for a new device; installed_on is YYYY-MM-DD; customer_phone is
E.164 (+4915550000001); preferred_channel is sms, whatsapp or email (which
needs customer_email); sms_consent, whatsapp_consent and email_consent are
true or false and are recorded in the customer's consent trail of that
channel (method import) when they change. An empty cell
keeps the stored value. Rows are upserts, so importing a file again is safe.

Each rejected row is listed with its line and reasons, the other rows are
imported all the same, and the exit status is still 0: only a file-level
error (unreadable file, unknown column, malformed CSV, database failure)
exits non-zero.
`

func devicesCmd(ctx context.Context, e env) error {
	if len(e.args) > 0 && e.args[0] == "acl" {
		e.args = e.args[1:]
		return devicesACL(ctx, e)
	}
	if len(e.args) > 0 && e.args[0] == "secret" {
		e.args = e.args[1:]
		return devicesSecret(ctx, e)
	}
	if len(e.args) == 0 || e.args[0] != "import" {
		fmt.Fprintf(e.stderr, devicesUsage, strings.Join(devices.ImportColumns, ","))
		if len(e.args) > 0 && (e.args[0] == "-h" || e.args[0] == "--help" || e.args[0] == "help") {
			return nil
		}
		return errors.New("devices: want a subcommand: import, acl or secret")
	}
	fs, load := configFlags("devices import", e)
	techs := fs.Bool("technicians", false, "the file lists technicians (columns "+strings.Join(devices.TechnicianColumns, ",")+
		`; hours like "mon-fri 08:00-12:00 13:00-17:00; sat 09:00-12:00")`)
	maint := fs.Bool("maintenance", false, "the file lists maintenance records (columns "+strings.Join(devices.MaintenanceColumns, ",")+
		"; time RFC 3339 or Unix ms; kind replaced, repaired or inspected); a record already imported is not added again")
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
	if *techs && *maint {
		return errors.New("devices import: --technicians and --maintenance are different files: give one")
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
	var rep devices.ImportReport
	if *techs {
		rep, err = devices.ImportTechnicians(ctx, store, f)
	} else if *maint {
		rep, err = devices.ImportMaintenance(ctx, store, f)
	} else {
		rep, err = devices.Import(ctx, store, f, progress)
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d rows: %d created, %d updated, %d unchanged, %d rejected\n",
		rep.Rows, rep.Created, rep.Updated, rep.Unchanged, len(rep.Rejected))
	for _, r := range rep.Rejected {
		if *techs {
			fmt.Fprintf(&b, "line %d: technician %s: %s\n", r.Line, r.DeviceID, r.Reason)
			continue
		}
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}
