package ingest

import (
	"sync"
	"time"
)

// DeadLetter is a rejected message, or a rejected entry of one, with the
// reason and enough of the payload to explain it.
type DeadLetter struct {
	Time   time.Time `json:"time"`
	Topic  string    `json:"topic"`
	Device string    `json:"device_id,omitempty"`
	Entry  int       `json:"entry"`
	Reason Reason    `json:"reason"`
	Detail string    `json:"detail"`
	// Payload is the start of the message, at most excerptLen bytes.
	Payload string `json:"payload"`
}

const excerptLen = 512

// DeadLetters keeps the most recent dead letters in a fixed-size ring, so the
// API can show them without memory growing with bad input.
type DeadLetters struct {
	mu   sync.Mutex
	ring []DeadLetter
	next int
	full bool
}

// NewDeadLetters returns a ring holding the last n dead letters.
func NewDeadLetters(n int) *DeadLetters {
	if n <= 0 {
		n = 1000
	}
	return &DeadLetters{ring: make([]DeadLetter, n)}
}

func (d *DeadLetters) add(dl DeadLetter) {
	d.mu.Lock()
	d.ring[d.next] = dl
	d.next = (d.next + 1) % len(d.ring)
	if d.next == 0 {
		d.full = true
	}
	d.mu.Unlock()
}

// Recent returns up to n dead letters, newest first.
func (d *DeadLetters) Recent(n int) []DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	size := d.next
	if d.full {
		size = len(d.ring)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]DeadLetter, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, d.ring[(d.next-i+len(d.ring))%len(d.ring)])
	}
	return out
}
