// Package client is a client of the platform's own HTTP API (api.Prefix)
// and of its webhooks, for the commands that talk to a running platform:
// `proactive simulate score --api` and `proactive sms reply`.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Options configure a Client. Zero fields get defaults.
type Options struct {
	// Token is the API bearer token (proactive token create); empty sends
	// none, as for the webhooks.
	Token string
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// Client speaks to one platform at its base URL.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the platform at base, like http://127.0.0.1:8080.
func New(base string, o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Client{base: strings.TrimRight(base, "/"), token: o.Token, http: &http.Client{Timeout: o.Timeout}}
}

// FiredAt returns when the alert that opened t fired (in the devices'
// time), else when t opened. A ticket opened before the platform kept it
// on the ticket has it on its timeline only, which Client.Ticket fills and
// Client.Tickets does not.
func FiredAt(t proactive.Ticket) time.Time {
	if !t.FiredAt.IsZero() {
		return t.FiredAt
	}
	for _, ev := range t.Timeline {
		var body struct {
			FiredAt time.Time `json:"fired_at"`
		}
		if ev.Kind == proactive.TicketEventAlert && json.Unmarshal(ev.Body, &body) == nil && !body.FiredAt.IsZero() {
			return body.FiredAt
		}
	}
	return t.OpenedAt
}

// TicketAlerts reads every ticket, page by page, as the alert that opened
// it: fired at FiredAt (in the devices' time, which is simulated time
// under simulate --speed), which a ticket opened before the platform kept
// it on the ticket has on its timeline only, read then.
func (c *Client) TicketAlerts(ctx context.Context) ([]proactive.Alert, error) {
	var out []proactive.Alert
	err := c.EachTicket(ctx, func(t proactive.Ticket) error {
		if t.FiredAt.IsZero() {
			full, err := c.Ticket(ctx, t.ID)
			if err != nil {
				return err
			}
			t = full
		}
		fired := FiredAt(t)
		out = append(out, proactive.Alert{Rule: t.Rule, Device: t.Device, Component: t.Component,
			Severity: t.Severity, State: proactive.AlertFiring, ActiveAt: fired, FiredAt: fired})
		return nil
	})
	return out, err
}

// Page is one page of a listing; Next is the cursor of the next page,
// empty after the last one.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// Tickets returns one page of tickets, newest first, of at most limit
// (the API's default when 0), from cursor (empty: the first page).
func (c *Client) Tickets(ctx context.Context, cursor string, limit int) (Page[proactive.Ticket], error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/api/v1/tickets"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page Page[proactive.Ticket]
	err := c.get(ctx, path, &page)
	return page, err
}

// EachTicket calls fn with every ticket, page after page, and stops at the
// first error.
func (c *Client) EachTicket(ctx context.Context, fn func(proactive.Ticket) error) error {
	cursor := ""
	for {
		page, err := c.Tickets(ctx, cursor, 500)
		if err != nil {
			return err
		}
		for _, t := range page.Items {
			if err := fn(t); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		cursor = page.Next
	}
}

// Ticket returns the ticket id with its timeline.
func (c *Client) Ticket(ctx context.Context, id int64) (proactive.Ticket, error) {
	var t proactive.Ticket
	err := c.get(ctx, "/api/v1/tickets/"+strconv.FormatInt(id, 10), &t)
	return t, err
}

// Incidents returns the incidents, newest first; status (open or
// dismissed) narrows them when not empty.
func (c *Client) Incidents(ctx context.Context, status proactive.IncidentStatus) ([]proactive.Incident, error) {
	path := "/api/v1/incidents"
	if status != "" {
		path += "?" + url.Values{"status": {string(status)}}.Encode()
	}
	var page Page[proactive.Incident]
	err := c.get(ctx, path, &page)
	return page.Items, err
}

// Incident returns the incident id with its devices and tickets.
func (c *Client) Incident(ctx context.Context, id int64) (proactive.Incident, error) {
	var i proactive.Incident
	err := c.get(ctx, "/api/v1/incidents/"+strconv.FormatInt(id, 10), &i)
	return i, err
}

// DismissIncident dismisses the open incident id as a false alarm, with an
// optional note: its tickets in review close with the outcome false_alarm.
func (c *Client) DismissIncident(ctx context.Context, id int64, note string) (proactive.Incident, error) {
	var i proactive.Incident
	err := c.do(ctx, http.MethodPost, "/api/v1/incidents/"+strconv.FormatInt(id, 10)+"/dismiss", map[string]string{"note": note}, &i)
	return i, err
}

// Approve approves ticket id in review: its offer goes out at once (or,
// when its customer cannot be texted, it goes to open). It returns the
// ticket as it became.
func (c *Client) Approve(ctx context.Context, id int64) (proactive.Ticket, error) {
	var t proactive.Ticket
	err := c.do(ctx, http.MethodPost, "/api/v1/tickets/"+strconv.FormatInt(id, 10)+"/approve", nil, &t)
	return t, err
}

// Dismiss closes ticket id, open or in review, as a false alarm with note
// (none when empty), and returns it closed.
func (c *Client) Dismiss(ctx context.Context, id int64, note string) (proactive.Ticket, error) {
	var t proactive.Ticket
	err := c.do(ctx, http.MethodPost, "/api/v1/tickets/"+strconv.FormatInt(id, 10)+"/dismiss", map[string]string{"note": note}, &t)
	return t, err
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// do sends a request with in as its JSON body (none when nil) and decodes
// a 200's body into v.
func (c *Client) do(ctx context.Context, method, path string, in, v any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(out)))
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// InboundSMS is a customer's message as the SMS provider posts it to the
// platform's webhook.
type InboundSMS struct {
	MessageSID, AccountSID string
	From, To, Body         string
}

// SendInboundSMS posts m to the webhook at path (like
// /webhooks/twilio/sms) as Twilio does: a form, signed by sign over the
// full URL and the form (Twilio's X-Twilio-Signature). It fails unless the
// platform answers 200.
func (c *Client) SendInboundSMS(ctx context.Context, path string, m InboundSMS, sign func(url string, form url.Values) string) error {
	form := url.Values{"MessageSid": {m.MessageSID}, "AccountSid": {m.AccountSID}, "From": {m.From}, "To": {m.To}, "Body": {m.Body}}
	target := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sign(target, form))
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Probe asks url (a health or readiness check, like /healthz) with GET and
// returns the answer's body, at most 4 KiB; an answer other than 200 is an
// error naming its status and body.
func Probe(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, body)
	}
	return body, nil
}
