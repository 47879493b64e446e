package notify

import (
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxBody is the longest message the notifier sends, in characters: two SMS
// segments. The opt-out line is included.
const MaxBody = 320

// The kinds of outgoing message. Proactive kinds obey quiet hours and the
// daily cap; the others answer something the customer just sent.
const (
	KindOffer         = "offer"
	KindOfferReminder = "offer_reminder"
	KindVisitReminder = "visit_reminder"
	KindSurvey        = "survey"
	KindDispatch      = "dispatch"
	KindConfirm       = "confirm"
	KindReoffer       = "reoffer"
	KindDeclined      = "declined"
	KindCallback      = "callback"
	KindHelp          = "help"
	KindStart         = "start"
	KindClarify       = "clarify"
	KindThanks        = "thanks"
)

// proactiveKind reports whether a message of kind k is sent on our
// initiative: those wait for quiet hours to end and count toward the cap.
func proactiveKind(k string) bool {
	switch k {
	case KindOffer, KindOfferReminder, KindVisitReminder, KindSurvey, KindDispatch:
		return true
	}
	return false
}

// msgData is what templates see.
type msgData struct {
	Product   string
	Component string
	Forecast  string   // "about 5 days", empty without a prediction
	Slots     []string // "2) Tue 10 Mar 08:00-10:00", numbered as offered
	Visit     string   // the booked visit, formatted
	Contact   string
	Text      string // a dispatcher's free text
}

// optOut ends every message but the HELP answer's own opt-out hint.
var optOut = map[string]string{
	"en": "Reply STOP to opt out.",
	"fr": "STOP pour ne plus recevoir.",
}

// templateText per language and kind; the opt-out line is appended.
var templateText = map[string]map[string]string{
	"en": {
		KindOffer: `{{.Product}}: our monitoring expects the {{.Component}} to fail{{if .Forecast}} within {{.Forecast}}{{else}} soon{{end}}. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply {{if eq (len .Slots) 2}}1 or 2{{else}}1, 2 or 3{{end}} to book, CALL for a call, NO to decline.`,
		"offer_noslots": `{{.Product}}: our monitoring expects the {{.Component}} to fail{{if .Forecast}} within {{.Forecast}}{{else}} soon{{end}}. Reply CALL to arrange a visit, NO to decline.`,
		KindOfferReminder: `Reminder: your {{.Product}} needs a {{.Component}} check. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply with a number to book, CALL or NO.`,
		KindReoffer: `Sorry, that slot was just taken. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply with a number to book, CALL or NO.`,
		"reoffer_noslots": `Sorry, that slot was just taken and none is free now. Reply CALL and we will phone you.`,
		KindConfirm:       `Booked: a technician visits your {{.Product}} {{.Visit}}. We will remind you the day before.`,
		KindVisitReminder: `Reminder: a technician visits your {{.Product}} tomorrow, {{.Visit}}.`,
		KindSurvey:        `How was the visit to your {{.Product}}? Reply 1 (poor) to 5 (excellent).`,
		KindThanks:        `Thank you for your feedback.`,
		KindDeclined:      `Understood, no visit is planned. Reply CALL if you change your mind.`,
		KindCallback:      `Thanks, we will call you shortly.`,
		KindHelp:          `Proactive service for your devices: {{.Contact}}. Reply STOP to opt out, START to opt in.`,
		KindStart:         `You will receive service messages again.`,
		KindClarify:       `Sorry, we did not understand. {{if .Slots}}Reply with a slot number ({{range $i, $s := .Slots}}{{if $i}}, {{end}}{{inc $i}}{{end}}), {{else}}Reply {{end}}CALL, NO or HELP.`,
		KindDispatch:      `{{.Text}}`,
	},
	"fr": {
		KindOffer: `{{.Product}} : notre surveillance prévoit une panne de {{.Component}}{{if .Forecast}} d'ici {{.Forecast}}{{else}} prochainement{{end}}. Un technicien peut passer :
{{range .Slots}}{{.}}
{{end}}Répondez {{if eq (len .Slots) 2}}1 ou 2{{else}}1, 2 ou 3{{end}} pour réserver, CALL pour être rappelé, NO pour refuser.`,
		"offer_noslots": `{{.Product}} : notre surveillance prévoit une panne de {{.Component}}{{if .Forecast}} d'ici {{.Forecast}}{{else}} prochainement{{end}}. Répondez CALL pour fixer une visite, NO pour refuser.`,
		KindOfferReminder: `Rappel : votre {{.Product}} doit être vérifié ({{.Component}}). Un technicien peut passer :
{{range .Slots}}{{.}}
{{end}}Répondez par un numéro, CALL ou NO.`,
		KindReoffer: `Désolé, ce créneau vient d'être pris. Un technicien peut passer :
{{range .Slots}}{{.}}
{{end}}Répondez par un numéro, CALL ou NO.`,
		"reoffer_noslots": `Désolé, ce créneau vient d'être pris et aucun autre n'est libre. Répondez CALL pour être rappelé.`,
		KindConfirm:       `Réservé : un technicien passe pour votre {{.Product}} {{.Visit}}. Rappel la veille.`,
		KindVisitReminder: `Rappel : un technicien passe pour votre {{.Product}} demain, {{.Visit}}.`,
		KindSurvey:        `Comment s'est passée la visite pour votre {{.Product}} ? Répondez de 1 (mauvais) à 5 (excellent).`,
		KindThanks:        `Merci pour votre avis.`,
		KindDeclined:      `C'est noté, aucune visite n'est prévue. Répondez CALL si vous changez d'avis.`,
		KindCallback:      `Merci, nous vous appelons très vite.`,
		KindHelp:          `Service proactif de vos appareils : {{.Contact}}. STOP pour ne plus recevoir, START pour recevoir.`,
		KindStart:         `Vous recevrez à nouveau nos messages de service.`,
		KindClarify:       `Désolé, nous n'avons pas compris. Répondez {{if .Slots}}par un numéro ({{range $i, $s := .Slots}}{{if $i}}, {{end}}{{inc $i}}{{end}}), {{end}}CALL, NO ou HELP.`,
		KindDispatch:      `{{.Text}}`,
	},
}

var templates = func() map[string]map[string]*template.Template {
	funcs := template.FuncMap{"inc": func(i int) int { return i + 1 }}
	out := map[string]map[string]*template.Template{}
	for lang, kinds := range templateText {
		out[lang] = map[string]*template.Template{}
		for kind, text := range kinds {
			out[lang][kind] = template.Must(template.New(lang + "/" + kind).Funcs(funcs).Parse(text))
		}
	}
	return out
}()

// baseLanguage maps a BCP 47 tag to a language we have templates for.
func baseLanguage(tag string) string {
	l, _, _ := strings.Cut(strings.ToLower(tag), "-")
	if _, ok := templates[l]; ok {
		return l
	}
	return "en"
}

// render builds the text of a message of kind in the customer's language,
// with the opt-out line (except on the HELP answer, which names STOP
// itself). The device's model and component are put on one line and
// clipped, shorter when the whole would not fit in MaxBody characters (a
// long model in French with three slots would not). Only free text that
// does not fit (a dispatcher's) makes an error.
func render(lang, kind string, d msgData) (string, error) {
	lang = baseLanguage(lang)
	t := templates[lang][kind]
	if t == nil {
		return "", fmt.Errorf("no %s template for %s messages", lang, kind)
	}
	product, component := oneLine(d.Product), strings.ReplaceAll(oneLine(d.Component), "_", " ")
	var body string
	var n int
	for _, max := range [][2]int{{40, 30}, {24, 20}, {16, 14}, {10, 10}} {
		d.Product, d.Component = clip(product, max[0]), clip(component, max[1])
		var b strings.Builder
		if err := t.Execute(&b, d); err != nil {
			return "", fmt.Errorf("render %s/%s: %w", lang, kind, err)
		}
		body = strings.TrimSpace(b.String())
		if kind != KindHelp {
			body += "\n" + optOut[lang]
		}
		if n = utf8.RuneCountInString(body); n <= MaxBody {
			return body, nil
		}
	}
	return "", fmt.Errorf("render %s/%s: %d characters, more than %d", lang, kind, n, MaxBody)
}

// oneLine replaces control characters (line breaks among them) and invalid
// UTF-8 with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

var (
	weekdaysFR = [7]string{"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."}
	monthsFR   = [12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}
)

// formatSlot writes a visit window in the site's local time and the
// customer's language: "Tue 12 Mar 08:00-10:00".
func formatSlot(lang string, start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	if baseLanguage(lang) == "fr" {
		return fmt.Sprintf("%s %d %s %s-%s", weekdaysFR[s.Weekday()], s.Day(), monthsFR[s.Month()-1],
			s.Format("15h04"), e.Format("15h04"))
	}
	return s.Format("Mon 2 Jan 15:04") + "-" + e.Format("15:04")
}

// formatForecast turns a time to failure into "about 5 days".
func formatForecast(lang string, ttf time.Duration) string {
	if ttf <= 0 {
		return ""
	}
	fr := baseLanguage(lang) == "fr"
	switch {
	case ttf >= 48*time.Hour:
		d := int((ttf + 12*time.Hour) / (24 * time.Hour))
		if fr {
			return fmt.Sprintf("environ %d jours", d)
		}
		return fmt.Sprintf("about %d days", d)
	case ttf >= 2*time.Hour:
		h := int((ttf + 30*time.Minute) / time.Hour)
		if fr {
			return fmt.Sprintf("environ %d heures", h)
		}
		return fmt.Sprintf("about %d hours", h)
	}
	if fr {
		return "quelques heures"
	}
	return "a few hours"
}
