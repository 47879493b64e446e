package ingest

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The store keeps what paho resumes a session with, and not the received
// QoS 1 publishes, which it would discard on resuming.
func TestSessionStoreSkipsReceivedQoS1(t *testing.T) {
	s := newSessionStore()
	s.Open()
	defer s.Close()
	pub := func(qos byte) packets.ControlPacket {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.MessageID, p.TopicName = qos, 7, "devices/d/telemetry"
		return p
	}
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.Qos, sub.MessageID = 1, 1

	s.Put("i.7", pub(1))
	s.Put("o.1", sub)
	if got := s.All(); !slices.Equal(got, []string{"o.1"}) {
		t.Fatalf("stored %v, want [o.1]: a received QoS 1 publish is not kept", got)
	}
	s.Del("i.7") // its PUBACK went out
	s.Put("i.8", pub(2))
	if got := s.All(); !slices.Contains(got, "i.8") {
		t.Fatalf("stored %v: a received QoS 2 publish is kept until its PUBREL", got)
	}
	s.Del("i.8")
	s.Del("o.1")
	if got := s.All(); len(got) != 0 {
		t.Fatalf("stored %v after deleting everything", got)
	}
}
