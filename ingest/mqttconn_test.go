package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// listen accepts one connection on a loopback port and hands it to serve.
func listen(t *testing.T, ln net.Listener, serve func(net.Conn)) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
}

// Acks written one by one reach the broker all, in the order written, and
// Close sends what is still pending before it closes.
func TestBufferedConnKeepsOrderAndFlushesOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const n = 50000
	got := make(chan []byte, 1)
	listen(t, ln, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	})
	conn, err := openBufferedConn(t.Context(), &url.URL{Scheme: "tcp", Host: ln.Addr().String()}, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the broker's reader may not run within the
	// second that Close grants the flush.
	conn.closeGrace = time.Minute
	// A PUBACK is 4 bytes: type, length, packet id.
	for i := range n {
		if _, err := conn.Write([]byte{0x40, 2, byte(i >> 8), byte(i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if len(b) != 4*n {
		t.Fatalf("broker got %d bytes, want %d", len(b), 4*n)
	}
	for i := range n {
		if id := binary.BigEndian.Uint16(b[4*i+2:]); id != uint16(i) {
			t.Fatalf("ack %d carries id %d: out of order", i, id)
		}
	}
	if _, err := conn.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
}

// What waits to be written stays bounded while the peer does not read: the
// writer blocks instead.
func TestBufferedConnBoundsPendingBytes(t *testing.T) {
	client, server := net.Pipe() // a write completes only as the other end reads
	conn := newBufferedConn(client)
	t.Cleanup(func() { conn.Close(); server.Close() })
	const chunk, total = 1000, 8 * connWriteBuffer
	var accepted atomic.Int64
	go func() {
		p := make([]byte, chunk)
		for accepted.Load() < total {
			if _, err := conn.Write(p); err != nil {
				return
			}
			accepted.Add(chunk)
		}
	}()
	// At most the buffer being written and the one filling are held.
	const bound = 2 * (connWriteBuffer + chunk)
	buf := make([]byte, 512)
	var read int64
	for read < total {
		n, err := server.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", read, err)
		}
		read += int64(n)
		if held := accepted.Load() - read; held > bound {
			t.Fatalf("%d bytes accepted and not yet read, want at most %d", held, bound)
		}
	}
}

// A write that fails is reported by the next Write, so that the subscriber sees the
// connection is gone.
func TestBufferedConnReportsWriteErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reset := make(chan struct{})
	listen(t, ln, func(c net.Conn) {
		<-reset
		c.(*net.TCPConn).SetLinger(0) // a reset, not a graceful close
	})
	conn, err := openBufferedConn(t.Context(), &url.URL{Scheme: "tcp", Host: ln.Addr().String()}, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	close(reset)
	testenv.Eventually(t, 0, func() error {
		if _, err := conn.Write([]byte{0x40, 2, 0, 1}); err == nil {
			return errors.New("writes to a reset connection still succeed")
		}
		return nil
	})
}

// mqtts dials TLS with the client's configuration.
func TestOpenBufferedConnTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	listen(t, ln, func(c net.Conn) { _, _ = io.Copy(c, c) }) // echo
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	conn, err := openBufferedConn(t.Context(), &url.URL{Scheme: "mqtts", Host: ln.Addr().String()}, cfg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if _, err := openBufferedConn(t.Context(), &url.URL{Scheme: "ws", Host: ln.Addr().String()}, cfg, 10*time.Second); err == nil {
		t.Error("ws: no error; the subscriber takes mqtt, tcp and mqtts only")
	}
}

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// PUBACKs leave in the order queued; once the connection is closed, puback
// drops the ack (the broker resends the message on the next connection,
// where its id may name another message) and says so.
func TestBufferedConnPubackInOrderAndDroppedAfterClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	listen(t, ln, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	})
	conn, err := openBufferedConn(t.Context(), &url.URL{Scheme: "tcp", Host: ln.Addr().String()}, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.closeGrace = time.Minute
	const n = 1000
	for i := range n {
		if !conn.puback(uint16(i)) {
			t.Fatalf("puback %d dropped on an open connection", i)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if conn.puback(n) {
		t.Error("puback after close: queued, want dropped")
	}
	b := <-got
	if len(b) != 4*n {
		t.Fatalf("broker got %d bytes, want %d", len(b), 4*n)
	}
	for i := range n {
		if p := b[4*i : 4*i+4]; p[0] != 0x40 || p[1] != 2 || binary.BigEndian.Uint16(p[2:]) != uint16(i) {
			t.Fatalf("packet %d is % x, want PUBACK %d", i, p, i)
		}
	}
}

// parsePublish takes a PUBLISH apart and refuses what a broker may not send
// on a QoS 1 subscription or what is cut short.
func TestParsePublish(t *testing.T) {
	m, id, qos, err := parsePublish(0x32, []byte{0, 3, 'a', '/', 'b', 0x12, 0x34, '{', '}'})
	if err != nil || m.Topic != "a/b" || string(m.Payload) != "{}" || id != 0x1234 || qos != 1 {
		t.Errorf("QoS 1: %q %q id %x qos %d %v", m.Topic, m.Payload, id, qos, err)
	}
	m, id, qos, err = parsePublish(0x30, []byte{0, 1, 't', 'x'})
	if err != nil || m.Topic != "t" || string(m.Payload) != "x" || id != 0 || qos != 0 {
		t.Errorf("QoS 0: %q %q id %x qos %d %v", m.Topic, m.Payload, id, qos, err)
	}
	for name, c := range map[string]struct {
		first byte
		body  []byte
	}{
		"QoS 2":              {0x34, []byte{0, 1, 't', 0, 1}},
		"no topic length":    {0x32, []byte{0}},
		"topic past the end": {0x32, []byte{0, 9, 't'}},
		"no packet id":       {0x32, []byte{0, 1, 't', 0}},
	} {
		if _, _, _, err := parsePublish(c.first, c.body); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Messages already waiting are read without pausing, over TLS as over TCP:
// TLS hands out a record per read, so the pause sits under it, where a read
// finds everything waiting. (Above TLS, a broker writing a record per
// packet was read one message a millisecond.)
func TestCoalescingReaderDoesNotPauseOnWaitingData(t *testing.T) {
	cert, pool := selfSigned(t)
	const n, size = 200, 200
	for _, scheme := range []string{"tcp", "mqtts"} {
		t.Run(scheme, func(t *testing.T) {
			var ln net.Listener
			var err error
			if scheme == "mqtts" {
				ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			written := make(chan error, 1)
			listen(t, ln, func(c net.Conn) {
				msg := make([]byte, size)
				for range n {
					if _, err := c.Write(msg); err != nil { // a record a packet over TLS
						written <- err
						return
					}
				}
				written <- nil
				_, _ = io.Copy(io.Discard, c) // until the client closes
			})
			conn, err := openBufferedConn(t.Context(), &url.URL{Scheme: scheme, Host: ln.Addr().String()},
				&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := <-written; err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, n*size)
			if _, err := io.ReadFull(conn, buf); err != nil {
				t.Fatal(err)
			}
			if conn.socket.pauses > 3 {
				t.Errorf("%d pauses reading %d messages that were all waiting, want at most 3", conn.socket.pauses, n)
			}
		})
	}
}
