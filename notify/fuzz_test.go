package notify

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzParseReply: any inbound SMS body is read without panicking, the
// reading does not change when read again from its normalised keyword, the
// opt-out keywords are recognised whatever their case and surrounding
// spaces and punctuation, and so is every other reading of plain text.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"STOP", " stop ", "Stop.", "stopall", "UNSUBSCRIBE", "cancel", "end", "quit", "START", "unstop",
		"help", "INFO", "2", " 2 ", "#3", "3)", "-1", "+4", "007", "99999999999999999999", "CALL", "call me", "no", "No!",
		"yes", "", " ", "\xff\xfe", "ＳＴＯＰ", "ß", "İ", "2\u00a0", "¡no!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := parseReply(body)
		if again := parseReply(r.Keyword); again != r {
			t.Errorf("parseReply(%q) = %+v, but its keyword reads %+v", body, r, again)
		}
		if (r.Kind == replyStop) != stopWords[r.Keyword] {
			t.Errorf("parseReply(%q) = %+v: stop keyword misread", body, r)
		}
		if r.Kind != replyNumber && r.Number != 0 {
			t.Errorf("parseReply(%q) = %+v: a number without replyNumber", body, r)
		}
		if isPrintableASCII(body) {
			v := parseReply(" \t" + strings.ToLower(body) + " .\n")
			if v.Kind != r.Kind || v.Number != r.Number {
				t.Errorf("parseReply(%q) = %+v, but lower case and padded it reads %+v", body, r, v)
			}
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// FuzzRender: every template, in any language tag, with any device model
// and component (they come from the registry and the rule files), renders
// within MaxBody characters and MaxSegments GSM-7 segments, on lines free
// of control characters, ending with its footer. A dispatcher's
// free text either fits with the opt-out line or is refused.
func FuzzRender(f *testing.F) {
	f.Add("en", "fridge-a200", "compressor", "Your visit is confirmed.", int64(5*24))
	f.Add("fr-FR", strings.Repeat("é", 60), strings.Repeat("_", 40), strings.Repeat("x", 400), int64(3))
	f.Add("xx", "a\nReply YES to pay", "fan\r\n\x00", "line 1\nline 2", int64(0))
	f.Add("FR", "\xff\xfe", "\u2028", "", int64(-1))
	f.Fuzz(func(t *testing.T, lang, product, component, text string, ttfHours int64) {
		if ttfHours > 1<<20 || ttfHours < -1<<20 {
			ttfHours %= 1 << 20
		}
		loc := time.UTC
		start := time.Date(2026, 9, 30, 14, 0, 0, 0, loc) // long month and day names in French
		var slots []string
		for i := range 3 {
			s := start.Add(time.Duration(i) * 24 * time.Hour)
			slots = append(slots, string(rune('1'+i))+") "+formatSlot(lang, s, s.Add(2*time.Hour), loc))
		}
		d := msgData{Product: product, Component: component, Forecast: formatForecast(lang, time.Duration(ttfHours)*time.Hour),
			Slots: slots, Visit: formatSlot(lang, start, start.Add(2*time.Hour), loc), Contact: "reply CALL and we will phone you"}
		for kind := range templateText["en"] {
			dd := d
			if kind == KindDispatch {
				dd.Text = text
			}
			for _, n := range []int{3, 2} {
				dd.Slots = slots[:n]
				body, err := render(lang, kind, dd)
				if err != nil {
					if kind == KindDispatch {
						continue // too long a text is refused, not cut
					}
					t.Fatalf("render(%q, %s) with product %q, component %q: %v", lang, kind, product, component, err)
				}
				if c := utf8.RuneCountInString(body); c > MaxBody {
					t.Errorf("%s: %d characters, more than %d", kind, c, MaxBody)
				}
				if segs, ucs2 := Segments(body); segs > MaxSegments || ucs2 && kind != KindDispatch {
					t.Errorf("%s: %d segments (UCS-2 %v): %q", kind, segs, ucs2, body)
				}
				if f := footer(baseLanguage(lang), kind); !strings.HasSuffix(body, "\n"+f) && f != "" {
					t.Errorf("%s: no footer at the end: %q", kind, body)
				}
				if kind == KindDispatch {
					continue
				}
				for _, r := range body {
					if r != '\n' && unicode.IsControl(r) {
						t.Errorf("%s: control character %U in %q", kind, r, body)
						break
					}
				}
			}
		}
	})
}
