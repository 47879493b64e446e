package proactive

import "regexp"

// Forms the configuration, the registry and the Twilio sender all check.
var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	contentSID = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)
)

// ValidE164 reports whether s is a phone number in E.164 form, like
// +14155550123.
func ValidE164(s string) bool { return e164.MatchString(s) }

// ValidContentSID reports whether s is a Twilio Content SID: HX and 32 hex
// digits.
func ValidContentSID(s string) bool { return contentSID.MatchString(s) }
