package twilio

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// Receiver is what the webhooks hand a verified request to; the notifier
// (notify.Notifier) is one.
type Receiver interface {
	// Inbound handles an inbound SMS: the provider's message SID, the
	// sender's number and the text. An internal error (proactive.EInternal)
	// makes the webhook answer 500, so that Twilio retries; any other is
	// the customer's (an unknown number) and is answered like a success.
	Inbound(ctx context.Context, sid, from, body string) error
	// Status records a delivery status of the message with this SID (or of
	// outbox message id, which the callback URL carries, 0 when absent).
	// An error makes the webhook answer 500.
	Status(ctx context.Context, id int64, sid, status, errorCode string) error
}

// WebhookOptions configure Webhooks.
type WebhookOptions struct {
	// AuthToken is the account's auth token, which signs the requests.
	// Without it every request is refused with 403: an unsigned endpoint
	// would let anyone book visits and opt customers out.
	AuthToken string
	// PublicURL is the URL Twilio reaches us at, such as
	// https://proactive.example.com; signatures are computed over it.
	PublicURL string
	// Logger gets the handlers' errors; default discard.
	Logger *slog.Logger
	// Rejected, when set, is called for each request refused for its
	// signature (a metric).
	Rejected func()
}

// maxWebhookBody bounds a webhook's form; Twilio's are a few KiB.
const maxWebhookBody = 64 << 10

const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Webhooks returns the handler of notify.SMSPath (inbound messages) and
// notify.StatusPath (delivery statuses), which hands them to r. Both check
// X-Twilio-Signature against PublicURL and the request's path and query,
// over the raw body, before parsing anything, and answer 403 when it does
// not validate. Replies to inbound messages go through the notifier's
// outbox; the TwiML answer is empty.
func Webhooks(opt WebhookOptions, r Receiver) http.Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	h := &webhooks{opt: opt, r: r, validator: twclient.NewRequestValidator(opt.AuthToken)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+notify.SMSPath, h.signed(h.serveSMS))
	mux.HandleFunc("POST "+notify.StatusPath, h.signed(h.serveStatus))
	return mux
}

type webhooks struct {
	opt       WebhookOptions
	r         Receiver
	validator twclient.RequestValidator
}

// signed reads the body and checks its signature before calling next with
// the parsed form.
func (h *webhooks) signed(next func(w http.ResponseWriter, r *http.Request, form url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		sig := r.Header.Get("X-Twilio-Signature")
		if h.opt.AuthToken == "" || h.opt.PublicURL == "" || sig == "" ||
			!h.validator.ValidateBody(h.opt.PublicURL+r.URL.RequestURI(), body, sig) {
			if h.opt.Rejected != nil {
				h.opt.Rejected()
			}
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		next(w, r, form)
	}
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, emptyTwiML)
}

func (h *webhooks) serveSMS(w http.ResponseWriter, r *http.Request, form url.Values) {
	err := h.r.Inbound(r.Context(), form.Get("MessageSid"), form.Get("From"), form.Get("Body"))
	if err != nil && proactive.ErrorCode(err) == proactive.EInternal {
		// Twilio retries on 5xx; the notifier kept no record of a message
		// it failed to handle, so the retry is handled, not skipped.
		h.opt.Logger.Error("handle inbound SMS", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeTwiML(w)
}

func (h *webhooks) serveStatus(w http.ResponseWriter, r *http.Request, form url.Values) {
	var id int64
	if m := r.URL.Query().Get("m"); m != "" {
		id, _ = strconv.ParseInt(m, 10, 64)
	}
	err := h.r.Status(r.Context(), id, form.Get("MessageSid"), form.Get("MessageStatus"), form.Get("ErrorCode"))
	if err != nil {
		h.opt.Logger.Error("handle status callback", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
