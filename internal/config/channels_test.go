package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The channels' keys: WhatsApp's sender and templates (a map, from the file
// or as kind=SID pairs from the environment), SMTP's URL as a secret
// (never printed, from a file too) and its sender.
func TestChannelKeys(t *testing.T) {
	const offer, survey = "HX0123456789abcdef0123456789abcdef", "HXfedcba9876543210fedcba9876543210"
	secretFile := filepath.Join(t.TempDir(), "smtp_url")
	if err := os.WriteFile(secretFile, []byte("smtps://mailer:smtp-secret-5@mail.example.com:465\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PROACTIVE_TWILIO_ACCOUNT_SID": "AC1", "PROACTIVE_TWILIO_AUTH_TOKEN": "t", "PROACTIVE_TWILIO_FROM": "+15550001111",
		"PROACTIVE_PUBLIC_URL":                "https://proactive.example",
		"PROACTIVE_TWILIO_WHATSAPP_FROM":      "+15550002222",
		"PROACTIVE_TWILIO_WHATSAPP_TEMPLATES": "offer=" + offer + ", survey=" + survey,
		"PROACTIVE_SMTP_URL_FILE":             secretFile,
		"PROACTIVE_SMTP_FROM":                 "Proactive <service@example.com>",
	}
	cfg, err := Load("", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Twilio.WhatsAppFrom != "+15550002222" ||
		!reflect.DeepEqual(cfg.Twilio.WhatsAppTemplates, map[string]string{"offer": offer, "survey": survey}) ||
		cfg.SMTP.URL.Reveal() != "smtps://mailer:smtp-secret-5@mail.example.com:465" || cfg.SMTP.From != "Proactive <service@example.com>" {
		t.Errorf("channels from the environment: %+v %+v", cfg.Twilio, cfg.SMTP)
	}
	asJSON, _ := json.Marshal(cfg)
	for _, out := range []string{cfg.Printable(), fmt.Sprintf("%+v", cfg), string(asJSON)} {
		if strings.Contains(out, "smtp-secret-5") {
			t.Errorf("the SMTP password is printed:\n%s", out)
		}
	}

	file := writeFile(t, "c.yaml", "twilio:\n  whatsapp_templates:\n    offer: "+offer+"\n    visit_reminder: "+survey+"\n")
	cfg, err = Load(file, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Twilio.WhatsAppTemplates, map[string]string{"offer": offer, "visit_reminder": survey}) {
		t.Errorf("templates from the file: %v", cfg.Twilio.WhatsAppTemplates)
	}
}

func TestChannelKeysChecked(t *testing.T) {
	_, err := Load("", envMap(map[string]string{
		"PROACTIVE_TWILIO_WHATSAPP_FROM":      "0612345678",
		"PROACTIVE_TWILIO_WHATSAPP_TEMPLATES": "offer=HX1",
		"PROACTIVE_SMTP_URL":                  "http://mailer:smtp-secret-6@mail.example.com",
	}))
	wantErrors(t, err,
		"twilio.whatsapp_from: needs twilio.account_sid",
		"twilio.whatsapp_from: \"0612345678\" is not a number in E.164 form",
		"twilio.whatsapp_templates: offer: \"HX1\" is not a Content SID",
		"smtp.url: must be smtp://",
		"smtp.from: required with smtp.url",
		"public_url: required with smtp.url",
	)
	if strings.Contains(err.Error(), "smtp-secret-6") {
		t.Errorf("the error shows the SMTP password: %v", err)
	}
	_, err = Load("", envMap(map[string]string{"PROACTIVE_TWILIO_WHATSAPP_TEMPLATES": "offer"}))
	wantErrors(t, err, "twilio.whatsapp_templates (PROACTIVE_TWILIO_WHATSAPP_TEMPLATES): \"offer\" is not a list of name=value pairs")
	_, err = Load(writeFile(t, "c.yaml", "twilio:\n  whatsapp_templates: [offer]\n"), envMap(nil))
	wantErrors(t, err, "twilio.whatsapp_templates")
}
