package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/proactivehq/proactive"
)

// The defaults of KafkaOptions.
const (
	DefaultKafkaTopic       = "proactive.telemetry"
	DefaultKafkaEventsTopic = "proactive.events"
	DefaultKafkaGroup       = "proactive"
)

// TopicHeader is the record header that carries the MQTT topic.
const TopicHeader = "topic"

// PartitionFunc is told about partitions of the telemetry topic that this
// instance gains, is about to give up, or has lost; of gives a device's
// partition (Kafka's default partitioner over its id), so that the
// callee knows which devices a partition holds. It is called from the
// Kafka client's group goroutine and blocks the rebalance until it
// returns: Assigned before any record of the partitions is handed on,
// Revoked after their records were stored, evaluated and committed.
type PartitionFunc func(ctx context.Context, partitions []int32, of func(proactive.DeviceID) int32)

// KafkaOptions configure the Kafka consumer (NewKafka) and forwarder
// (NewForwarder). Zero fields get the defaults noted.
type KafkaOptions struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic takes telemetry and statuses, EventsTopic device events:
	// record key the device id, value the MQTT payload, header "topic" the
	// MQTT topic. Defaults proactive.telemetry and proactive.events. The
	// two must have as many partitions: the range balancer then gives a
	// device's telemetry and events to the same instance.
	Topic, EventsTopic string
	// Group is the consumer group, default "proactive".
	Group string
	// TopicPrefix is the MQTT topic prefix (the forwarder's, and the
	// consumer's for records without a topic header), default the
	// ingester's.
	TopicPrefix string
	// Evaluated, when set, blocks until every batch handed to the sinks
	// before the call has been evaluated (rules.Engine.Sync): offsets are
	// committed only after it returns.
	Evaluated func(ctx context.Context) error
	// Assigned, Revoked and Lost are told of partition moves (see
	// PartitionFunc); rules.Partitions has them.
	Assigned, Revoked, Lost PartitionFunc
	// SessionTimeout is how long the group waits for a silent member
	// before its partitions move, default franz-go's 45s.
	SessionTimeout time.Duration
	// RevokeTimeout bounds how long a revoke waits for the records of its
	// partitions to be stored and evaluated, default 30s.
	RevokeTimeout time.Duration
	// ClientOptions are more franz-go options (tests shorten timeouts).
	ClientOptions []kgo.Opt
	Logger        *slog.Logger
}

func (o *KafkaOptions) defaults(prefix string, log *slog.Logger) error {
	if len(o.Brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	if o.Topic == "" {
		o.Topic = DefaultKafkaTopic
	}
	if o.EventsTopic == "" {
		o.EventsTopic = DefaultKafkaEventsTopic
	}
	if o.Group == "" {
		o.Group = DefaultKafkaGroup
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = prefix
	}
	if o.RevokeTimeout <= 0 {
		o.RevokeTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = log
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// keyPartitioner is Kafka's default partitioner: murmur2 of the key.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// KafkaPartition returns the partition, of n, that Kafka's default
// partitioner gives a record keyed by the device id.
func KafkaPartition(id proactive.DeviceID, n int) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: []byte(id)}, n))
}

// Kafka feeds the ingester from the Kafka topics through a consumer group.
// A record's offset is committed only once it is stored and evaluated (or
// dead-lettered), so a killed instance loses nothing: its partitions'
// next owner gets again whatever was not committed.
type Kafka struct {
	in    *Ingester
	o     KafkaOptions
	log   *slog.Logger
	ready atomic.Bool

	mu sync.Mutex
	// pending holds, per partition, its records handed to the ingester and
	// not yet committed, in offset order.
	pending map[topicPartition][]*inflight
	// done holds, per partition, the newest record whose predecessors are
	// all settled: the next commit.
	done     map[topicPartition]*kgo.Record
	nparts   int
	signal   chan struct{}
	commitMu sync.Mutex // one commit at a time, revokes included
}

type topicPartition struct {
	topic     string
	partition int32
}

// inflight is one record in flight and its outcome.
type inflight struct {
	r     *kgo.Record
	state atomic.Int32 // 0 in flight, 1 acked, 2 nacked
}

// NewKafka returns the Kafka source of in; Run connects.
func NewKafka(in *Ingester, o KafkaOptions) (*Kafka, error) {
	if err := o.defaults(in.TopicPrefix(), in.opts.Logger); err != nil {
		return nil, err
	}
	return &Kafka{in: in, o: o, log: o.Logger.With("component", "kafka"),
		pending: map[topicPartition][]*inflight{}, done: map[topicPartition]*kgo.Record{}, signal: make(chan struct{}, 1)}, nil
}

// Ready reports nil once the instance has joined the group.
func (k *Kafka) Ready() error {
	if !k.ready.Load() {
		return errors.New("not in the kafka consumer group")
	}
	return nil
}

// Run consumes until ctx ends, then commits what was stored and evaluated
// and leaves the group (its partitions snapshotted for their next owner).
// Stop the ingester first: its final writes settle the records in flight.
func (k *Kafka) Run(ctx context.Context) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(k.o.Brokers...),
		kgo.ConsumerGroup(k.o.Group),
		kgo.ConsumeTopics(k.o.Topic, k.o.EventsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Records polled are handed on before a rebalance: the revoke
		// then knows every record of its partitions.
		kgo.BlockRebalanceOnPoll(),
		// Eager range assignment gives partition N of both topics to
		// one instance: a device's telemetry and events meet.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.OnPartitionsAssigned(k.assigned),
		kgo.OnPartitionsRevoked(k.revoked),
		kgo.OnPartitionsLost(k.lost),
	}, k.o.ClientOptions...)
	if d := k.o.SessionTimeout; d > 0 {
		opts = append(opts, kgo.SessionTimeout(d), kgo.HeartbeatInterval(min(3*time.Second, d/5)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	var wg sync.WaitGroup
	cctx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { k.commitLoop(cctx, cl) })
	k.log.Info("consuming from kafka", "brokers", k.o.Brokers, "topics", []string{k.o.Topic, k.o.EventsTopic}, "group", k.o.Group)
	for {
		fetches := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				k.log.Warn("kafka fetch failed", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { k.handle(ctx, r) })
		cl.AllowRebalance()
	}
	stopCommits()
	wg.Wait()
	k.ready.Store(false)
	k.in.intake(false)
	// The ingester has stopped and settled its records: commit them. Close
	// then leaves the group, which revokes (snapshots) every partition.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.o.RevokeTimeout)
	defer cancel()
	k.commit(fctx, cl)
	cl.Close()
	return nil
}

// handle hands one record to the ingester.
func (k *Kafka) handle(ctx context.Context, r *kgo.Record) {
	e := &inflight{r: r}
	tp := topicPartition{r.Topic, r.Partition}
	k.mu.Lock()
	k.pending[tp] = append(k.pending[tp], e)
	k.mu.Unlock()
	topic := ""
	for _, h := range r.Headers {
		if h.Key == TopicHeader {
			topic = string(h.Value)
		}
	}
	if topic == "" {
		// A bridge that sets no header (EMQX, HiveMQ): the topic the
		// record came on says which kind it is.
		kind := "telemetry"
		if r.Topic == k.o.EventsTopic {
			kind = "events"
		}
		topic = k.o.TopicPrefix + "/" + string(r.Key) + "/" + kind
	}
	settle := func(state int32) func() {
		return func() {
			e.state.Store(state)
			select {
			case k.signal <- struct{}{}:
			default:
			}
		}
	}
	// The record's time is its receipt: a redelivered reading without a
	// time of its own is the same point again.
	_ = k.in.handle(ctx, Message{Topic: topic, Payload: r.Value, Received: r.Timestamp,
		Ack: settle(1), Nack: settle(2), AckAfterSink: true})
}

// commitLoop commits what was settled whenever records are settled.
func (k *Kafka) commitLoop(ctx context.Context, cl *kgo.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.signal:
			k.commit(ctx, cl)
		}
	}
}

// collect moves the settled prefix of each partition to done.
func (k *Kafka) collect() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for tp, list := range k.pending {
		i := 0
		for i < len(list) && list[i].state.Load() == 1 {
			i++
		}
		if i > 0 {
			k.done[tp] = list[i-1].r
			k.pending[tp] = list[i:]
		}
	}
}

// commit commits the settled records once the sinks have evaluated them.
func (k *Kafka) commit(ctx context.Context, cl *kgo.Client) {
	k.commitMu.Lock()
	defer k.commitMu.Unlock()
	k.collect()
	k.mu.Lock()
	recs := make([]*kgo.Record, 0, len(k.done))
	for _, r := range k.done {
		recs = append(recs, r)
	}
	k.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if k.o.Evaluated != nil {
		if err := k.o.Evaluated(ctx); err != nil {
			k.log.Warn("kafka offsets not committed: the rules did not confirm evaluation", "err", err)
			return
		}
	}
	if err := cl.CommitRecords(ctx, recs...); err != nil {
		k.log.Warn("kafka offsets not committed; the records will be delivered again", "err", err)
		return
	}
	k.mu.Lock()
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if k.done[tp] == r {
			delete(k.done, tp)
		}
	}
	k.mu.Unlock()
}

// telemetry lists the telemetry topic's partitions in a callback's map.
func (k *Kafka) telemetry(m map[string][]int32) []int32 {
	parts := slices.Clone(m[k.o.Topic])
	slices.Sort(parts)
	return parts
}

// partitionOf returns the device-to-partition function of the telemetry
// topic, asking the brokers how many partitions it has.
func (k *Kafka) partitionOf(ctx context.Context, cl *kgo.Client) func(proactive.DeviceID) int32 {
	k.mu.Lock()
	n := k.nparts
	k.mu.Unlock()
	if n == 0 {
		counts := map[string]int{}
		req := kmsg.NewPtrMetadataRequest()
		for _, name := range []string{k.o.Topic, k.o.EventsTopic} {
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, t)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			for _, t := range resp.Topics {
				if t.Topic != nil {
					counts[*t.Topic] = len(t.Partitions)
				}
			}
		}
		n = counts[k.o.Topic]
		if n == 0 {
			k.log.Error("kafka: cannot tell how many partitions the telemetry topic has; partitions are restored from no devices", "topic", k.o.Topic, "err", err)
			return func(proactive.DeviceID) int32 { return -1 }
		}
		if e := counts[k.o.EventsTopic]; e != n {
			k.log.Warn("kafka: the events topic should have as many partitions as the telemetry topic, or a device's events reach another instance than its telemetry",
				"telemetry", n, "events", e)
		}
		k.mu.Lock()
		k.nparts = n
		k.mu.Unlock()
	}
	return func(id proactive.DeviceID) int32 { return KafkaPartition(id, n) }
}

func (k *Kafka) assigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	parts := k.telemetry(m)
	if k.o.Assigned != nil {
		// Called with no partitions too: what a revoke parked goes.
		k.o.Assigned(ctx, parts, k.partitionOf(ctx, cl))
	}
	k.ready.Store(true)
	k.in.intake(true)
	k.log.Info("kafka partitions assigned", "topic", k.o.Topic, "partitions", parts)
}

// revoked waits for the records of the partitions to settle, commits them
// and has their state snapshotted.
func (k *Kafka) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.o.RevokeTimeout)
	defer cancel()
	gone := map[topicPartition]bool{}
	for topic, parts := range m {
		for _, p := range parts {
			gone[topicPartition{topic, p}] = true
		}
	}
	if !k.waitSettled(wctx, gone) {
		k.log.Warn("kafka revoke: records still unsettled; their next owner gets them again", "timeout", k.o.RevokeTimeout)
	}
	k.commit(wctx, cl)
	k.forget(gone)
	if parts := k.telemetry(m); k.o.Revoked != nil && len(parts) > 0 {
		k.o.Revoked(wctx, parts, k.partitionOf(wctx, cl))
	}
	k.log.Info("kafka partitions revoked", "topic", k.o.Topic, "partitions", k.telemetry(m))
}

func (k *Kafka) lost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	gone := map[topicPartition]bool{}
	for topic, parts := range m {
		for _, p := range parts {
			gone[topicPartition{topic, p}] = true
		}
	}
	k.forget(gone)
	k.ready.Store(false)
	if parts := k.telemetry(m); k.o.Lost != nil && len(parts) > 0 {
		k.o.Lost(ctx, parts, k.partitionOf(ctx, cl))
	}
	k.log.Warn("kafka partitions lost", "topic", k.o.Topic, "partitions", k.telemetry(m))
}

// forget drops the bookkeeping of partitions no longer owned.
func (k *Kafka) forget(gone map[topicPartition]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for tp := range gone {
		delete(k.pending, tp)
		delete(k.done, tp)
	}
}

// waitSettled waits until every record of the partitions is acked or
// nacked, and reports whether they all were before ctx ended.
func (k *Kafka) waitSettled(ctx context.Context, parts map[topicPartition]bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		k.mu.Lock()
		busy := false
		for tp := range parts {
			for _, e := range k.pending[tp] {
				if e.state.Load() == 0 {
					busy = true
					break
				}
			}
		}
		k.mu.Unlock()
		if !busy {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Forwarder sends the MQTT intake to Kafka (kafka.forward), for brokers
// without a Kafka bridge: a message is acknowledged to its device once
// Kafka has it, in the order the messages came.
type Forwarder struct {
	o   KafkaOptions
	cl  *kgo.Client
	log *slog.Logger

	mu      sync.Mutex
	queue   []*forwarded // in arrival order, until settled
	closing bool
}

type forwarded struct {
	m     Message
	state int32 // 0 in flight, 1 stored, 2 failed
}

// NewForwarder returns a forwarder to the Kafka topics; its Forward is the
// ingester's Options.Forward, and Run closes it.
func NewForwarder(o KafkaOptions, prefix string, log *slog.Logger) (*Forwarder, error) {
	if err := o.defaults(prefix, log); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2: what the consumers assume
		kgo.AllowAutoTopicCreation(),
	}, o.ClientOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Forwarder{o: o, cl: cl, log: o.Logger.With("component", "kafka-forward")}, nil
}

// Forward sends m to its topic, keyed by its device. It blocks while the
// client holds its maximum of buffered records (backpressure to the
// broker); m is acknowledged once Kafka has it, nacked when it cannot be
// sent before shutdown.
func (f *Forwarder) Forward(ctx context.Context, m Message) error {
	id, kind, err := ParseTopic(f.o.TopicPrefix, m.Topic)
	if kind == TopicUnknown && err == nil {
		m.ack() // not ours
		return nil
	}
	topic := f.o.Topic
	if kind == TopicEvents {
		topic = f.o.EventsTopic
	}
	r := &kgo.Record{Topic: topic, Value: m.Payload, Timestamp: m.Received,
		Headers: []kgo.RecordHeader{{Key: TopicHeader, Value: []byte(m.Topic)}}}
	if id != "" {
		r.Key = []byte(id)
	}
	fw := &forwarded{m: m}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		m.nack()
		return ErrClosed
	}
	f.queue = append(f.queue, fw)
	f.mu.Unlock()
	f.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			f.log.Warn("record not forwarded to kafka; the message is not acknowledged", "err", err)
		}
		f.settle(fw, err == nil)
	})
	return nil
}

// settle records an outcome and acknowledges the settled head of the
// queue, so that acks leave in arrival order as MQTT wants.
func (f *Forwarder) settle(fw *forwarded, ok bool) {
	f.mu.Lock()
	fw.state = 2
	if ok {
		fw.state = 1
	}
	i := 0
	for i < len(f.queue) && f.queue[i].state != 0 {
		i++
	}
	head := f.queue[:i]
	f.queue = f.queue[i:]
	f.mu.Unlock()
	for _, h := range head {
		if h.state == 1 {
			h.m.ack()
		} else {
			h.m.nack()
		}
	}
}

// Run waits for ctx, then sends what is buffered (bounded by the grace
// of shutdownTimeout) and closes the client.
func (f *Forwarder) Run(ctx context.Context) error {
	<-ctx.Done()
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.RevokeTimeout)
	defer cancel()
	if err := f.cl.Flush(fctx); err != nil {
		f.log.Warn("kafka forwarder: not every record sent before shutdown; the broker redelivers them", "err", err)
	}
	f.cl.Close()
	return nil
}

// KafkaIntake is an instance's part in Kafka (ingest.source: kafka,
// kafka.forward): the forwarder of its MQTT intake, and the consumer.
type KafkaIntake struct {
	o       KafkaOptions
	consume bool
	fwd     *Forwarder
}

// NewKafkaIntake prepares what consume and forward ask for: with consume,
// the MQTT intake is always forwarded, since a device's messages are
// evaluated only by its partition's owner. Neither: nothing, and its
// methods change nothing.
func NewKafkaIntake(o KafkaOptions, consume, forward bool, prefix string, log *slog.Logger) (*KafkaIntake, error) {
	k := &KafkaIntake{o: o, consume: consume}
	if !consume && !forward {
		return k, nil
	}
	if err := k.o.defaults(prefix, log); err != nil {
		return nil, err
	}
	fwd, err := NewForwarder(k.o, prefix, log)
	if err != nil {
		return nil, err
	}
	k.fwd = fwd
	return k, nil
}

// Forward is the ingester's Options.Forward: nil when nothing forwards.
func (k *KafkaIntake) Forward() func(context.Context, Message) error {
	if k.fwd == nil {
		return nil
	}
	return k.fwd.Forward
}

// Source returns what the instance runs as its source: mqtt alone, or with
// the forwarder and, when consuming, the Kafka consumer of in.
func (k *KafkaIntake) Source(in *Ingester, mqtt Source) Source {
	if k.fwd == nil {
		return mqtt
	}
	all := sources{mqtt, k.fwd}
	if k.consume {
		c, _ := NewKafka(in, k.o) // the options were checked by NewKafkaIntake
		all = append(all, c)
	}
	return all
}

// Source is a part that feeds the ingester.
type Source interface {
	// Run feeds until ctx ends.
	Run(ctx context.Context) error
	// Ready reports nil while the source is serving.
	Ready() error
}

// Ready reports nil: the forwarder buffers while Kafka is away.
func (f *Forwarder) Ready() error { return nil }

// sources run together.
type sources []Source

func (s sources) Run(ctx context.Context) error {
	errs := make([]error, len(s))
	var wg sync.WaitGroup
	for i, src := range s {
		wg.Go(func() { errs[i] = src.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s sources) Ready() error {
	var errs []error
	for _, src := range s {
		errs = append(errs, src.Ready())
	}
	return errors.Join(errs...)
}
