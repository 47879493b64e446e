package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/proactivehq/proactive/api/client"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/cli"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/twilio"
)

var smsUsage = helpText("sms")

// smsCmd dispatches the sms subcommands.
func smsCmd(ctx context.Context, e env) error {
	if len(e.args) == 0 || e.args[0] != "reply" {
		if len(e.args) > 0 && cli.IsHelp(e.args[0]) {
			return cli.Help(e.stdout, smsUsage)
		}
		fmt.Fprint(e.stderr, smsUsage)
		return errors.New("sms: want a subcommand: reply")
	}
	fs, load := configFlags("sms reply", e)
	from := fs.String("from", "", "the customer's phone `number` (E.164, like +4915550000001)")
	whatsapp := fs.Bool("whatsapp", false, "answer as on WhatsApp (From: whatsapp:+E164)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), smsUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, e.args[1:]); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	phone, ok := devices.NormalizePhone(*from)
	if !ok || text == "" {
		fs.Usage()
		return errors.New("sms reply wants --from in E.164 form and the text of the reply")
	}
	cfg, err := load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	token := cfg.Twilio.AuthToken.Reveal()
	if cfg.PublicURL == "" || token == "" {
		return errors.New("sms reply needs public_url and twilio.auth_token (PROACTIVE_PUBLIC_URL, PROACTIVE_TWILIO_AUTH_TOKEN): the webhook refuses unsigned requests")
	}
	to := cfg.Twilio.From
	if to == "" {
		to = "+15005550006" // Twilio's magic test number: any number will do without an account
	}
	sid := make([]byte, 16)
	_, _ = rand.Read(sid)
	c := client.New(cfg.PublicURL, client.Options{Timeout: 10 * time.Second})
	if *whatsapp {
		phone = notify.WhatsAppPrefix + phone
	}
	m := client.InboundSMS{MessageSID: "SM" + hex.EncodeToString(sid), AccountSID: cfg.Twilio.AccountSID, From: phone, To: to, Body: text}
	if err := c.SendInboundSMS(ctx, notify.SMSPath, m, func(target string, form url.Values) string { return twilio.Signature(token, target, form) }); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "delivered %q from %s; the platform's answer goes through its outbox\n", text, phone)
	return err
}
