package notify

import (
	"strings"
	"unicode"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"
)

// SMS segments (3GPP TS 23.038 and 23.040). A message written only in the
// GSM 7-bit alphabet fits 160 septets in one segment and 153 per segment
// when split (the rest carries the concatenation header); a character of
// the alphabet's extension table takes two septets. Any other character
// makes the whole message UCS-2: 70 UTF-16 units in one segment, 67 per
// segment when split.

// MaxSegments is the most SMS segments a message the notifier writes may
// take: carriers bill each one, and an offer longer than two is cut or
// delayed by some handsets.
const MaxSegments = 2

// gsmBasic is the GSM 7-bit default alphabet; gsmExtended the characters
// reached through its escape, which take two septets.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "\f^{}\\[~]|€"
)

var gsmSeptets = func() map[rune]int {
	m := map[rune]int{}
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtended {
		m[r] = 2
	}
	return m
}()

// IsGSM7 reports whether s is written only in the GSM 7-bit alphabet (with
// its extension table).
func IsGSM7(s string) bool {
	for _, r := range s {
		if gsmSeptets[r] == 0 {
			return false
		}
	}
	return true
}

// Segments returns how many SMS segments s takes and whether it is sent as
// UCS-2. The empty message takes one segment.
func Segments(s string) (n int, ucs2 bool) {
	if IsGSM7(s) {
		var units []int
		for _, r := range s {
			units = append(units, gsmSeptets[r])
		}
		return count(units, 160, 153), false
	}
	var units []int
	for _, r := range s {
		units = append(units, len(utf16.Encode([]rune{r})))
	}
	return count(units, 70, 67), true
}

// count splits characters of the given sizes into segments of at most
// single units (when all fit in one) or multi units each, never splitting a
// character (an escape pair, a surrogate pair) across two segments.
func count(units []int, single, multi int) int {
	total := 0
	for _, u := range units {
		total += u
	}
	if total <= single {
		return 1
	}
	n, used := 1, 0
	for _, u := range units {
		if used+u > multi {
			n, used = n+1, 0
		}
		used += u
	}
	return n
}

// gsmFallback spells characters that GSM-7 lacks with ones it has.
var gsmFallback = map[rune]string{
	'…': "...", '‘': "'", '’': "'", '‚': ",", '“': "\"", '”': "\"", '„': "\"", '«': "\"", '»': "\"",
	'–': "-", '—': "-", '‐': "-", '−': "-", '\u00a0': " ", '\u202f': " ", '\t': " ",
	'œ': "oe", 'Œ': "OE", 'ç': "c", '·': ".", '×': "x", '`': "'", '´': "'",
}

// toGSM7 rewrites text from outside (a device's model, a component, the
// brand) in the GSM 7-bit alphabet, so that one such character does not
// turn a whole message into UCS-2 and more than double its segments:
// accents the alphabet lacks are dropped (ê → e), common punctuation is
// spelled plainly, and anything else becomes '?'.
func toGSM7(s string) string {
	if IsGSM7(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if gsmSeptets[r] > 0 {
			b.WriteRune(r)
			continue
		}
		if f, ok := gsmFallback[r]; ok {
			b.WriteString(f)
			continue
		}
		base := ""
		for _, d := range norm.NFD.String(string(r)) {
			if !unicode.Is(unicode.Mn, d) {
				base += string(d)
			}
		}
		if base != "" && IsGSM7(base) {
			b.WriteString(base)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
