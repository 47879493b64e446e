package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy to a server, for tests that cut a client's
// connection under it: Cut closes every connection through it (the client
// sees the server drop it), and Refuse makes it refuse new ones until
// Resume.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]bool
	refuse  bool
	wg      sync.WaitGroup
	accepts int
	up      atomic.Int64 // bytes from clients to the server
}

// NewProxy listens on 127.0.0.1:0 and forwards each connection to target;
// it stops when tb ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is how many connections the proxy has forwarded.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepts
}

// Forwarded is how many bytes clients have sent through the proxy.
func (p *Proxy) Forwarded() int64 { return p.up.Load() }

// Cut closes every open connection through the proxy, both ways.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Refuse cuts the open connections and closes each new one at once, as a
// server that is down would, until Resume.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.Cut()
}

// Resume forwards new connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.accepts++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c, &p.up)
		go p.pipe(c, s, nil)
	}
}

// pipe copies from src to dst, counting the bytes in n when set; when
// either side ends, both close.
func (p *Proxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer p.wg.Done()
	var w io.Writer = dst
	if n != nil {
		w = countingWriter{dst, n}
	}
	_, _ = io.Copy(w, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	c.n.Add(int64(k))
	return k, err
}
