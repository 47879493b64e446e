package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/channels"
	"github.com/proactivehq/proactive/internal/history"
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

// newNotifier builds the outreach loop with a provider per channel
// (internal/channels): Twilio when an account is configured, otherwise the
// console sender, which prints every message to stdout (the `make run`
// demo).
func newNotifier(cfg Config, store *devices.Store, reg prometheus.Registerer, log *slog.Logger, stdout io.Writer) (*notify.Notifier, error) {
	sender, err := channels.Sender(cfg, stdout, log)
	if err != nil {
		return nil, err
	}
	no, err := history.NotifyOptions(cfg)
	if err != nil {
		return nil, err // validated with the config already
	}
	no.Store, no.Sender, no.Logger, no.Registerer = store, sender, log, reg
	return notify.New(no), nil
}

// newDispatcher builds the delivery of outbound events to the webhooks.
func newDispatcher(cfg Config, store *devices.Store, reg prometheus.Registerer, log *slog.Logger) *notify.Dispatcher {
	return notify.NewDispatcher(store, history.DispatcherOptions(cfg, reg, log))
}

// newAPI builds the /api/v1 handler over the running components.
func newAPI(cfg Config, store *devices.Store, tokens *devices.Tokens, engine *rules.Engine, in *ingest.Ingester, tsdb *influx.Store,
	n *notify.Notifier, checks []api.Check, log *slog.Logger) http.Handler {
	return api.New(api.Options{
		Checks:      checks,
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
		Store: store, Tokens: tokens, Outreach: n, Customers: n, Logger: log,
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

// directoryGauge is proactive_device_directory_devices: the devices in this
// instance's in-memory directory of the registry.
func directoryGauge(store *devices.Store) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "proactive_device_directory_devices",
		Help: "Devices in this instance's in-memory directory of the registry."}, func() float64 { return float64(store.DirectorySize()) })
}
