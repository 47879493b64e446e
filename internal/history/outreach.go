package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

// NotifyOptions are the notifier's options as the configuration sets them
// (cfg.Notify); the caller adds the Store, Sender, clock and logging. A
// configured 0 turns a check off, which notify spells Off.
func NotifyOptions(cfg config.Config) (notify.Options, error) {
	nc := cfg.Notify
	remindAt, err := proactive.ParseClock(nc.VisitReminderAt)
	if err != nil {
		return notify.Options{}, fmt.Errorf("notify.visit_reminder_at: %w", err)
	}
	return notify.Options{
		PublicURL:       cfg.PublicURL,
		ContactCooldown: cmp.Or(time.Duration(nc.ContactCooldown), notify.Off), MaxAlertAge: cmp.Or(time.Duration(nc.MaxAlertAge), notify.Off),
		OfferExpiry: time.Duration(nc.OfferExpiry), OfferReminder: time.Duration(nc.OfferReminder), SlotLength: time.Duration(nc.SlotLength),
		TravelBuffer: time.Duration(nc.TravelBuffer), SlotLead: time.Duration(nc.SlotLead),
		SlotHorizon: time.Duration(nc.SlotHorizon), SlotCount: nc.SlotCount, SlotHold: time.Duration(nc.SlotHold),
		DailyCap: nc.DailyCap, CriticalInQuietHours: nc.CriticalInQuietHours, VisitReminderAt: remindAt,
		SurveyTimeout: time.Duration(nc.SurveyTimeout), NPSInterval: cmp.Or(time.Duration(nc.NPSInterval), notify.Off), CES: nc.CES, HelpContact: nc.HelpContact, ReplyNumber: cfg.Twilio.From, Brand: nc.Brand, AdvancedOptOut: cfg.Twilio.AdvancedOptOut,
		MaxAttempts: nc.MaxAttempts, SendTimeout: time.Duration(nc.SendTimeout), MinOutcomes: nc.MinOutcomes, MinPrecision: cmp.Or(nc.MinPrecision, notify.Off),
		GroupWait: time.Duration(nc.GroupWait), IncidentMinDevices: nc.Incident.MinDevices, IncidentMinShare: nc.Incident.MinShare, IncidentWindow: time.Duration(nc.Incident.Window),
	}, nil
}

// HandleAfter is how long after its alert a replay handles a ticket that
// waits for a person (notify.ReplayOptions.HandleAfter).
const HandleAfter = 24 * time.Hour

// Outreach is the backtest's replay of its alerts through the notifier
// (rules.BacktestOptions.Outreach) on the platform configured by cfg: the
// configured notify options, and the devices and customers of the
// configured database when it exists (each other device gets a customer of
// its own who consents). It says on w how long the replay took.
func Outreach(cfg config.Config, w io.Writer) rules.OutreachFunc {
	return func(ctx context.Context, in rules.OutreachInput) (rules.Outreach, error) {
		no, err := NotifyOptions(cfg)
		if err != nil {
			return rules.Outreach{}, err
		}
		reg, from := registry(ctx, cfg.DB.Reveal())
		if reg != nil {
			defer reg.Close()
		}
		started := time.Now()
		res, err := notify.Replay(ctx, in.Alerts, notify.ReplayOptions{Notify: no, Registry: reg, Fleet: in.Fleet, To: in.To,
			True: in.True, HandleAfter: HandleAfter})
		if err != nil {
			return rules.Outreach{}, err
		}
		out := rules.Outreach{Tickets: make([]rules.OutreachTicket, len(res.Tickets))}
		for i, t := range res.Tickets {
			out.Tickets[i] = rules.OutreachTicket{Rule: t.Rule, Device: t.Device, Component: t.Component, FiredAt: t.FiredAt, Texted: t.Texted}
		}
		handled := "settled by the failures (true: visited, fault confirmed; false: dismissed)"
		if in.True == nil {
			handled = "cancelled (no failures to settle them by)"
		}
		out.Note = fmt.Sprintf("the alerts replayed through the notifier in data time (notify settings of the configuration; "+
			"alert age 0); %d device(s) with their customers from %s, %d with a synthetic customer who consents to SMS; "+
			"tickets waiting for a person %s after %s",
			res.Copied, from, res.Synthetic, handled, proactive.FormatDuration(HandleAfter))
		fmt.Fprintf(w, "backtest: %d alert(s) replayed through the notifier in %s: %d ticket(s)\n", len(in.Alerts),
			time.Since(started).Round(time.Millisecond), len(res.Tickets))
		return out, nil
	}
}

// registry opens the database at dsn for its devices and customers, and
// says where they come from. It is nil when the database is a SQLite file
// that does not exist (it is not created) or cannot be opened: the replay
// then gives every device a synthetic customer rather than fail after a
// long backtest, and its note says why.
func registry(ctx context.Context, dsn string) (*devices.Store, string) {
	if path, ok := devices.SQLiteFile(dsn); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, "no database (none at " + path + ")"
		}
	}
	store, err := devices.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Sprintf("no database (it could not be opened: %v)", err)
	}
	return store, "the database"
}

// DispatcherOptions are the webhook dispatcher's options configured by
// cfg, with its metrics on reg and its logs on log.
func DispatcherOptions(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) notify.DispatcherOptions {
	nc := cfg.Notify
	return notify.DispatcherOptions{Attempts: nc.WebhookAttempts, Timeout: time.Duration(nc.WebhookTimeout),
		Backoff: time.Duration(nc.WebhookBackoff), Retention: time.Duration(nc.WebhookRetention), Registerer: reg, Logger: log}
}
