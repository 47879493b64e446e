package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingester's Prometheus instruments.
type Metrics struct {
	Messages      *prometheus.CounterVec
	PointsWritten prometheus.Counter
	DeadLetters   *prometheus.CounterVec
	WriteSeconds  prometheus.Histogram
	BatchPoints   prometheus.Histogram
	WriteErrors   *prometheus.CounterVec
	Pending       prometheus.Gauge
	SinkSeconds   prometheus.Histogram
	// ConnectsRefused counts the connections the embedded broker refused
	// or dropped, by reason.
	ConnectsRefused *prometheus.CounterVec

	// messages holds Messages' child for each TopicKind, looked up once:
	// WithLabelValues hashes the label and takes a lock on every call.
	messages [topicKinds]prometheus.Counter
}

// NewMetrics creates the instruments and registers them with reg when reg is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proactive_ingest_messages_total",
			Help: "MQTT messages received, by kind (telemetry, status, events).",
		}, []string{"kind"}),
		PointsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proactive_ingest_points_written_total",
			Help: "Points InfluxDB acknowledged.",
		}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proactive_ingest_dead_letters_total",
			Help: "Rejected messages or entries, by reason.",
		}, []string{"reason"}),
		WriteSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "proactive_ingest_write_seconds",
			Help:    "Latency of one InfluxDB batch write attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		BatchPoints: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "proactive_ingest_batch_points",
			Help:    "Points per InfluxDB batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proactive_ingest_write_errors_total",
			Help: "Failed InfluxDB write attempts, by whether a retry can help.",
		}, []string{"retryable"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "proactive_ingest_pending_messages",
			Help: "Messages received but not yet written and acknowledged (the backlog).",
		}),
		SinkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "proactive_ingest_sink_seconds",
			Help:    "Time the sample and event consumers (rules) took per batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		ConnectsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proactive_mqtt_connects_refused_total",
			Help: "Connections the embedded broker refused or dropped, by reason (client_id_mismatch, bad_credentials, will_topic, auth_unavailable, max_connections, connect_timeout, packet_too_large).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"client_id_mismatch", "bad_credentials", "will_topic", "auth_unavailable", "max_connections", "connect_timeout", "packet_too_large"} {
		m.ConnectsRefused.WithLabelValues(r)
	}
	for _, r := range Reasons {
		m.DeadLetters.WithLabelValues(string(r))
	}
	for _, r := range []string{"true", "false"} {
		m.WriteErrors.WithLabelValues(r)
	}
	for k := range m.messages {
		m.messages[k] = m.Messages.WithLabelValues(kindLabel(TopicKind(k)))
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.PointsWritten, m.DeadLetters, m.WriteSeconds, m.BatchPoints, m.WriteErrors, m.Pending, m.SinkSeconds, m.ConnectsRefused)
	}
	return m
}

// message returns the Messages counter of kind.
func (m *Metrics) message(kind TopicKind) prometheus.Counter {
	if int(kind) < len(m.messages) && m.messages[kind] != nil {
		return m.messages[kind]
	}
	return m.Messages.WithLabelValues(kindLabel(kind)) // Metrics not from NewMetrics
}
