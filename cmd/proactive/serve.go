package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
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
	if err := fs.Parse(e.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg.Log.Level, cfg.Log.Format, e.stderr)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	influx := influx.New(influx.Options{
		URL: cfg.Influx.URL, Token: cfg.Influx.Token.Reveal(), Org: cfg.Influx.Org, Bucket: cfg.Influx.Bucket,
	})
	defer influx.Close()
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
	store, err := devices.Open(ctx, cfg.DB.Reveal())
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer store.Close()
	deviceInfo := func(id proactive.DeviceID) (rules.DeviceInfo, bool) {
		model, age, ok := store.DeviceInfo(id)
		return rules.DeviceInfo{Model: model, AgeDays: age}, ok
	}
	notifier, err := newNotifier(cfg, store, reg, log, e.stdout)
	if err != nil {
		return err
	}
	engine := rules.New(rules.Options{Registerer: reg, Logger: log, Device: deviceInfo, Notify: notifier.Alerts})
	if probs := engine.Load(specs); len(probs) > 0 {
		return fmt.Errorf("rules:\n%w", probs)
	}
	var sink ingest.SinkFunc
	if cfg.Rules.Enabled {
		sink = engine.Consume
		log.Info("rules loaded", "rules", len(specs), "paths", cfg.Rules.Paths)
	} else {
		log.Info("rules disabled on this instance (rules.enabled: false)")
	}

	in := ingest.New(ingest.Options{
		Writer: influx,
		Sink:   sink,
		Lookup: func(id proactive.DeviceID) (string, bool) {
			model, _, ok := store.DeviceInfo(id)
			return model, ok
		},
		RequireRegistration: cfg.Ingest.RequireRegistration,
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
		b, err := ingest.NewBroker(in, ingest.BrokerOptions{
			Listen: cfg.MQTT.Listen, DeviceTopics: cfg.MQTT.DeviceTopics, Logger: log,
			// With mqtt.device_auth, a device's password is the secret the
			// registry issued it; the broker has checked the ids already.
			Authenticate: func() ingest.AuthenticateFunc {
				if !cfg.MQTT.DeviceAuth {
					return nil
				}
				return func(ctx context.Context, _, username string, password []byte) error {
					ok, err := store.CheckDeviceSecret(ctx, proactive.DeviceID(username), string(password))
					if err != nil {
						return err
					}
					if !ok {
						return ingest.ErrBadCredentials
					}
					return nil
				}
			}(),
		})
		if err != nil {
			return err
		}
		src, mqttWhere = b, "embedded broker on "+b.Addr().String()
	} else {
		tlsCfg, err := mqttTLS(cfg.MQTT.URL, cfg.MQTT.TLSCAFile)
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
		src, mqttWhere = s, "external broker "+redactURL(cfg.MQTT.URL)
	}

	// One token cache for the API and the web page, so that a revocation
	// through either takes effect in both at once.
	tokens := devices.NewTokens(store, devices.TokenOptions{})
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", cfg.HTTP.Addr, err)
	}
	srv := &http.Server{
		Handler: newRouter(routerOptions{
			Registry: reg,
			Checks: []check{
				{"mqtt", func(context.Context) error { return src.Ready() }},
				{"database", func(ctx context.Context) error { return store.Ping(ctx) }},
				{"influxdb", func(ctx context.Context) error {
					if err := in.WriteError(); err != nil {
						return err
					}
					return influx.Ping(ctx)
				}},
			},
			Logger:   log,
			API:      newAPI(cfg, store, tokens, engine, in, influx, notifier, log),
			Webhooks: newWebhooks(cfg, notifier, log),
			Web:      newWeb(cfg, store, tokens, engine, influx, notifier, log),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := influx.Ping(ctx); err != nil {
		// Not fatal: telemetry waits unacknowledged until InfluxDB answers.
		log.Warn("influxdb not reachable yet; ingest will wait for it", "url", redactURL(cfg.Influx.URL), "err", err)
	}
	log.Info("proactive serving", "version", version, "http", ln.Addr().String(), "mqtt", mqttWhere,
		"influxdb", redactURL(cfg.Influx.URL), "bucket", cfg.Influx.Bucket)

	rebuildRules(ctx, engine, influx, cfg, log)

	// The ingester gets a context of its own: it is stopped before the
	// source, so that its final flush is acknowledged over a connection that
	// is still open. Unacknowledged messages stay with the broker or device.
	ingCtx, stopIngest := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIngest()
	rulesCtx, stopRules := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRules()
	// The notifier outlives the rule engine, whose last alerts it takes,
	// and drains its in-flight sends when stopped.
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNotify()
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- notifier.Run(notifyCtx) }()
	rulesDone := make(chan error, 1)
	go func() { rulesDone <- engine.Run(rulesCtx) }()
	snapshots := cfg.Rules.Enabled && cfg.Rules.SnapshotPath != "" && engine.Lookback() > 0
	snapCtx, stopSnapshots := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSnapshots()
	snapDone := make(chan struct{})
	if snapshots {
		go func() {
			defer close(snapDone)
			snapshotLoop(snapCtx, engine, cfg.Rules.SnapshotPath, time.Duration(cfg.Rules.SnapshotInterval), log)
		}()
	} else {
		close(snapDone)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if n, err := reloadRules(cfg, engine); err != nil {
				log.Error("rules not reloaded; the loaded rules keep running", "problems", err.Error())
			} else {
				log.Info("rules reloaded", "rules", n)
			}
		}
	}()
	srcCtx, stopSource := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSource()
	ingDone := make(chan error, 1)
	srcDone := make(chan error, 1)
	httpDone := make(chan error, 1)
	go func() { ingDone <- in.Run(ingCtx) }()
	go func() { srcDone <- src.Run(srcCtx) }()
	go func() { httpDone <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-srcDone:
		runErr = fmt.Errorf("mqtt stopped: %w", err)
		srcDone <- nil
	case err := <-httpDone:
		runErr = fmt.Errorf("http server stopped: %w", err)
		httpDone <- nil
	}

	deadline := time.Duration(cfg.ShutdownTimeout)
	stopIngest()
	if err := waitFor(ingDone, deadline+time.Second); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("ingest: %w", err))
	}
	stopSource()
	if err := waitFor(srcDone, deadline); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("mqtt: %w", err))
	}
	stopRules() // after ingest, whose final batches it still evaluates
	rulesErr := waitFor(rulesDone, deadline)
	if rulesErr != nil {
		runErr = errors.Join(runErr, fmt.Errorf("rules: %w", rulesErr))
	}
	stopSnapshots()
	<-snapDone
	if snapshots && rulesErr == nil {
		// The rules have stopped: the snapshot holds every sample they took.
		start := time.Now()
		if info, err := writeSnapshot(engine, cfg.Rules.SnapshotPath); err != nil {
			runErr = errors.Join(runErr, err)
		} else {
			log.Info("rule snapshot written", "path", cfg.Rules.SnapshotPath, "devices", info.Devices, "windows", info.Windows,
				"alerts", info.Alerts, "bytes", info.Bytes, "snapshot_time", info.Time, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	stopNotify()
	if err := waitFor(notifyDone, deadline); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("notify: %w", err))
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	log.Info("stopped", "points_written", in.PointsWritten())
	return runErr
}

// waitFor waits for a component's Run to return, at most d.
func waitFor(done <-chan error, d time.Duration) error {
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-time.After(d):
		return fmt.Errorf("did not stop within %s", d)
	}
}

// mqttTLS returns the TLS settings for an mqtts:// URL, nil for plain TCP.
func mqttTLS(rawURL, caFile string) (*tls.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "mqtts" && u.Scheme != "ssl" && u.Scheme != "tls") {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls_ca_file %s: no PEM certificates in it", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// redactURL hides the password of a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparseable url]"
	}
	return u.Redacted()
}

// newLogger returns the process logger: text on a terminal, JSON otherwise,
// unless format says which.
func newLogger(level, format string, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// rebuildRules restores the rule windows and alert states before ingest
// starts, so that a restart forgets no window and fires nothing twice: from
// the snapshot at rules.snapshot_path plus the gap since replayed from
// InfluxDB, or, without a usable snapshot, from InfluxDB history alone. A
// failure (InfluxDB down, Flux disabled) is not fatal: the rules then start
// from what they have, which the log says.
func rebuildRules(ctx context.Context, engine *rules.Engine, influx *influx.Store, cfg Config, log *slog.Logger) {
	if engine.Lookback() <= 0 {
		return // no rules
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Rules.RebuildTimeout))
	defer cancel()
	history := rules.StoredHistory(influx)
	if path := cfg.Rules.SnapshotPath; path != "" {
		info, err := restoreSnapshot(engine, path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			log.Info("no rule snapshot yet; rebuilding the rule windows from influxdb", "path", path)
		case err != nil:
			log.Warn("rule snapshot not used; rebuilding the rule windows from influxdb", "path", path, "err", err)
		default:
			rep, err := engine.RebuildSince(rctx, history, info, start)
			attrs := []any{"path", path, "devices", info.Devices, "windows", info.Windows, "alerts", info.Alerts,
				"bytes", info.Bytes, "snapshot_time", info.Time, "age", start.Sub(info.Time).Round(time.Second),
				"gap_from", rep.From, "gap", rep.Tail.Round(time.Second), "gap_samples", rep.Samples, "new_windows", info.Missing,
				"dropped_windows", info.Skipped, "took", time.Since(start).Round(time.Millisecond)}
			switch {
			case err != nil:
				log.Warn("rule windows restored from the snapshot, but the gap not fully replayed; alerts restart from what was loaded",
					append(attrs, "err", err)...)
			case errors.Is(rep.Fallback, rules.ErrSnapshotStale):
				log.Info("rule snapshot set aside; rule windows rebuilt from influxdb", "path", path, "aggregated", rep.Aggregated,
					"buckets", rep.Buckets, "samples", rep.Samples, "why", rep.Fallback, "took", time.Since(start).Round(time.Millisecond))
			default:
				log.Info("rule windows restored from the snapshot", append(attrs, "fallback", rep.Fallback)...)
			}
			return
		}
	}
	rep, err := engine.RebuildHistory(rctx, history, start)
	if err != nil {
		log.Warn("rule windows not fully rebuilt from influxdb; alerts restart from what was loaded",
			"aggregated", rep.Aggregated, "buckets", rep.Buckets, "samples", rep.Samples, "from", rep.From, "err", err)
		return
	}
	log.Info("rule windows rebuilt from influxdb", "aggregated", rep.Aggregated, "buckets", rep.Buckets, "samples", rep.Samples,
		"from", rep.From, "tail", rep.Tail, "fallback", rep.Fallback, "took", time.Since(start).Round(time.Millisecond))
}

// restoreSnapshot loads the snapshot at path into engine.
func restoreSnapshot(engine *rules.Engine, path string) (rules.SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return rules.SnapshotInfo{}, err
	}
	defer f.Close()
	return engine.Restore(f)
}

// writeSnapshot writes the engine's snapshot to path atomically: to a
// temporary file in the same directory, synced, then renamed over path.
func writeSnapshot(engine *rules.Engine, path string) (rules.SnapshotInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return rules.SnapshotInfo{}, fmt.Errorf("rule snapshot: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return rules.SnapshotInfo{}, fmt.Errorf("rule snapshot: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing to remove
	w := bufio.NewWriterSize(f, 1<<20)
	info, err := engine.Snapshot(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return info, fmt.Errorf("rule snapshot %s: %w", path, err)
	}
	return info, nil
}

// snapshotLoop writes the engine's snapshot every interval until ctx ends.
func snapshotLoop(ctx context.Context, engine *rules.Engine, path string, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			start := time.Now()
			info, err := writeSnapshot(engine, path)
			if err != nil {
				log.Warn("rule snapshot not written; the previous one stays", "err", err)
				continue
			}
			log.Debug("rule snapshot written", "path", path, "devices", info.Devices, "bytes", info.Bytes,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}
}
