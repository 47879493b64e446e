package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/cli"
)

var devicesUsage = helpText("devices")

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
		usage := fmt.Sprintf(devicesUsage, strings.Join(devices.ImportColumns, ","))
		if len(e.args) > 0 && cli.IsHelp(e.args[0]) {
			return cli.Help(e.stdout, usage)
		}
		io.WriteString(e.stderr, usage)
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
	if err := e.parse(fs, e.args[1:]); err != nil {
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
