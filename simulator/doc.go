// Package simulator publishes virtual fleets with injected faults, and
// recorded telemetry, to the platform over MQTT, the way devices do: for
// rule engineering, demos and load. It speaks to the platform only over
// MQTT and imports none of ingest, rules or notify.
//
// A Scenario (a YAML file, see ParseScenario and README.md beside this
// file) describes device models with their metrics (baseline, noise, daily
// cycle, correlation with a load and an ambient signal), fleet sizes, faults
// (onset at a time or at a rate per device-day; linear, exponential, step
// or intermittent; the metrics they move and how; a breakdown after which
// the device stops or metrics pin) and device quirks (clock skew, bursts of
// late data, outages). A Generator turns it into messages without a broker:
// the same scenario, seed and start give the same messages. A Replay holds
// recorded telemetry read from a CSV file (C-MAPSS included, see CMAPSS).
//
// A Simulator publishes either: first the history before the live start
// (the scenario's backfill), device by device in large batches as fast as
// the broker acknowledges, then the live part in time order at a chosen
// speed, QoS 1, with online and offline statuses, and the ground truth of
// what it injected (Truth) written as each fault starts. Devices may log in
// with credentials of their own (Options.Credentials, ReadCredentials), and
// LoadTest makes a large fleet for load.
//
// Score compares the alerts of the platform with the ground truth: per fault
// detected, late or missed with its lead time, per rule precision, recall
// and median lead time, and the alerts no fault explains.
package simulator
