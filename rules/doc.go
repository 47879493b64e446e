package rules

// The rule language
//
// A rule's `when` is an expr (github.com/expr-lang/expr) boolean evaluated
// for one device at a time, at the time of the device's newest sample (event
// time), and for rules that read since_seen() also every tick of the clock.
//
// Names:
//
//	compressor_current        the device's latest value of the metric; NaN if it never sent one
//	device.model              the registered model, or the model tag of its samples
//	device.age_days           days since installation; NaN when unknown
//
// Window functions take (metric, window). The window is a quoted duration
// with the units s, m, h, d and w ("90s", "1h", "7d", "2w"), fixed when the
// rule loads. Each (metric, window) pair is one Window per device: 60
// buckets of window/60, aligned to multiples of the bucket width since the
// Unix epoch, so the window at time now covers whole buckets and can reach
// up to one bucket width (1/60 of the window) further back than now-window.
//
//	avg(m, w)                 mean of the samples in the window; NaN if none
//	min(m, w), max(m, w)      exact extremes; NaN if none
//	sum(m, w)                 sum; 0 if none
//	count(m, w)               number of samples; 0 if none
//	last(m, w)                newest sample's value in the window; NaN if none
//	delta(m, w)               newest minus oldest sample in the window; NaN if none, 0 with one
//	rate(m, w)                delta per second between the oldest and newest sample; NaN with fewer than 2
//	slope(m, w)               least-squares slope of value over time, per second; NaN with fewer than 2
//	stddev(m, w)              population standard deviation; NaN if none
//	percentile(m, w, p)       p-th percentile (p a number 0..100), interpolated from the
//	                          buckets: exact with one sample per bucket, otherwise an estimate
//	forecast(m, threshold)    time until the least-squares trend of the last 24h reaches
//	                          threshold; forecast(m, threshold, "7d") picks the trend window.
//	                          0 when already there; Never (longer than any duration) when the
//	                          trend is flat, moves away, or has fewer than 2 samples
//	since_seen()              time since the device's newest sample; on the clock's ticks, no
//	                          earlier than when telemetry intake last resumed (Engine.SetIntake):
//	                          the platform's own outage is not the device's silence
//
// Events, maintenance and the fleet (Engine.ConsumeEvents,
// ConsumeMaintenance and MaintenanceFeed bring them in; an event evaluates
// its device's rules at its time as a sample does):
//
//	events(code, window)      the device's events with that code in (now-window, now], exact;
//	                          a trailing * matches a prefix: events("E1*", "24h")
//	since_event(code)         time since the newest such event (prefix too)
//	since_maintenance()       time since the last maintenance of the rule's component;
//	since_maintenance("fan")  of another component
//	model_avg(m, w)           mean over the model's devices reporting m within w of each
//	model_stddev(m, w)        one's avg(m, w) (population stddev; count of devices): see
//	model_count(m, w)         baseline.go for how they join, leave and how exact they are
//	sqrt(x), log(x), exp(x)   natural log; NaN outside the domain
//
// The since_ functions return durations, NeverSeen (duration("876000h"),
// 100 years) when there is none; rules that read them are evaluated on the
// timer too. A code is a literal ([A-Za-z0-9_.:-]{1,64}, optionally ending
// in *), checked at load like the windows. A rule with
// `reset_on_maintenance: true` reads every window only from the first
// bucket at or after its component's last maintenance (any kind): no
// sample of the old part counts, however late it arrives, and up to one
// bucket width of the new part's first samples is left out with it. A
// device keeps, per code, the event times within the longest events()
// window of the loaded rules (plus the late tolerance) and the newest
// time; MaxEventCodes and MaxEventTimes bound it. Snapshots hold events
// and maintenance times; rebuilds and backtests feed them at their times
// from History.Events/Maintenance and BacktestOptions.
//
// count, sum, min, max and last here are these window functions, not expr's
// builtins of the same names; abs, ceil, floor, round, duration("3d"),
// let-bindings, the ternary operator and the usual arithmetic and logic are
// expr's. All sums are exact float64 sums of what the buckets hold: avg,
// sum, count, min, max, last, delta, stddev and slope are exact over the
// bucket-aligned window described above; percentile is the one estimate.
//
// No data: functions over an empty window return NaN (count and sum 0), and
// every comparison with NaN is false, so a rule does not fire on missing
// data. A rule that wants to say "no data" says it: `count(m, "1h") == 0`,
// or `since_seen() > duration("2h")` for a silent device.
//
// Limits, for rules from people other than the operator: an expression
// of at most 4,096 bytes and MaxExprNodes nodes, and MemoryBudget per
// evaluation; an evaluation over budget is an error, counted for the rule,
// and leaves its alerts as they were.
//
// Lifecycle: when the condition holds, the alert is pending; once it has held
// for `for`, it fires (unless the device's component is in its cooldown, or
// already has a firing alert from another rule, in which case it waits
// pending); once the condition has been false for `clear_for` (default
// `for`) it resolves. `predict` is evaluated when the alert fires and on
// every evaluation while it fires; the alert carries it as TimeToFailure.
// `contact` (auto, the default; review; none) is who hears of the alert:
// the alert carries it to notify, which texts the customer, holds the
// ticket for a dispatcher's review, or never texts (proactive.Contact).
//
// Restart: Engine.RebuildHistory loads each window's buckets older than
// the tail (RebuildTail: the longest for plus clear_for) as one aggregate
// per device, metric and bucket (Window.Merge), then replays the tail's
// samples through the rules; only the tail is evaluated. StoredHistory
// builds each aggregate from the stored samples in time order with the
// float32 accumulation Window.Add runs, so a rebuilt bucket is the live
// bucket bit for bit, and every function (avg, min, max, sum, count, last,
// delta, rate, stddev, slope, percentile, forecast) gives what it gave live
// when the device's samples arrived in time order. Otherwise:
//   - a sample that arrived late, behind a newer one of its bucket, was
//     added live with the shift identities and is added in time order on
//     rebuild: count, min, max, last and delta are still exact; sum, avg,
//     stddev, slope and forecast differ by the float32 rounding of the
//     spread inside that bucket (see Window);
//   - a sample refused live (later than the tolerance) is stored, so the
//     rebuild counts it; samples at one time, which InfluxDB keeps once,
//     count once;
//   - an aggregate from elsewhere without moments (BucketAggregate) loses
//     the spread inside each bucket for stddev, slope and forecast.
//
// Alert states are derived from the tail only: an alert whose episode
// began in the tail comes back as it was (state, active and fired times,
// prediction), and the next firing and resolution happen when they would
// have. One whose condition has held since before the tail comes back in
// the same state, active from the tail's first evaluation; a condition
// that flapped (true for less than `for` at a time) across the whole tail
// while its alert fired is not recognised as firing; a cooldown that began
// before the tail is not known. A rebuild without aggregates (no bucket
// source, or one that fails) replays every sample of Lookback instead.
//
// Snapshots: Engine.Snapshot writes every device's windows (their buckets
// as held in memory), latest values, times and alert states, cooldowns
// included, in a versioned binary format with a CRC-32C; Engine.Restore
// reads it back whole, or refuses it (ErrSnapshot) and changes nothing.
// Windows are matched by metric and length: a window the rules no longer
// read is dropped, one they read that the snapshot lacks (a new rule's) is
// loaded from history; alert states carry over by rule name, as on a
// reload. The late tolerance is not part of a window's identity: buckets
// do not depend on it. Engine.RebuildSince then replays from history the
// gap since the snapshot's time minus the late tolerance: each window
// drops its buckets from the one holding that time on and takes their
// samples again, so none counts twice, and the samples newer than their
// device's last evaluation go through the rules from the restored states,
// notifying nothing. So a restart from a snapshot holds what an engine
// that never stopped holds, alerts and cooldowns included, and fires next
// when it would have; except that a sample delivered after the snapshot
// more than the late tolerance behind the snapshot's time (from a device
// silent for longer, uploading a backlog) is not counted, and late samples
// are added in time order (see above). A snapshot older than
// MaxSnapshotGap is set aside for RebuildHistory.
