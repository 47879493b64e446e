// Package channels builds the notifier's Sender from the configuration:
// one provider per channel, SMS and WhatsApp through Twilio (notify/twilio),
// email over SMTP (notify/email).
package channels

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/email"
	"github.com/proactivehq/proactive/notify/twilio"
)

// Sender returns the Sender of every configured channel (a notify.Channels).
//
// Without a Twilio account the platform runs as a demo: SMS, and WhatsApp
// and email unless configured, are printed on stdout. With one, a channel
// left unconfigured (WhatsApp without twilio.whatsapp_from, email without
// smtp.url) has no Sender: its messages fail and their tickets ask a person
// to follow up, rather than be printed where no customer reads them.
func Sender(cfg config.Config, stdout io.Writer, log *slog.Logger) (notify.Sender, error) {
	out := notify.Channels{}
	tw := cfg.Twilio
	if tw.AccountSID != "" {
		s, err := twilio.New(twilio.Options{
			AccountSID: tw.AccountSID, AuthToken: tw.AuthToken.Reveal(),
			From: tw.From, MessagingServiceSID: tw.MessagingServiceSID, APIURL: tw.APIURL,
			WhatsAppFrom: tw.WhatsAppFrom, WhatsAppTemplates: tw.WhatsAppTemplates,
		})
		if err != nil {
			return nil, fmt.Errorf("twilio: %w", err)
		}
		out[notify.ChannelSMS] = s
		if tw.WhatsAppFrom != "" {
			out[notify.ChannelWhatsApp] = s
		}
	} else {
		console := notify.NewConsoleSender(stdout)
		out[notify.ChannelSMS], out[notify.ChannelWhatsApp], out[notify.ChannelEmail] = console, console, console
		log.Info("no twilio account configured: SMS and WhatsApp messages are printed on the console")
	}
	if cfg.SMTP.URL != "" {
		s, err := email.New(email.Options{URL: cfg.SMTP.URL.Reveal(), From: cfg.SMTP.From})
		if err != nil {
			return nil, err
		}
		out[notify.ChannelEmail] = s
	} else if tw.AccountSID == "" {
		log.Info("no smtp.url configured: emails are printed on the console")
	}
	return out, nil
}
