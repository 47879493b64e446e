package twilio_test

import (
	"net/url"
	"testing"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/proactivehq/proactive/notify/twilio"
)

// TestSignatureValidates checks Signature against twilio-go's own
// validator, which is what the webhooks use.
func TestSignatureValidates(t *testing.T) {
	const token, u = "12345", "https://example.com/webhooks/twilio/sms?m=7"
	form := url.Values{"From": {"+4915550000001"}, "Body": {"2"}, "MessageSid": {"SM1"}, "To": {"+15005550006"}}
	sig := twilio.Signature(token, u, form)
	v := twclient.NewRequestValidator(token)
	if !v.ValidateBody(u, []byte(form.Encode()), sig) {
		t.Fatalf("signature %s does not validate", sig)
	}
	if v.ValidateBody(u, []byte(form.Encode()), twilio.Signature("other", u, form)) {
		t.Fatal("a signature made with another token validates")
	}
	form.Set("Body", "3")
	if v.ValidateBody(u, []byte(form.Encode()), sig) {
		t.Fatal("a signature validates another body")
	}
}
