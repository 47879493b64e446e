package notify

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/proactivehq/proactive/devices"
)

// LinkPath is where a customer link points under the public URL:
// {public_url}/c/{code}.
const LinkPath = "/c/"

// linkCodeBytes is a code's randomness: 128 bits, 22 base64url characters.
const linkCodeBytes = 16

// newLinkCode returns a fresh random link code and its hash.
func newLinkCode() (code, hash string) {
	b := make([]byte, linkCodeBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	code = base64.RawURLEncoding.EncodeToString(b)
	return code, linkHash(code)
}

// linkHash is what the store keeps of a code: its SHA-256, in hex.
func linkHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// validCode reports whether code has the shape of one newLinkCode makes,
// so that anything else is refused before the database is asked.
func validCode(code string) bool {
	if len(code) != base64.RawURLEncoding.EncodedLen(linkCodeBytes) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(code)
	return err == nil && len(b) == linkCodeBytes
}

// linkedMessage renders a message of kind (template tmpl) about ticket to
// party p with a link to the ticket's customer page, when there is a
// public URL to link to: without one (a development setup) the message
// goes without a link, since a link to nowhere helps nobody.
func (n *Notifier) linkedMessage(p party, ticket int64, kind, tmpl string, d msgData, urgent bool, now time.Time) (devices.NewMessage, error) {
	var hash string
	if n.opt.PublicURL != "" && ticket > 0 {
		var code string
		code, hash = newLinkCode()
		d.Link = n.opt.PublicURL + LinkPath + code
	}
	body, err := n.render(p.Customer.Language, tmpl, d)
	if err != nil {
		return devices.NewMessage{}, err
	}
	m := outMessage(p, ticket, kind, body, urgent, now)
	m.LinkHash = hash
	return m, nil
}
