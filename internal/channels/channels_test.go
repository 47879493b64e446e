package channels_test

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/internal/channels"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/notify"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDemoPrintsEveryChannel: without a Twilio account every channel is
// printed, an email with its subject.
func TestDemoPrintsEveryChannel(t *testing.T) {
	var out bytes.Buffer
	s, err := channels.Sender(config.Default(), &out, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []notify.Message{
		{ID: 1, To: "+33611111111", Body: "by sms", Kind: notify.KindOffer},
		{ID: 2, Channel: notify.ChannelWhatsApp, To: "+33611111111", Body: "by whatsapp", Kind: notify.KindOffer},
		{ID: 3, Channel: notify.ChannelEmail, To: "ann@example.org", Subject: "Your fridge", Body: "by email", Kind: notify.KindOffer},
	} {
		if _, err := s.Send(t.Context(), m); err != nil {
			t.Errorf("Send %s: %v", m.Channel, err)
		}
	}
	for _, want := range []string{"SMS to +33611111111", "by sms", "WhatsApp to +33611111111", "reply --whatsapp --from +33611111111",
		"email to ann@example.org", "Subject: Your fridge", "by email"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out.String())
		}
	}
}

// TestUnconfiguredChannelFails: with a Twilio account, WhatsApp without its
// sender and email without SMTP are not printed where nobody reads them:
// their messages fail.
func TestUnconfiguredChannelFails(t *testing.T) {
	cfg := config.Default()
	cfg.Twilio.AccountSID, cfg.Twilio.AuthToken, cfg.Twilio.From = "AC1", "token", "+15005550006"
	s, err := channels.Sender(cfg, io.Discard, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []notify.Message{
		{Channel: notify.ChannelWhatsApp, To: "+33611111111", Body: "x"},
		{Channel: notify.ChannelEmail, To: "ann@example.org", Body: "x"},
	} {
		if _, err := s.Send(t.Context(), ch); err == nil || !strings.Contains(err.Error(), "no "+string(ch.Channel)+" provider") {
			t.Errorf("Send on %s: %v, want no provider", ch.Channel, err)
		}
	}
	cfg.SMTP.URL, cfg.SMTP.From = "smtp://mail.example.com", "not an address"
	if _, err := channels.Sender(cfg, io.Discard, discard()); err == nil {
		t.Error("a bad smtp.from was accepted")
	}
}
