package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/proxy"
)

// Sizes of bufferedConn's buffers. A QoS 1 publish of one telemetry reading
// is about 200 bytes, a PUBACK 4: the reader takes a few hundred messages
// per read(2), the writer bounds the acks waiting behind a slow socket.
const (
	connReadBuffer  = 64 << 10
	connWriteBuffer = 64 << 10
	// connCloseGrace bounds the flush of pending acks when the subscriber closes
	// the connection.
	connCloseGrace = time.Second
)

// openBufferedConn dials the broker u (a proxy from the environment for
// plain TCP, TLS with tlsCfg for mqtts) and wraps the connection in a
// bufferedConn: the subscriber reads many publishes per read(2) and writes
// the PUBACKs of a stored batch in a few write(2) calls. The socket itself
// is read through a coalescingReader, under TLS when there is TLS: TLS
// reads a record at a time, so above it every read would look small.
func openBufferedConn(ctx context.Context, u *url.URL, tlsCfg *tls.Config, timeout time.Duration) (*bufferedConn, error) {
	dialer := &net.Dialer{Timeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch u.Scheme {
	case "mqtt", "tcp":
		var conn net.Conn
		var err error
		d := proxy.FromEnvironmentUsing(dialer)
		if cd, ok := d.(proxy.ContextDialer); ok {
			conn, err = cd.DialContext(ctx, "tcp", u.Host)
		} else {
			conn, err = d.Dial("tcp", u.Host)
		}
		if err != nil {
			return nil, err
		}
		socket := &coalescingReader{Conn: conn}
		c := newBufferedConn(socket)
		c.socket = socket
		return c, nil
	case "mqtts", "ssl", "tls":
		raw, err := dialer.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, err
		}
		cfg := tlsCfg.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		socket := &coalescingReader{Conn: raw}
		conn := tls.Client(socket, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		c := newBufferedConn(conn)
		c.socket = socket
		return c, nil
	default:
		return nil, errors.New("mqtt: unknown scheme " + u.Scheme)
	}
}

// bufferedConn reads through a buffer and coalesces writes: Write appends
// to a pending buffer and returns, and one flusher at a time writes out
// whatever has accumulated, so the PUBACKs of a stored batch leave in a few
// write(2) calls instead of one each. Bytes leave in the order written (the
// acks keep their order). A write error is returned by the next Write, and
// the read side sees the broken connection as well. Close flushes what is
// pending, bounded by connCloseGrace.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
	// closeGrace is connCloseGrace but in tests.
	closeGrace time.Duration
	// socket is the reader under TLS and the buffer, when dialled.
	socket *coalescingReader

	mu       sync.Mutex
	drained  sync.Cond // signalled when the flusher took or finished a buffer
	pending  []byte
	spare    []byte
	flushing bool // a flusher goroutine runs
	err      error
}

func newBufferedConn(conn net.Conn) *bufferedConn {
	c := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, connReadBuffer), closeGrace: connCloseGrace}
	c.drained.L = &c.mu
	return c
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// coalescingReader is the socket under the subscriber's reads. A read that
// emptied the socket (it did not fill the buffer) and found little is
// followed by a short pause before the next: a busy broker's messages then
// arrive many per read(2) instead of one or two, each read having cost a
// system call and a wake-up of the reading goroutine. A message waits at
// most readPause longer for it, while writes linger for milliseconds anyway.
type coalescingReader struct {
	net.Conn
	pause  bool
	pauses int // for tests
}

// Thresholds of coalescingReader.
const (
	readSmall = 16 << 10
	readPause = time.Millisecond
)

func (r *coalescingReader) Read(p []byte) (int, error) {
	if r.pause {
		r.pauses++
		time.Sleep(readPause)
	}
	n, err := r.Conn.Read(p)
	r.pause = n < len(p) && n < readSmall
	return n, err
}

// puback queues the PUBACK of the QoS 1 publish id, read from this
// connection, and reports whether it did. Once the connection is closed
// it drops the ack and reports false: the broker resends an unacknowledged
// message in the session's next connection, where id may already name
// another message.
func (c *bufferedConn) puback(id uint16) bool {
	return c.enqueue([]byte{pubackType, 2, byte(id >> 8), byte(id)}) == nil
}

// pubackType is the first byte of a PUBACK (packet type 4, no flags).
const pubackType = 0x40

// Write queues p for the flusher. It blocks while connWriteBuffer bytes wait
// already (backpressure from a slow peer).
func (c *bufferedConn) Write(p []byte) (int, error) {
	if err := c.enqueue(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// enqueue appends p to the pending bytes, as Write, or returns the error
// that ended the connection.
func (c *bufferedConn) enqueue(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && len(c.pending) >= connWriteBuffer {
		c.drained.Wait()
	}
	if c.err != nil {
		return c.err
	}
	c.pending = append(c.pending, p...)
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
	return nil
}

// flush writes out pending buffers until none is left or a write fails.
func (c *bufferedConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) > 0 && c.err == nil {
		out := c.pending
		c.pending, c.spare = c.spare[:0], nil
		c.drained.Broadcast()
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare = out[:0]
		if err != nil {
			c.err = err
		}
	}
	if c.err != nil {
		c.pending = nil // never written: the connection is gone
	}
	c.flushing = false
	c.drained.Broadcast()
}

// Close waits, at most connCloseGrace, for the pending bytes to be written
// (the DISCONNECT among them), then closes the connection.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.closeGrace))
		for c.flushing {
			c.drained.Wait()
		}
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.drained.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}
