package simulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proactivehq/proactive"
)

// Options configure a Simulator. Zero fields get the defaults noted.
type Options struct {
	// Scenario is the fleet to simulate; Replay the recorded telemetry to
	// publish instead. One of them is required.
	Scenario *Scenario
	Replay   *Replay
	// Start is when the scenario's live part begins; zero takes the
	// scenario's start, or the time Run begins.
	Start time.Time
	// Broker is the MQTT broker's URL: mqtt:// or tcp:// (plain), mqtts://
	// (TLS); default mqtt://127.0.0.1:1883. User information in the URL is
	// used when Username is empty.
	Broker             string
	Username, Password string
	// Credentials holds each device's secret by device id: every device
	// then has its own connection (Connections must be zero or the fleet's
	// size) and authenticates as the platform's broker expects it,
	// username = client id = device id and password = its secret.
	Credentials map[string]string
	TLS         *tls.Config
	// TopicPrefix is the first level of the devices' topics, default
	// "devices".
	TopicPrefix string
	// Speed is how many simulated seconds pass per second of the live
	// part: 1 is real time, 3600 an hour per second, +Inf as fast as the
	// broker acknowledges. Zero takes the scenario's speed, or 1.
	Speed float64
	// Connections is how many MQTT connections carry the devices. Zero
	// gives each device its own connection (client id = device id, with
	// its offline status as will) up to 100 devices, and 8 shared
	// connections for larger fleets.
	Connections int
	// ClientID prefixes the client ids of shared connections (PREFIX-1,
	// PREFIX-2, ...), default "proactive-sim".
	ClientID string
	// MaxInflight bounds the unacknowledged publishes per connection,
	// default 1000; publishing waits for acknowledgements beyond it.
	MaxInflight int
	// BatchSize is the most readings one message carries when history is
	// published as fast as possible (backfill, or Speed +Inf), default
	// 500; payloads stay under 60 KiB whatever it is.
	BatchSize int
	// Truth receives the ground truth: every fault as its onset passes, as
	// JSON lines, or as CSV with TruthCSV.
	Truth    io.Writer
	TruthCSV bool
	// Maintenance receives the maintenance records of the scenario's
	// repairs as CSV in the format of `proactive devices import
	// --maintenance` (MaintenanceCSVHeader), each as its time passes; the
	// header comes at the start, so that a run without repairs leaves a
	// file that imports nothing.
	Maintenance io.Writer
	// Progress receives a progress line at most every ProgressInterval
	// (default 1s); nil disables it. With ProgressInPlace each line
	// overwrites the previous one (for a terminal).
	Progress         io.Writer
	ProgressInterval time.Duration
	ProgressInPlace  bool
	// DrainTimeout bounds the wait for the last acknowledgements at the
	// end, default 15s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Now is the wall clock, default time.Now.
	Now func() time.Time
}

// maxEarly is how early a message of the live part may go out: sleeping
// for each message of a large fleet (1,000 a second for 10,000 devices at
// 1 per 10 s) would cost more CPU than publishing them, so messages due
// within maxEarly go together.
const maxEarly = 20 * time.Millisecond

// feed is what a Simulator publishes: a scenario's Generator or a Replay.
type feed interface {
	// Next returns the next message of the fleet in simulated time order.
	Next() (Message, bool)
	// nextOf returns device i's next message if it is before t.
	nextOf(i int, t time.Time) (Message, bool)
}

// Simulator publishes a simulated or recorded fleet over MQTT, as the
// devices themselves would.
type Simulator struct {
	o       Options
	log     *slog.Logger
	feed    feed
	ids     []string
	start   time.Time // the live part's first simulated instant
	end     time.Time // zero: no end
	truth   []Truth
	truthAt int // truth[:truthAt] are written
	// wallClock keeps the live part from running ahead of the wall clock
	// (Scenario.CatchUp).
	wallClock bool
	caughtUp  atomic.Bool
	maint     []proactive.Maintenance
	maintAt   int // maint[:maintAt] are written

	sent, acked, failed atomic.Int64
	connected           atomic.Int64
	reconnects          atomic.Int64
	clock               atomic.Int64 // simulated clock, Unix ms
	backfilled          atomic.Int64 // devices whose history is published
	live                atomic.Bool
	errMu               sync.Mutex
	firstErr            error
}

// New checks the options and prepares the run; Run connects and publishes.
func New(o Options) (*Simulator, error) {
	if (o.Scenario == nil) == (o.Replay == nil) {
		return nil, errors.New("simulator: give a scenario or a replay, one of them")
	}
	if o.Broker == "" {
		o.Broker = "mqtt://127.0.0.1:1883"
	}
	u, err := url.Parse(o.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("simulator: broker %q is not a URL like mqtt://host:1883", o.Broker)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "ssl", "tls":
	default:
		return nil, fmt.Errorf("simulator: broker scheme %q is not mqtt://, tcp:// or mqtts://", u.Scheme)
	}
	if o.Username == "" && u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "devices"
	}
	if o.Speed == 0 && o.Scenario != nil {
		o.Speed = o.Scenario.Speed
	}
	if o.Speed == 0 {
		o.Speed = 1
	}
	if o.Speed < 0 || math.IsNaN(o.Speed) {
		return nil, fmt.Errorf("simulator: speed %v must be positive", o.Speed)
	}
	if o.ClientID == "" {
		o.ClientID = "proactive-sim"
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 1000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Simulator{o: o, log: o.Logger.With("component", "simulator")}
	if o.Scenario != nil {
		st := o.Start
		if st.IsZero() {
			st = o.Scenario.Start
		}
		if st.IsZero() {
			st = o.Now().Truncate(time.Millisecond)
		}
		if o.Scenario.CatchUp > 0 && !math.IsInf(o.Speed, 1) {
			st, s.wallClock = st.Add(-o.Scenario.CatchUp), true
		}
		g := NewGenerator(o.Scenario, st)
		s.feed, s.start, s.end, s.truth, s.maint = g, g.Start(), g.End(), g.Truth(), g.Maintenance()
		for _, d := range g.Devices() {
			s.ids = append(s.ids, d.ID)
		}
		if math.IsInf(o.Speed, 1) {
			if s.end.IsZero() {
				return nil, errors.New("simulator: as fast as possible (speed max) needs a duration")
			}
			s.start = s.end // all of it is published like a backfill
		}
	} else {
		s.feed, s.ids = o.Replay, o.Replay.Devices()
		s.start, _ = o.Replay.Span()
		if math.IsInf(o.Speed, 1) {
			_, last := o.Replay.Span()
			s.start = last.Add(time.Millisecond)
		}
	}
	if len(s.ids) == 0 {
		return nil, errors.New("simulator: no devices")
	}
	if o.Credentials != nil {
		if o.Connections > 0 && o.Connections != len(s.ids) {
			return nil, fmt.Errorf("simulator: devices with credentials need a connection each: %d connections for %d devices", o.Connections, len(s.ids))
		}
		s.o.Connections = len(s.ids)
		var missing []string
		for _, id := range s.ids {
			if o.Credentials[id] == "" {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			more := ""
			if len(missing) > 10 {
				missing, more = missing[:10], fmt.Sprintf(" and %d more", len(missing)-10)
			}
			return nil, fmt.Errorf("simulator: no credentials for %s%s", strings.Join(missing, ", "), more)
		}
	}
	if s.o.Connections <= 0 {
		if len(s.ids) <= 100 {
			s.o.Connections = len(s.ids)
		} else {
			s.o.Connections = 8
		}
	}
	s.o.Connections = min(s.o.Connections, len(s.ids))
	return s, nil
}

// Stats are a run's counts so far.
type Stats struct {
	// Devices is the fleet's size; Connections the MQTT connections
	// opened.
	Devices, Connections int
	// Sent counts messages published, Acked those the broker acknowledged
	// and Failed those it did not.
	Sent, Acked, Failed int64
	// Clock is the simulated time of the last message.
	Clock time.Time
	// FaultsStarted counts the faults whose onset has passed, of
	// FaultsPlanned.
	FaultsStarted, FaultsPlanned int
}

// Stats returns the counts so far; it may be called while Run runs.
func (s *Simulator) Stats() Stats {
	st := Stats{
		Devices: len(s.ids), Connections: int(s.connected.Load()),
		Sent: s.sent.Load(), Acked: s.acked.Load(), Failed: s.failed.Load(),
		FaultsPlanned: len(s.truth),
	}
	if ms := s.clock.Load(); ms != 0 {
		st.Clock = time.UnixMilli(ms).UTC()
	}
	for _, t := range s.truth {
		if t.Onset.After(st.Clock) {
			break
		}
		st.FaultsStarted++
	}
	return st
}

// Run connects the devices, publishes the history before the live start as
// fast as the broker takes it, then the live part at the chosen speed,
// until the end of the run or until ctx ends; then it waits for the last
// acknowledgements, publishes every device's offline status and
// disconnects. It returns nil when it ran to the end or was stopped by ctx,
// and an error when it could not connect or publishes failed.
func (s *Simulator) Run(ctx context.Context) error {
	pub, err := s.connect(ctx)
	if err != nil {
		return err
	}
	progressDone := make(chan struct{})
	progressStop := make(chan struct{})
	go func() {
		defer close(progressDone)
		s.progressLoop(progressStop)
	}()
	runErr := pub.announce(ctx)
	if runErr == nil {
		runErr = s.publishAll(ctx, pub)
	}
	if ctx.Err() != nil {
		s.log.Info("stopping: waiting for the last acknowledgements", "in_flight", s.sent.Load()-s.acked.Load()-s.failed.Load(),
			"drain_timeout", s.o.DrainTimeout.String())
	}
	drainErr := pub.close(s.o.DrainTimeout)
	close(progressStop)
	<-progressDone
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		runErr = nil // stopped by the caller: a normal end
	}
	if n := s.failed.Load(); n > 0 {
		runErr = errors.Join(runErr, fmt.Errorf("%d publishes failed, the first: %w", n, s.publishErr()))
	}
	st := s.Stats()
	reason := "stopped"
	if ctx.Err() == nil && runErr == nil {
		reason = "reached its end: the scenario's duration ran out, or the replay's last row was sent"
	} else if ctx.Err() == nil {
		reason = "publishing failed"
	}
	s.log.Info("simulation ended", "reason", reason, "messages", st.Sent, "acked", st.Acked, "failed", st.Failed, "reconnects", s.reconnects.Load(),
		"clock", st.Clock.Format(time.RFC3339), "faults_started", st.FaultsStarted)
	return errors.Join(runErr, drainErr)
}

func (s *Simulator) publishErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.firstErr
}

func (s *Simulator) recordErr(err error) {
	s.failed.Add(1)
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.firstErr == nil {
		s.firstErr = err
		s.log.Warn("publish failed", "err", err)
	}
}

// publishAll publishes the history device by device, then the live part in
// time order.
func (s *Simulator) publishAll(ctx context.Context, pub *publisher) error {
	// Each device's history in few large messages: the platform then
	// takes a device's week in one go, and its windows are full by the
	// time the next device comes.
	if s.o.Maintenance != nil {
		if _, err := io.WriteString(s.o.Maintenance, MaintenanceCSVHeader+"\n"); err != nil {
			return fmt.Errorf("write maintenance: %w", err)
		}
	}
	online := make([]bool, len(s.ids))
	for i := range s.ids {
		online[i] = true
		// One batch at a time, of readings or of events: a device's
		// messages keep their order across its two topics.
		var batch Message
		size := 0
		flush := func() error {
			if len(batch.Readings) == 0 && len(batch.Events) == 0 {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			err := pub.publish(ctx, &batch)
			batch.Readings, batch.Events, size = nil, nil, 0
			return err
		}
		add := func(m *Message, bytes int, events bool) error {
			if (len(batch.Events) > 0) != events && (len(batch.Readings) > 0 || len(batch.Events) > 0) ||
				len(batch.Readings)+len(batch.Events) >= s.o.BatchSize || size+bytes > maxPayload {
				if err := flush(); err != nil {
					return err
				}
			}
			if batch.Readings == nil && batch.Events == nil {
				batch = Message{Device: m.Device, At: m.At, dev: i}
			}
			size += bytes
			return nil
		}
		for {
			m, ok := s.feed.nextOf(i, s.start)
			if !ok {
				break
			}
			if m.Status {
				online[i] = m.Online // statuses of the past are not sent
				continue
			}
			for _, e := range m.Events {
				if err := add(&m, eventSize(&e), true); err != nil {
					return err
				}
				batch.Events = append(batch.Events, e)
			}
			for _, r := range m.Readings {
				if err := add(&m, readingSize(&r), false); err != nil {
					return err
				}
				batch.Readings = append(batch.Readings, r)
				s.setClock(r.Time)
			}
		}
		if err := flush(); err != nil {
			return err
		}
		s.backfilled.Add(1)
	}
	s.setClock(s.start)
	if err := s.writeTruth(s.start); err != nil {
		return err
	}
	// A device that is off at the live start says so now.
	for i, on := range online {
		if !on {
			if err := pub.publish(ctx, &Message{Device: s.ids[i], Status: true, dev: i}); err != nil {
				return err
			}
		}
	}
	pub.online = online

	s.live.Store(true)
	wall0 := s.o.Now()
	s.logLive(wall0)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, ok := s.feed.Next()
		if !ok {
			if !s.end.IsZero() {
				// Faults and repairs after the last message, before the end.
				return s.writeTruth(s.end)
			}
			return nil
		}
		if !math.IsInf(s.o.Speed, 1) {
			due := wall0.Add(time.Duration(float64(m.At.Sub(s.start)) / s.o.Speed))
			if s.wallClock && m.At.After(due) {
				// Caught up: from here the samples follow the wall clock.
				due = m.At
				if !s.caughtUp.Swap(true) {
					s.log.Info("the simulated clock has caught up with the wall clock: samples now follow it in real time",
						"next_sample", m.At.Format(time.RFC3339))
				}
			}
			if wait := due.Sub(s.o.Now()); wait > maxEarly {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		s.setClock(m.At)
		if err := s.writeTruth(m.At); err != nil {
			return err
		}
		if err := pub.publish(ctx, &m); err != nil {
			return err
		}
		if m.Status {
			online[m.dev] = m.Online
		}
	}
}

func (s *Simulator) setClock(t time.Time) {
	s.clock.Store(t.UnixMilli())
}

// writeTruth writes the faults whose onset is at or before t, and the
// maintenance records up to t.
func (s *Simulator) writeTruth(t time.Time) error {
	for s.maintAt < len(s.maint) && !s.maint[s.maintAt].Time.After(t) {
		m := s.maint[s.maintAt]
		s.maintAt++
		if s.o.Maintenance == nil {
			continue
		}
		if _, err := s.o.Maintenance.Write(append(AppendMaintenanceCSV(nil, m), '\n')); err != nil {
			return fmt.Errorf("write maintenance: %w", err)
		}
	}
	for s.truthAt < len(s.truth) && !s.truth[s.truthAt].Onset.After(t) {
		tr := s.truth[s.truthAt]
		s.truthAt++
		if s.o.Truth == nil {
			continue
		}
		if s.truthAt == 1 && s.o.TruthCSV {
			if _, err := io.WriteString(s.o.Truth, TruthCSVHeader+"\n"); err != nil {
				return fmt.Errorf("write ground truth: %w", err)
			}
		}
		var line []byte
		if s.o.TruthCSV {
			line = tr.AppendCSV(nil)
		} else {
			line = tr.AppendJSON(nil)
		}
		if _, err := s.o.Truth.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write ground truth: %w", err)
		}
	}
	return nil
}

// progressLoop writes the progress line until stop is closed, and a last
// one then.
func (s *Simulator) progressLoop(stop <-chan struct{}) {
	if s.o.Progress == nil {
		<-stop
		return
	}
	t := time.NewTicker(s.o.ProgressInterval)
	defer t.Stop()
	lastSent, lastAt := int64(0), s.o.Now()
	write := func(final bool) {
		now := s.o.Now()
		st := s.Stats()
		rate := float64(st.Sent-lastSent) / max(now.Sub(lastAt).Seconds(), 1e-3)
		lastSent, lastAt = st.Sent, now
		var b strings.Builder
		if s.o.ProgressInPlace {
			b.WriteString("\r\x1b[K")
		}
		fmt.Fprintf(&b, "%d devices, %d connections | %.0f msgs/s | %d sent, %d acked", st.Devices, st.Connections, rate, st.Sent, st.Acked)
		if st.Failed > 0 {
			fmt.Fprintf(&b, ", %d failed", st.Failed)
		}
		if !st.Clock.IsZero() {
			fmt.Fprintf(&b, " | simulated %s", st.Clock.Format("2006-01-02 15:04"))
		}
		if s.live.Load() {
			switch {
			case math.IsInf(s.o.Speed, 1):
				b.WriteString(" (max speed)")
			case s.caughtUp.Load():
				b.WriteString(" (real time)")
			case s.wallClock:
				fmt.Fprintf(&b, " (x%g, catching up with the wall clock)", s.o.Speed)
			default:
				fmt.Fprintf(&b, " (x%g)", s.o.Speed)
			}
		} else {
			fmt.Fprintf(&b, " (history: %d/%d devices)", s.backfilled.Load(), st.Devices)
		}
		if st.FaultsPlanned > 0 {
			fmt.Fprintf(&b, " | faults %d/%d started", st.FaultsStarted, st.FaultsPlanned)
		}
		if !s.o.ProgressInPlace || final {
			b.WriteByte('\n')
		}
		io.WriteString(s.o.Progress, b.String())
	}
	for {
		select {
		case <-stop:
			write(true)
			return
		case <-t.C:
			write(false)
		}
	}
}

// logLive says, as the live part begins, how long it runs: until stopped,
// or until when, so that a fleet that stops does not surprise anyone.
func (s *Simulator) logLive(wall0 time.Time) {
	switch {
	case s.end.IsZero():
		s.log.Info("live part started; the fleet runs until stopped", "speed", s.o.Speed, "catching_up", s.wallClock)
	case math.IsInf(s.o.Speed, 1):
	default:
		// With wallClock the end comes later than this, past the catch-up.
		wall := wall0.Add(time.Duration(float64(s.end.Sub(s.start)) / s.o.Speed))
		if s.wallClock && s.end.After(wall) {
			wall = s.end
		}
		s.log.Info("live part started; the fleet stops when the scenario's duration runs out",
			"duration", proactive.FormatDuration(s.end.Sub(s.start)), "speed", s.o.Speed,
			"ends_at", wall.Local().Format("Mon 2 Jan 15:04:05 MST"))
	}
}
