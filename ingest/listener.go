package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Accept backoff after an error: the delays net/http's Server uses.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
	// acceptLogEvery spaces the logs of failing accepts, which under a
	// sustained attack alternate with successes.
	acceptLogEvery = time.Minute
)

// guardedListener is the embedded broker's listener. mochi's accept loop
// returns on the first error, so that a process out of file descriptors
// (EMFILE) would never accept again: this Accept retries every error but
// the listener's closing, with backoff, and returns only a connection or
// net.ErrClosed. It also bounds the open connections and gives each one
// connectTimeout to send its CONNECT.
type guardedListener struct {
	net.Listener
	log            *slog.Logger
	maxConns       int64
	maxPacket      int
	connectTimeout time.Duration
	// refused counts a connection closed by the listener, by reason.
	refused func(reason string)

	open atomic.Int64
	// conns are the open connections, closed with the listener: mochi
	// closes only the clients that have connected, and waits for all.
	mu        sync.Mutex
	conns     map[*guardedConn]struct{}
	acceptErr atomic.Pointer[error] // set while accepts fail
	overMax   atomic.Bool           // set while connections are refused for the limit
	// The log of failing accepts, kept by Accept (one goroutine): when an
	// error was last logged, whether its recovery is still to be logged,
	// and how many accepts failed since.
	loggedAt  time.Time
	logged    bool
	failures  int
	closed    chan struct{}
	closeOnce sync.Once
}

func newGuardedListener(ln net.Listener, maxConns, maxPacket int, connectTimeout time.Duration, log *slog.Logger, refused func(string)) *guardedListener {
	return &guardedListener{
		Listener: ln, log: log, maxConns: int64(maxConns), maxPacket: maxPacket, connectTimeout: connectTimeout,
		refused: refused, closed: make(chan struct{}), conns: map[*guardedConn]struct{}{},
	}
}

// Accept waits for the next connection under the limit.
func (l *guardedListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.failures++
			if !l.logged && time.Since(l.loggedAt) >= acceptLogEvery {
				l.logged, l.loggedAt = true, time.Now()
				l.log.Error("mqtt listener cannot accept connections; retrying with backoff", "err", err)
			}
			if delay == 0 {
				delay = acceptRetryMin
				l.acceptErr.Store(&err)
			} else {
				delay = min(2*delay, acceptRetryMax)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		if delay != 0 {
			l.acceptErr.Store(nil)
			if l.logged {
				l.logged = false
				l.log.Info("mqtt listener accepting again", "after", time.Since(l.loggedAt).String(), "failed_accepts", l.failures)
				l.failures = 0
			}
		}
		if l.open.Load() >= l.maxConns {
			l.refused("max_connections")
			_ = c.Close()
			if !l.overMax.Swap(true) {
				l.log.Warn("mqtt connection refused: mqtt.max_connections reached", "max_connections", l.maxConns)
			}
			continue
		}
		l.overMax.Store(false)
		gc := &guardedConn{Conn: c, l: l}
		l.mu.Lock()
		select {
		case <-l.closed:
			l.mu.Unlock()
			_ = c.Close()
			return nil, net.ErrClosed
		default:
		}
		l.conns[gc] = struct{}{}
		l.open.Add(1)
		l.mu.Unlock()
		// mochi sets no deadline before CONNECT; its own deadline (from
		// the keepalive) replaces this one once CONNECT is read.
		_ = c.SetReadDeadline(time.Now().Add(l.connectTimeout))
		return gc, nil
	}
}

// Close stops Accept, waiting or backing off, closes the listener and
// every connection it accepted.
func (l *guardedListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closeOnce.Do(func() { close(l.closed) })
	conns := make([]*guardedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

// Err returns why accepts fail, nil while they succeed.
func (l *guardedListener) Err() error {
	if p := l.acceptErr.Load(); p != nil {
		return fmt.Errorf("mqtt listener cannot accept connections: %w", *p)
	}
	return nil
}

// Open returns how many accepted connections are open.
func (l *guardedListener) Open() int64 { return l.open.Load() }

// guardedConn is an accepted connection: it counts itself out of the
// listener's open connections once closed, and counts a first packet that
// did not come in time or announces more than the packet size limit (mochi
// refuses both without a word; the ingest hook sees only clients that
// connected).
type guardedConn struct {
	net.Conn
	l         *guardedListener
	connected atomic.Bool
	closeOnce sync.Once
	// The first packet's fixed header, as far as read: mochi reads from
	// one goroutine.
	headLen   int
	remaining int
	headDone  bool
}

// SetDeadline is how mochi sets the keepalive deadline, which it first
// does once CONNECT is read and accepted.
func (c *guardedConn) SetDeadline(t time.Time) error {
	c.connected.Store(true)
	return c.Conn.SetDeadline(t)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.headDone {
		c.readHead(p[:n])
	}
	var ne net.Error
	if err != nil && !c.connected.Load() && errors.As(err, &ne) && ne.Timeout() {
		c.connected.Store(true) // counted once
		c.l.refused("connect_timeout")
	}
	return n, err
}

// readHead follows the first packet's fixed header: a type byte, then the
// remaining length in one to four bytes of seven bits each.
func (c *guardedConn) readHead(b []byte) {
	for _, x := range b {
		c.headLen++
		if c.headLen == 1 {
			continue
		}
		c.remaining |= int(x&0x7f) << (7 * (c.headLen - 2))
		if x&0x80 == 0 || c.headLen == 5 {
			c.headDone = true
			if c.remaining+1 > c.l.maxPacket {
				c.l.refused("packet_too_large")
			}
			return
		}
	}
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.open.Add(-1)
		c.l.mu.Unlock()
	})
	return err
}
