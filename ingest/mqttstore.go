package ingest

import (
	"strings"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionStore is paho's MemoryStore without the received QoS 1 publishes.
// paho stores each under "i.{id}" until its PUBACK is sent, formatting the
// key and logging through its no-op loggers twice a message, and yet
// discards such entries when it resumes a session: the broker, which keeps
// our persistent session, is what resends an unacknowledged message. Our
// subscriptions are QoS 1, so that is every message. Anything else (our
// SUBSCRIBEs, and a QoS 2 exchange should one come) is stored as before.
type sessionStore struct {
	*paho.MemoryStore
	// inbound is set once an inbound entry was stored: from then on
	// deletions of inbound keys go to the MemoryStore.
	inbound atomic.Bool
}

func newSessionStore() *sessionStore { return &sessionStore{MemoryStore: paho.NewMemoryStore()} }

const inboundKeyPrefix = "i." // paho's prefix of the keys of received packets

func (s *sessionStore) Put(key string, m packets.ControlPacket) {
	if strings.HasPrefix(key, inboundKeyPrefix) {
		if p, ok := m.(*packets.PublishPacket); ok && p.Qos == 1 {
			return
		}
		s.inbound.Store(true)
	}
	s.MemoryStore.Put(key, m)
}

func (s *sessionStore) Del(key string) {
	if strings.HasPrefix(key, inboundKeyPrefix) && !s.inbound.Load() {
		return
	}
	s.MemoryStore.Del(key)
}
