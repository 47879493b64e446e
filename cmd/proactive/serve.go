package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/internal/lifecycle"
	"github.com/proactivehq/proactive/rules"
)

// source is where messages come from: the embedded broker or a subscription
// to an external one.
type source interface {
	Run(ctx context.Context) error
	Ready() error
}

func serve(ctx context.Context, e env) error {
	fs, load := configFlags("serve", e)
	if err := e.parse(fs, e.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := cfg.Logger(e.stderr)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "proactive_build_info", Help: "Always 1; the labels say which build runs.",
			ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}}, func() float64 { return 1 }))

	tsdb := influx.New(influx.Options{
		URL: cfg.Influx.URL, Token: cfg.Influx.Token.Reveal(), Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
	})
	defer tsdb.Close()
	// Rules are checked before anything is opened: a broken file is the
	// most likely reason to refuse to start.
	var specs []rules.Spec
	if cfg.Rules.Enabled {
		var probs rules.Problems
		specs, probs = rules.LoadFiles(cfg.Rules.Paths)
		if len(probs) == 0 {
			_, probs = rules.Compile(specs)
		}
		if len(probs) > 0 {
			return fmt.Errorf("rules:\n%w", probs)
		}
	}
	store, err := devices.OpenOptions(ctx, cfg.DB.Reveal(), devices.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer store.Close()
	// The device directory is loaded before any message is taken: without
	// it every device would count as unknown (dead letters under
	// require_registration). A failed load is retried in the background.
	if err := store.LoadDirectory(ctx); err != nil {
		log.Error("device directory not loaded; waiting for it before taking messages", "err", err)
		if store.WaitDirectory(ctx) != nil {
			return nil // stopped while waiting
		}
		log.Info("device directory loaded")
	}
	reg.MustRegister(directoryGauge(store))
	deviceInfo := func(id proactive.DeviceID) (rules.DeviceInfo, bool) {
		model, age, ok := store.DeviceInfo(id)
		return rules.DeviceInfo{Model: model, AgeDays: age}, ok
	}
	notifier, err := newNotifier(cfg, store, reg, log, e.stdout)
	if err != nil {
		return err
	}
	engine := rules.New(rules.Options{Registerer: reg, Logger: log, Device: deviceInfo, Notify: notifier.Alerts, IntakeDown: true, TickInterval: time.Duration(cfg.Rules.TickInterval)})
	if probs := engine.Load(specs); len(probs) > 0 {
		return fmt.Errorf("rules:\n%w", probs)
	}
	var sink ingest.SinkFunc
	var eventSink ingest.EventSinkFunc
	feed := func(ctx context.Context) error { <-ctx.Done(); return nil } // a part that returns ends the service
	if cfg.Rules.Enabled {
		sink, eventSink = engine.Consume, engine.ConsumeEvents
		feed = rules.NewMaintenanceFeed(store, engine, rules.FeedOptions{Logger: log}).Run
		log.Info("rules loaded", "rules", len(specs), "paths", cfg.Rules.Paths)
	} else {
		log.Info("rules disabled on this instance (rules.enabled: false)")
	}

	history := rules.StoredHistory(tsdb)
	history.Maintenance = store // the rebuild applies repairs at their times, as the live engine did
	var parts *rules.Partitions // with Kafka, a partition's devices are restored on its assignment, not at start
	if cfg.Ingest.Source == "kafka" {
		parts = rules.NewPartitions(engine, rules.PartitionOptions{Dir: cfg.Kafka.SnapshotDir, History: history, Interval: time.Duration(cfg.Rules.SnapshotInterval), RebuildTimeout: time.Duration(cfg.Rules.RebuildTimeout), Logger: log})
	}
	kafka, err := ingest.NewKafkaIntake(ingest.KafkaOptions{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.Topic, EventsTopic: cfg.Kafka.EventsTopic, Group: cfg.Kafka.Group,
		SessionTimeout: time.Duration(cfg.Kafka.SessionTimeout), Evaluated: engine.Sync, Assigned: parts.Assign, Revoked: parts.Revoke, Lost: parts.Lose}, parts != nil, cfg.Kafka.Forward, cfg.MQTT.TopicPrefix, log)
	if err != nil {
		return err
	}
	in := ingest.New(ingest.Options{
		Writer: tsdb, Forward: kafka.Forward(),
		Sink:      sink,
		EventSink: eventSink, Intake: engine.SetIntake, // our own outage is no device's silence
		Lookup: func(id proactive.DeviceID) (string, bool) {
			model, _, ok := store.DeviceInfo(id)
			return model, ok
		},
		RequireRegistration: cfg.Ingest.RequireRegistration,
		MaxMetricsPerDevice: cfg.Ingest.MaxMetricsPerDevice,
		MaxRatePerDevice:    float64(cfg.Ingest.MaxRatePerDevice),
		MaxClockSkew:        time.Duration(cfg.Ingest.MaxClockSkew),
		TopicPrefix:         cfg.MQTT.TopicPrefix,
		BatchSize:           cfg.Influx.BatchSize,
		FlushInterval:       time.Duration(cfg.Influx.FlushInterval),
		QueueSize:           cfg.Influx.QueueSize,
		ShutdownTimeout:     time.Duration(cfg.ShutdownTimeout),
		Metrics:             ingest.NewMetrics(reg),
		Logger:              log,
	})

	var src source
	var mqttWhere string
	if cfg.MQTT.URL == "" {
		var auth ingest.AuthenticateFunc
		if cfg.MQTT.DeviceAuth {
			// A device's password is the secret the registry issued it; the
			// broker has checked the ids already.
			auth = ingest.SecretAuth(store.CheckDeviceSecret)
		}
		b, err := ingest.NewBroker(in, ingest.BrokerOptions{
			Listen: cfg.MQTT.Listen, DeviceTopics: cfg.MQTT.DeviceTopics, Logger: log, Authenticate: auth,
			MaxConnections: cfg.MQTT.MaxConnections, MaxPacketSize: cfg.MQTT.MaxPacketSize,
			ConnectTimeout: time.Duration(cfg.MQTT.ConnectTimeout),
		})
		if err != nil {
			return err
		}
		src, mqttWhere = b, "embedded broker on "+b.Addr().String()
	} else {
		tlsCfg, err := ingest.TLSConfig(cfg.MQTT.URL, cfg.MQTT.TLSCAFile)
		if err != nil {
			return err
		}
		s, err := ingest.NewSubscriber(in, ingest.SubscriberOptions{
			URL: cfg.MQTT.URL, ClientID: cfg.MQTT.ClientID,
			Username: cfg.MQTT.Username, Password: cfg.MQTT.Password.Reveal(),
			TLS: tlsCfg, SharedGroup: cfg.MQTT.SharedGroup, Logger: log,
		})
		if err != nil {
			return err
		}
		src, mqttWhere = s, "external broker "+config.RedactURL(cfg.MQTT.URL)
	}
	src = kafka.Source(in, src)

	// One token cache for the API and the web page, so that a revocation
	// through either takes effect in both at once.
	tokens := devices.NewTokens(store, devices.TokenOptions{})
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", cfg.HTTP.Addr, err)
	}
	proxies, err := api.ParseProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trusted_proxies: %w", err)
	}
	checks := []api.Check{
		{Name: "mqtt", Fn: func(context.Context) error { return src.Ready() }},
		{Name: "database", Fn: func(ctx context.Context) error { return store.Ping(ctx) }},
		{Name: "influxdb", Fn: func(ctx context.Context) error {
			if err := in.WriteError(); err != nil {
				return err
			}
			return tsdb.Ping(ctx)
		}},
	}
	srv := api.NewServer(api.NewRouter(api.RouterOptions{
		Registry: reg, MetricsToken: cfg.HTTP.MetricsToken.Reveal(), Checks: checks, TrustedProxies: proxies, Logger: log,
		API:      newAPI(cfg, store, tokens, engine, in, tsdb, notifier, checks, log),
		Webhooks: newWebhooks(cfg, notifier, log), Unsubscribe: notifier.UnsubscribeHandler(),
		Web: newWeb(cfg, store, tokens, engine, tsdb, notifier, log),
	}), api.ServerOptions{ReadTimeout: time.Duration(cfg.HTTP.ReadTimeout), WriteTimeout: time.Duration(cfg.HTTP.WriteTimeout),
		IdleTimeout: time.Duration(cfg.HTTP.IdleTimeout), Logger: log})
	if err := tsdb.Ping(ctx); err != nil {
		// Not fatal: telemetry waits unacknowledged until InfluxDB answers.
		log.Warn("influxdb not reachable yet; ingest will wait for it", "url", config.RedactURL(cfg.Influx.URL), "err", err)
	}
	log.Info("proactive serving", "version", version, "http", ln.Addr().String(), "mqtt", mqttWhere,
		"influxdb", config.RedactURL(cfg.Influx.URL), "bucket", cfg.Influx.Bucket)

	rulesStopped := make(chan struct{})
	checkpoint := rules.NewCheckpoint(engine, rules.CheckpointOptions{
		Path: cfg.Rules.SnapshotPath, Interval: time.Duration(cfg.Rules.SnapshotInterval), History: history,
		RebuildTimeout: time.Duration(cfg.Rules.RebuildTimeout), Stopped: rulesStopped, Logger: log, Partitions: parts,
	})
	checkpoint.Restore(ctx)

	deadline := time.Duration(cfg.ShutdownTimeout)
	err = lifecycle.Run(ctx, deadline,
		lifecycle.Part{Name: "http", Run: lifecycle.ServeHTTP(srv, ln, 5*time.Second)},
		// Webhooks stop after the notifier, whose last changes queue events.
		lifecycle.Part{Name: "webhooks", Run: newDispatcher(cfg, store, reg, log).Run},
		// The notifier outlives the rule engine, whose last alerts it
		// takes, and drains its in-flight sends when stopped.
		lifecycle.Part{Name: "notify", Run: notifier.Run},
		// The last snapshot is taken once the rules have stopped: it holds
		// every sample they took.
		lifecycle.Part{Name: "rule snapshots", Run: checkpoint.Run},
		// The rules stop after ingest, whose final batches they evaluate.
		lifecycle.Part{Name: "rules", Run: func(ctx context.Context) error { defer close(rulesStopped); return engine.Run(ctx) }},
		lifecycle.Part{Name: "maintenance feed", Run: feed}, // new records reach the rules within seconds
		lifecycle.Part{Name: "rules reload", Run: lifecycle.OnSignal(func() {
			if n, err := reloadRules(cfg, engine); err != nil {
				log.Error("rules not reloaded; the loaded rules keep running", "problems", err.Error())
			} else {
				log.Info("rules reloaded", "rules", n)
			}
		}, syscall.SIGHUP)},
		lifecycle.Part{Name: "mqtt", Run: src.Run},
		// The ingester stops before the source, so that its final flush is
		// acknowledged over a connection that is still open.
		// Unacknowledged messages stay with the broker or device.
		lifecycle.Part{Name: "ingest", Run: in.Run, Stop: deadline + time.Second},
	)
	log.Info("stopped", "points_written", in.PointsWritten())
	return err
}
