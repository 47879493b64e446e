// Package twilio is the notifier's SMS and WhatsApp provider: a
// notify.Sender on the Twilio Messages API through
// github.com/twilio/twilio-go.
//
// WhatsApp goes through the same API with whatsapp:+E164 addresses. A
// message the business starts (an offer, a reminder, a survey) may only
// go out as a template Meta approved, named by its Content SID
// (Options.WhatsAppTemplates); answers within the conversation, which the
// customer opened, are plain text.
//
// twilio-go neither takes a context nor retries, and Twilio has no
// idempotency key. So each attempt gets its own client whose transport
// carries the attempt's context (cancellation and deadline) and records
// whether the request was written: an error before that is
// notify.ErrTemporary (safe to retry), an error after it without an answer
// is notify.ErrAmbiguous, which the outbox settles with Find instead of
// sending again.
package twilio

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	twapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// Options configure a Sender.
type Options struct {
	AccountSID string
	AuthToken  string
	// From is the sending number; MessagingServiceSID, when set, is used
	// instead (Twilio then picks the number and handles opt-out keywords).
	From                string
	MessagingServiceSID string
	// APIURL replaces https://api.twilio.com, for tests and gateways: the
	// requests keep their path under it.
	APIURL string
	// WhatsAppFrom is the WhatsApp sender's number in E.164 form (without
	// the whatsapp: prefix); empty: WhatsApp messages go through
	// MessagingServiceSID, which must then have a WhatsApp sender.
	WhatsAppFrom string
	// WhatsAppTemplates maps a message kind (notify.KindOffer, ...) to the
	// Content SID (HX...) of its approved template. A WhatsApp message of
	// a listed kind is sent as that template with ContentVariables
	// {"1": the message's text on one line}; others as plain text.
	WhatsAppTemplates map[string]string
	// Timeout bounds one request, default 10s.
	Timeout time.Duration
}

// Sender sends SMS through Twilio. It is safe for concurrent use.
type Sender struct {
	opt       Options
	base      *url.URL // nil: Twilio itself
	transport http.RoundTripper
}

// New checks the options and returns a Sender.
func New(opt Options) (*Sender, error) {
	var errs []error
	if opt.AccountSID == "" || opt.AuthToken == "" {
		errs = append(errs, errors.New("twilio: account SID and auth token are required"))
	}
	if opt.From == "" && opt.MessagingServiceSID == "" {
		errs = append(errs, errors.New("twilio: a From number or a messaging service SID is required"))
	}
	for kind, sid := range opt.WhatsAppTemplates {
		if !slices.Contains(notify.Kinds, kind) {
			errs = append(errs, fmt.Errorf("twilio: WhatsApp template for %q: not a message kind (%s)", kind, strings.Join(notify.Kinds, ", ")))
		}
		if !proactive.ValidContentSID(sid) {
			errs = append(errs, fmt.Errorf("twilio: the WhatsApp template of %s, %q, is not a Content SID (HX and 32 hex digits)", kind, sid))
		}
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	s := &Sender{opt: opt}
	if opt.APIURL != "" {
		u, err := url.Parse(opt.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("twilio: api_url %q is not an http(s) URL", opt.APIURL))
		} else {
			s.base = u
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: opt.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
	}
	return s, nil
}

// attemptTransport is the transport of one attempt: it points the request
// at the configured base URL, gives it the attempt's context and records
// whether it was written.
type attemptTransport struct {
	ctx   context.Context
	base  *url.URL
	next  http.RoundTripper
	wrote atomic.Bool
}

func (t *attemptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { t.wrote.Store(true) }}
	r2 := r.Clone(httptrace.WithClientTrace(t.ctx, trace))
	if t.base != nil {
		r2.URL.Scheme, r2.URL.Host = t.base.Scheme, t.base.Host
		r2.URL.Path = t.base.Path + r.URL.Path
		r2.Host = t.base.Host
	}
	return t.next.RoundTrip(r2)
}

// api returns a Twilio API client for one attempt.
func (s *Sender) api(ctx context.Context) (*twapi.ApiService, *attemptTransport) {
	t := &attemptTransport{ctx: ctx, base: s.base, next: s.transport}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(s.opt.AccountSID, s.opt.AuthToken),
		HTTPClient: &http.Client{Transport: t, Timeout: s.opt.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	c.SetAccountSid(s.opt.AccountSID)
	return twapi.NewApiServiceWithClient(c), t
}

// Send creates the message with Api.CreateMessage: To, Body, From or
// MessagingServiceSid, and StatusCallback when m has one. A WhatsApp
// message gets whatsapp: addresses, and ContentSid with ContentVariables
// instead of Body when its kind has a template. Messages on other channels
// are refused.
func (s *Sender) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	p := &twapi.CreateMessageParams{}
	switch m.Channel.OrSMS() {
	case notify.ChannelSMS:
		p.SetTo(m.To).SetBody(m.Body)
		if s.opt.MessagingServiceSID != "" {
			p.SetMessagingServiceSid(s.opt.MessagingServiceSID)
		} else {
			p.SetFrom(s.opt.From)
		}
	case notify.ChannelWhatsApp:
		p.SetTo(notify.WhatsAppPrefix + m.To)
		if s.opt.WhatsAppFrom != "" {
			p.SetFrom(notify.WhatsAppPrefix + s.opt.WhatsAppFrom)
		} else {
			p.SetMessagingServiceSid(s.opt.MessagingServiceSID)
		}
		if sid := s.opt.WhatsAppTemplates[m.Kind]; sid != "" {
			vars, err := json.Marshal(map[string]string{"1": templateText(m.Body)})
			if err != nil {
				return notify.Receipt{}, fmt.Errorf("encode template variables: %w", err)
			}
			p.SetContentSid(sid).SetContentVariables(string(vars))
		} else {
			p.SetBody(m.Body)
		}
	default:
		return notify.Receipt{}, fmt.Errorf("twilio does not send %s messages", m.Channel)
	}
	if m.StatusCallback != "" {
		p.SetStatusCallback(m.StatusCallback)
	}
	api, t := s.api(ctx)
	msg, err := api.CreateMessage(p)
	if err != nil {
		return notify.Receipt{}, classify(err, t.wrote.Load())
	}
	var rec notify.Receipt
	if msg.Sid != nil {
		rec.SID = *msg.Sid
	}
	if msg.Status != nil {
		rec.Status = *msg.Status
	}
	if rec.SID == "" {
		return rec, fmt.Errorf("%w: twilio accepted the message without a SID", notify.ErrAmbiguous)
	}
	return rec, nil
}

// templateText is a message's text as a template variable: WhatsApp
// refuses line breaks, tabs and runs of more than four spaces in one
// (Meta's error 132018).
func templateText(body string) string {
	f := strings.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range f {
		f[i] = strings.Join(strings.Fields(f[i]), " ")
	}
	return strings.Join(f, " | ")
}

// Find looks among the latest messages to m.To for one with m.Body created
// at or after since. A WhatsApp template's text is Twilio's rendering,
// not m.Body, so it cannot be looked for: notify.ErrCannotFind, and the
// outbox does not send it again.
func (s *Sender) Find(ctx context.Context, m notify.Message, since time.Time) (notify.Receipt, bool, error) {
	to := m.To
	if m.Channel == notify.ChannelWhatsApp {
		if s.opt.WhatsAppTemplates[m.Kind] != "" {
			return notify.Receipt{}, false, notify.ErrCannotFind
		}
		to = notify.WhatsAppPrefix + m.To
	}
	p := &twapi.ListMessageParams{}
	p.SetTo(to).SetPageSize(50).SetLimit(50)
	api, t := s.api(ctx)
	msgs, err := api.ListMessage(p)
	if err != nil {
		return notify.Receipt{}, false, classify(err, t.wrote.Load())
	}
	for _, x := range msgs {
		if x.Body == nil || *x.Body != m.Body || x.Sid == nil {
			continue
		}
		if x.DateCreated != nil {
			if at, err := time.Parse(time.RFC1123Z, *x.DateCreated); err == nil && at.Before(since) {
				continue
			}
		}
		rec := notify.Receipt{SID: *x.Sid}
		if x.Status != nil {
			rec.Status = *x.Status
		}
		return rec, true, nil
	}
	return notify.Receipt{}, false, nil
}

var httpCode = regexp.MustCompile(`HTTP error code: (\d{3})`)

// codeUnsubscribed is Twilio's error for a recipient who replied STOP (to
// Twilio or to the carrier): "Attempt to send to unsubscribed recipient".
const codeUnsubscribed = 21610

// classify maps a twilio-go error to the outbox's retry classes.
func classify(err error, wrote bool) error {
	status := 0
	var rest *twclient.TwilioRestError
	var restV1 *twclient.RestErrorV1
	switch {
	case errors.As(err, &rest):
		status = rest.Status
	case errors.As(err, &restV1):
		status = restV1.HttpStatusCode
	default:
		// An error answer whose body was not Twilio's JSON.
		if m := httpCode.FindStringSubmatch(err.Error()); m != nil {
			status, _ = strconv.Atoi(m[1])
		}
	}
	switch {
	case rest != nil && rest.Code == codeUnsubscribed:
		return fmt.Errorf("%w: twilio refused the message (%d): %v", notify.ErrOptedOut, rest.Code, err)
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%w: twilio answered %d: %v", notify.ErrTemporary, status, err)
	case status != 0:
		return fmt.Errorf("twilio refused the message (%d): %v", status, err)
	case !wrote:
		return fmt.Errorf("%w: %v", notify.ErrTemporary, err)
	}
	// Written, then no answer: Twilio may have created the message.
	return fmt.Errorf("%w: %v", notify.ErrAmbiguous, err)
}
