package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

func TestSegments(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		n    int
		ucs2 bool
	}{
		{"empty", "", 1, false},
		{"160 GSM", strings.Repeat("a", 160), 1, false},
		{"161 GSM", strings.Repeat("a", 161), 2, false},
		{"306 GSM", strings.Repeat("é", 306), 2, false},
		{"307 GSM", strings.Repeat("a", 307), 3, false},
		{"extension takes two", strings.Repeat("€", 80), 1, false},
		{"escape pair not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), 2, false},
		{"escape pair at a boundary", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), 3, false},
		{"70 UCS-2", strings.Repeat("ê", 70), 1, true},
		{"71 UCS-2", "ç" + strings.Repeat("a", 70), 2, true},
		{"134 UCS-2", strings.Repeat("ô", 134), 2, true},
		{"135 UCS-2", strings.Repeat("ô", 135), 3, true},
		{"surrogate pair", strings.Repeat("😀", 35), 1, true},
		{"surrogate pair not split", "aa" + strings.Repeat("😀", 66), 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ucs2 := Segments(c.in)
			if n != c.n || ucs2 != c.ucs2 {
				t.Errorf("Segments = %d, ucs2 %v; want %d, %v", n, ucs2, c.n, c.ucs2)
			}
		})
	}
}

func TestToGSM7(t *testing.T) {
	for in, want := range map[string]string{
		"fridge-a200":      "fridge-a200",
		"réfrigérateur":    "réfrigérateur",
		"fenêtre façade":   "fenetre facade",
		"l’île…":           "l'ile...",
		"cœur – 😀":         "coeur - ?",
		"Ça coûte 5 €":     "Ça coute 5 €",
		"Straße Übergröße": "Straße Übergröße",
	} {
		if got := toGSM7(in); got != want || !IsGSM7(got) {
			t.Errorf("toGSM7(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTemplateSegments renders every template in every language with long
// but plausible values (a long brand and model, three slots on long
// French dates, a long forecast) and checks that each keeps to GSM-7 and
// MaxSegments segments, and that an offer keeps its model and component
// whole.
func TestTemplateSegments(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Paris")
	for _, start := range []time.Time{time.Date(2026, 9, 30, 14, 0, 0, 0, loc), time.Date(2026, 9, 30, 10, 30, 0, 0, loc)} {
		templateSegments(t, loc, start)
	}
}

func templateSegments(t *testing.T, loc *time.Location, start time.Time) {
	for lang := range templateText {
		var slots []string
		for i := range 3 {
			s := start.Add(time.Duration(i) * 24 * time.Hour)
			slots = append(slots, string(rune('1'+i))+") "+formatSlot(lang, s, s.Add(2*time.Hour), loc))
		}
		for kind := range templateText[lang] {
			for _, n := range []int{3, 2, 1, 0} {
				if n == 3 {
					// Three slots on three days, the last one in the afternoon.
					slots[2] = "3) " + formatSlot(lang, start.Add(49*time.Hour+30*time.Minute), start.Add(51*time.Hour+30*time.Minute), loc)
				}
				d := msgData{Brand: "Frigo Care", Product: "Cuisine pro 2", Component: "refrigerant",
					Forecast: formatForecast(lang, 12*24*time.Hour), Slots: slots[:n],
					Visit: formatSlot(lang, start, start.Add(2*time.Hour), loc), Contact: "call 0800 123 456 (Mon-Fri 8-18)",
					Text: "Our technician will call you before coming."}
				for _, link := range []string{"", "https://proactive.example.com/c/AAAAAAAAAAAAAAAAAAAAAA"} {
					d.Link = link
					body, err := render(lang, kind, d)
					if err != nil {
						t.Errorf("%s/%s with %d slots: %v", lang, kind, n, err)
						continue
					}
					segs, ucs2 := Segments(body)
					t.Logf("%s/%s, %d slots: %d segment(s), %d characters", lang, kind, n, segs, len([]rune(body)))
					if testing.Verbose() && n == 3 && kind == KindOffer {
						t.Log(body)
					}
					if ucs2 || segs > MaxSegments {
						t.Errorf("%s/%s with %d slots: %d segments (UCS-2 %v):\n%s", lang, kind, n, segs, ucs2, body)
					}
					if (kind == KindOffer || kind == "offer_noslots") && !strings.Contains(body, "Cuisine pro 2") {
						t.Errorf("%s/%s: the model was clipped:\n%s", lang, kind, body)
					}
					if link != "" && linked(kind) && !strings.Contains(body, link) {
						t.Errorf("%s/%s: the link is missing:\n%s", lang, kind, body)
					}
				}
			}
		}
	}
}

func TestComponentNames(t *testing.T) {
	for _, c := range []struct{ lang, in, want string }{
		{"fr", "compressor", "compresseur"},
		{"fr", "door_seal", "joint de porte"},
		{"fr", "Fan", "ventilateur"},
		{"fr", "flux_capacitor", "flux capacitor"},
		{"en", "door_seal", "door seal"},
	} {
		if got := componentName(c.lang, c.in); got != c.want {
			t.Errorf("componentName(%s, %s) = %q, want %q", c.lang, c.in, got, c.want)
		}
	}
	body, err := render("fr", KindOffer, msgData{Brand: "X", Product: "frigo", Component: "compressor"})
	if err != nil || !strings.Contains(body, "(compresseur)") {
		t.Errorf("French offer = %q, %v; want the component in French", body, err)
	}
}

// FuzzToGSM7: any text (a device's model, a brand) comes out in the GSM
// 7-bit alphabet, and counting its segments never fails.
func FuzzToGSM7(f *testing.F) {
	for _, s := range []string{"", "fenêtre", "l’île…", "😀\x00\xff", strings.Repeat("€", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g := toGSM7(s)
		if !IsGSM7(g) {
			t.Fatalf("toGSM7(%q) = %q, not GSM-7", s, g)
		}
		if n, ucs2 := Segments(g); ucs2 || n < 1 {
			t.Fatalf("Segments(%q) = %d, %v", g, n, ucs2)
		}
		Segments(s)
	})
}

// linked reports whether messages of kind carry the customer link.
func linked(kind string) bool {
	switch kind {
	case KindOffer, "offer_noslots", KindOfferReminder, KindReoffer, KindConfirm, "confirm_soon", KindVisitReminder:
		return true
	}
	return false
}

// The opt-out's confirmation names the channel the customer left (consent
// is per channel), in each language, in one GSM-7 segment.
func TestOptOutNamesChannel(t *testing.T) {
	want := map[string]map[proactive.Channel]string{
		"en": {"": "no more SMS from us", proactive.ChannelSMS: "no more SMS from us",
			proactive.ChannelWhatsApp: "no more WhatsApp messages from us", proactive.ChannelEmail: "no more emails from us"},
		"fr": {"": "plus de SMS de notre part", proactive.ChannelSMS: "plus de SMS de notre part",
			proactive.ChannelWhatsApp: "plus de messages WhatsApp de notre part", proactive.ChannelEmail: "plus d'e-mails de notre part"},
	}
	for lang, byChannel := range want {
		for ch, phrase := range byChannel {
			body, err := render(lang, KindOptOut, msgData{Brand: "Frigo Care", Channel: ch})
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, ch, err)
			}
			if !strings.Contains(body, phrase) || !strings.Contains(body, "Frigo Care") || !strings.Contains(body, "START") {
				t.Errorf("%s on %q: %q, want %q in it", lang, ch, body, phrase)
			}
			if segs, ucs2 := Segments(body); segs != 1 || ucs2 {
				t.Errorf("%s on %q: %d segments (UCS-2 %v): %q", lang, ch, segs, ucs2, body)
			}
		}
	}
}
