// Package email is the notifier's email provider: a notify.Sender over SMTP
// through github.com/wneessen/go-mail.
//
// Each email is plain text in UTF-8, in the customer's language
// (Content-Language), marked Auto-Submitted so that auto-responders stay
// quiet, with the customer's unsubscribe link in List-Unsubscribe (and
// List-Unsubscribe-Post for one click, RFC 8058, when the link is https).
// Emails cannot be answered: the notifier's text says how to answer
// instead.
//
// One attempt is one SMTP session. A failure before the server took the
// message is notify.ErrTemporary when it may pass (a connection refused, a
// 4xx answer) and permanent otherwise (a 5xx, such as an unknown
// recipient); a connection lost after the message's data was sent is
// notify.ErrAmbiguous, which the outbox settles without sending again
// (email has no lookup).
package email

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/proactivehq/proactive/notify"
)

// Options configure a Sender.
type Options struct {
	// URL is the SMTP server: smtp://[user:password@]host[:port] (STARTTLS
	// when the server offers it, port 587 by default) or
	// smtps://[user:password@]host[:port] (TLS from the start, port 465).
	// The query may set starttls=required (refuse a server without
	// STARTTLS) or starttls=off (plain, for a relay on the same host).
	URL string
	// From is the sender, an address with an optional display name:
	// "Proactive <service@example.com>".
	From string
	// Timeout bounds each step of a session, default 15s.
	Timeout time.Duration
	// TLSConfig, when set, replaces the default (the host's name, TLS 1.2
	// or later): tests trust their own server with it.
	TLSConfig *tls.Config
}

// Sender sends emails. It is safe for concurrent use: every Send is its
// own SMTP session.
type Sender struct {
	opt    Options
	host   string
	opts   []gomail.Option
	from   *mail.Address
	domain string
}

// New checks the options and returns a Sender. Its errors never show the
// URL's password.
func New(opt Options) (*Sender, error) {
	var errs []error
	s := &Sender{opt: opt}
	if opt.Timeout <= 0 {
		opt.Timeout = 15 * time.Second
	}
	from, err := mail.ParseAddress(opt.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("email: from %q is not an address like Name <service@example.com>", opt.From))
	} else {
		s.from = from
		s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	host, opts, err := clientOptions(opt)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.host, s.opts = host, opts
	return s, nil
}

// clientOptions turns opt into go-mail's client options.
func clientOptions(opt Options) (string, []gomail.Option, error) {
	u, err := url.Parse(opt.URL)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return "", nil, errors.New("email: the SMTP URL is not a URL like smtp://user:password@host:587")
	}
	if (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return "", nil, fmt.Errorf("email: the SMTP URL must be smtp://host[:port] or smtps://host[:port], not %s://%s", u.Scheme, u.Host)
	}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", nil, fmt.Errorf("email: the SMTP URL's port %q is not a port", p)
		}
	}
	tlsConfig := opt.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(opt.Timeout), gomail.WithTLSConfig(tlsConfig)}
	if u.Scheme == "smtps" {
		opts = append(opts, gomail.WithSSL())
	} else {
		switch st := u.Query().Get("starttls"); st {
		case "", "opportunistic":
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		case "required":
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		case "off":
			opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		default:
			return "", nil, fmt.Errorf("email: starttls=%q: want opportunistic, required or off", st)
		}
	}
	if user := u.User.Username(); user != "" {
		pass, _ := u.User.Password()
		// go-mail sends PLAIN or LOGIN credentials only over TLS (or to
		// localhost), whatever the server offers.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	return u.Hostname(), opts, nil
}

// Send delivers m, an email (m.Channel email), to m.To in one SMTP session.
// The receipt's SID is the email's Message-ID.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	if m.Channel != notify.ChannelEmail {
		return notify.Receipt{}, fmt.Errorf("email: cannot send %s messages", m.Channel.OrSMS())
	}
	msg, id, err := s.compose(m)
	if err != nil {
		return notify.Receipt{}, err
	}
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return notify.Receipt{}, fmt.Errorf("email: %w", err)
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// Nothing was sent; a server that refuses credentials or TLS will
		// refuse them again, but a configuration fixed meanwhile lets a
		// later attempt pass.
		return notify.Receipt{}, fmt.Errorf("%w: email: connect to %s: %v", notify.ErrTemporary, s.host, err)
	}
	err = c.SendWithSMTPClient(sc, msg)
	// The message's fate is decided before QUIT: a failed close changes
	// nothing.
	_ = c.CloseWithSMTPClient(sc)
	if err != nil {
		return notify.Receipt{}, classify(err)
	}
	return notify.Receipt{SID: id, Status: "sent"}, nil
}

// compose builds m's email and returns its Message-ID.
func (s *Sender) compose(m notify.Message) (*gomail.Msg, string, error) {
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.From(s.from.String()); err != nil {
		return nil, "", fmt.Errorf("email: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", fmt.Errorf("email: to %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	// The outbox id makes a message's emails recognisable in the server's
	// logs; the random part keeps ids unique across databases.
	id := fmt.Sprintf("proactive.%d.%s@%s", m.ID, hex.EncodeToString(b), s.domain)
	msg.SetMessageIDWithValue(id)
	msg.SetGenHeader(gomail.HeaderContentLang, m.Language)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	if m.Unsubscribe != "" {
		if strings.HasPrefix(m.Unsubscribe, "https://") {
			if err := msg.SetListUnsubscribeOneClick(m.Unsubscribe); err != nil {
				return nil, "", fmt.Errorf("email: unsubscribe link: %w", err)
			}
		} else {
			msg.SetListUnsubscribe(m.Unsubscribe)
		}
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	return msg, "<" + id + ">", nil
}

// classify maps a failed delivery to the outbox's retry classes.
func classify(err error) error {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: email: %v", notify.ErrTemporary, err)
	}
	switch {
	case se.IsTemp():
		return fmt.Errorf("%w: email: %v", notify.ErrTemporary, err)
	case se.ErrorCode() >= 500:
		return fmt.Errorf("email refused (%d): %v", se.ErrorCode(), err)
	case se.Reason == gomail.ErrWriteContent || se.Reason == gomail.ErrSMTPDataClose:
		// The data went out and no answer came: the server may have it.
		return fmt.Errorf("%w: email: %v", notify.ErrAmbiguous, err)
	}
	return fmt.Errorf("%w: email: %v", notify.ErrTemporary, err)
}
