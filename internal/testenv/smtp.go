package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Email is one message an SMTPServer received.
type Email struct {
	From string
	To   []string
	// User is who authenticated, empty when nobody did.
	User string
	// Raw is the message as sent; Header and Body its parts, the body
	// decoded from quoted-printable or base64 when it was sent so.
	Raw    []byte
	Header mail.Header
	Body   string
}

// SMTPServer is an in-process SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 that keeps what it receives. Its methods are safe for
// concurrent use.
type SMTPServer struct {
	// Addr is host:port.
	Addr string
	// Received is signalled (without blocking) on each message.
	Received chan Email

	// ClientTLS trusts the server's certificate (made for 127.0.0.1 and
	// localhost when the server starts), for STARTTLS.
	ClientTLS *tls.Config

	mu       sync.Mutex
	emails   []Email
	user     string
	password string
	reject   []error
}

// SMTP starts an SMTP server for tb, stopped when tb ends. It offers
// STARTTLS (see ClientTLS). With a user, it offers AUTH PLAIN once the
// connection is encrypted and requires it; without, it takes mail from
// anyone.
func SMTP(tb testing.TB, user, password string) *SMTPServer {
	tb.Helper()
	cert, pool := selfSigned(tb)
	s := &SMTPServer{Received: make(chan Email, 1000), user: user, password: password,
		ClientTLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for SMTP: %v", err)
	}
	s.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testenv SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}

// RejectNext makes the server answer the next messages' data with errs,
// in order (an *smtp.SMTPError sets the code).
func (s *SMTPServer) RejectNext(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = append(s.reject, errs...)
}

// Emails returns every message received so far.
func (s *SMTPServer) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Email(nil), s.emails...)
}

type smtpSession struct {
	s    *SMTPServer
	user string
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != ss.s.user || password != ss.s.password {
			return errors.New("invalid credentials")
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	if len(s.reject) > 0 {
		err := s.reject[0]
		s.reject = s.reject[1:]
		s.mu.Unlock()
		return err
	}
	e := Email{From: ss.from, To: ss.to, User: ss.user, Raw: raw}
	if m, err := mail.ReadMessage(strings.NewReader(string(raw))); err == nil {
		e.Header = m.Header
		var body io.Reader = m.Body
		switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, _ := io.ReadAll(body)
		e.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	s.emails = append(s.emails, e)
	s.mu.Unlock()
	select {
	case s.Received <- e:
	default:
	}
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }
