package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/twilio"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

// newWebhooks builds Twilio's webhook handler, which checks each request's
// signature and hands it to the notifier.
func newWebhooks(cfg Config, notifier *notify.Notifier, log *slog.Logger) http.Handler {
	return twilio.Webhooks(twilio.WebhookOptions{AuthToken: cfg.Twilio.AuthToken.Reveal(), PublicURL: cfg.PublicURL,
		Logger: log.With("component", "notify"), Rejected: notifier.WebhookRejected}, notifier)
}

// newNotifier builds the outreach loop: Twilio when an account is
// configured, otherwise the console sender, which prints every SMS to
// stdout (the `make run` demo).
func newNotifier(cfg Config, store *devices.Store, reg prometheus.Registerer, log *slog.Logger, stdout io.Writer) (*notify.Notifier, error) {
	var sender notify.Sender
	if cfg.Twilio.AccountSID != "" {
		s, err := twilio.New(twilio.Options{
			AccountSID: cfg.Twilio.AccountSID, AuthToken: cfg.Twilio.AuthToken.Reveal(),
			From: cfg.Twilio.From, MessagingServiceSID: cfg.Twilio.MessagingServiceSID, APIURL: cfg.Twilio.APIURL,
		})
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		sender = s
	} else {
		sender = notify.NewConsoleSender(stdout)
		log.Info("no twilio account configured: SMS are printed on the console")
	}
	nc := cfg.Notify
	remindAt, err := proactive.ParseClock(nc.VisitReminderAt)
	if err != nil {
		return nil, fmt.Errorf("notify.visit_reminder_at: %w", err) // validated with the config already
	}
	return notify.New(notify.Options{
		Store: store, Sender: sender, PublicURL: cfg.PublicURL,
		Logger: log, Registerer: reg, // a configured 0 turns a check off, which notify spells Off:
		ContactCooldown: cmp.Or(time.Duration(nc.ContactCooldown), notify.Off), MaxAlertAge: cmp.Or(time.Duration(nc.MaxAlertAge), notify.Off),
		OfferExpiry: time.Duration(nc.OfferExpiry), OfferReminder: time.Duration(nc.OfferReminder), SlotLength: time.Duration(nc.SlotLength),
		TravelBuffer: time.Duration(nc.TravelBuffer), SlotLead: time.Duration(nc.SlotLead),
		SlotHorizon: time.Duration(nc.SlotHorizon), SlotCount: nc.SlotCount, SlotHold: time.Duration(nc.SlotHold),
		DailyCap: nc.DailyCap, CriticalInQuietHours: nc.CriticalInQuietHours, VisitReminderAt: remindAt,
		SurveyTimeout: time.Duration(nc.SurveyTimeout), HelpContact: nc.HelpContact, Brand: nc.Brand, AdvancedOptOut: cfg.Twilio.AdvancedOptOut,
		MaxAttempts: nc.MaxAttempts, SendTimeout: time.Duration(nc.SendTimeout), MinOutcomes: nc.MinOutcomes, MinPrecision: cmp.Or(nc.MinPrecision, notify.Off),
		GroupWait: time.Duration(nc.GroupWait), IncidentMinDevices: nc.Incident.MinDevices, IncidentMinShare: nc.Incident.MinShare, IncidentWindow: time.Duration(nc.Incident.Window),
	}), nil
}

// newAPI builds the /api/v1 handler over the running components.
func newAPI(cfg Config, store *devices.Store, tokens *devices.Tokens, engine *rules.Engine, in *ingest.Ingester, tsdb *influx.Store,
	n *notify.Notifier, log *slog.Logger) http.Handler {
	return api.New(api.Options{
		Store:       store,
		Tokens:      tokens,
		Rules:       engine,
		Reload:      func(context.Context) (int, error) { return reloadRules(cfg, engine) },
		DeadLetters: in.DeadLetters().Recent,
		Telemetry:   tsdb,
		Outreach:    n,
		Logger:      log,
	})
}

// newWeb builds the field-service team's pages, served at /: the ticket
// page charts telemetry read from InfluxDB as the API reads it, and the
// rules page shows the engine's state.
func newWeb(cfg Config, store *devices.Store, tokens *devices.Tokens, engine *rules.Engine, tsdb *influx.Store,
	n *notify.Notifier, log *slog.Logger) http.Handler {
	return web.New(web.Options{
		Store: store, Tokens: tokens, Outreach: n, Logger: log,
		Telemetry:       tsdb,
		Rules:           engine,
		InsecureCookies: cfg.HTTP.InsecureCookies,
		Location:        web.LocalZone(),
	})
}

// reloadRules loads the rule files again (SIGHUP, POST /api/v1/rules/reload):
// a broken file leaves the running rules in place.
func reloadRules(cfg Config, engine *rules.Engine) (int, error) {
	if !cfg.Rules.Enabled {
		return 0, proactive.Errorf(proactive.EConflict, "rules are disabled on this instance (rules.enabled: false)")
	}
	count, probs := engine.LoadFiles(cfg.Rules.Paths)
	return count, probs.Err()
}
