package notify

import (
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
)

// MaxBody is the longest message the notifier sends, in characters, the
// footer included; it must also fit in MaxSegments segments.
const MaxBody = 320

// The kinds of outgoing message. Proactive kinds obey quiet hours and the
// daily cap; the others answer something the customer just sent.
const (
	KindOffer          = "offer"
	KindOfferReminder  = "offer_reminder"
	KindVisitReminder  = "visit_reminder"
	KindSurvey         = "survey"
	KindNPS            = "nps" // the loyalty question, after the satisfaction answer
	KindCES            = "ces" // the effort question, after the NPS answer
	KindDispatch       = "dispatch"
	KindConfirm        = "confirm"
	KindReoffer        = "reoffer"
	KindDeclined       = "declined"
	KindCallback       = "callback"
	KindHelp           = "help"
	KindStart          = "start"
	KindClarify        = "clarify"
	KindThanks         = "thanks"
	KindOptOut         = "opt_out"           // the confirmation of STOP
	KindFollowUp       = "follow_up"         // the answer to a reply after the conversation ended
	KindDeclinedUrgent = "declined_critical" // the answer to NO about a critical alert
	KindCancelled      = "visit_cancelled"   // the confirmation of a visit the customer cancelled on their page
)

// Kinds lists every kind of outgoing message, for configuration that names
// them (WhatsApp templates).
var Kinds = []string{KindOffer, KindOfferReminder, KindVisitReminder, KindSurvey, KindDispatch, KindConfirm, KindReoffer,
	KindDeclined, KindCallback, KindHelp, KindStart, KindClarify, KindThanks, KindOptOut, KindFollowUp, KindDeclinedUrgent}

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
	Brand     string // Options.Brand
	Product   string
	Component string
	Forecast  string   // "about 5 days", empty without a prediction
	Slots     []string // "2) Tue 10 Mar 08:00-10:00", numbered as offered
	Visit     string   // the booked visit, formatted
	Contact   string
	Text      string // a dispatcher's free text
	Low, High int    // the range of a survey's answers
	// Link is the ticket's customer page, {public_url}/c/{code}; empty
	// without a public URL.
	Link string
	// Channel is the message's channel: an email has no SMS footer (the
	// email adds its own, see emailParts).
	Channel proactive.Channel
	// Via names the messages of Channel in the language, set by render:
	// consent is per channel, so the opt-out's confirmation says which.
	Via string
}

// channelMessages names a channel's messages as the opt-out's
// confirmation puts them ("no more WhatsApp messages", "plus de SMS").
var channelMessages = map[string]map[proactive.Channel]string{
	"en": {proactive.ChannelSMS: "SMS", proactive.ChannelWhatsApp: "WhatsApp messages", proactive.ChannelEmail: "emails"},
	"fr": {proactive.ChannelSMS: "de SMS", proactive.ChannelWhatsApp: "de messages WhatsApp", proactive.ChannelEmail: "d'e-mails"},
}

// optOut ends the messages that do not carry the full disclosure.
var optOut = map[string]string{
	"en": "Reply STOP to opt out.",
	"fr": "STOP pour ne plus recevoir.",
}

// disclosure ends the first message of a conversation (the offer) and the
// HELP answer, as carriers require (CTIA): the cost and both keywords.
var disclosure = map[string]string{
	"en": "Msg & data rates may apply. Reply STOP to opt out, HELP for help.",
	"fr": "SMS non surtaxés. STOP pour se désabonner, AIDE pour l'aide.",
}

// footer is the line that ends a message of kind in lang: the disclosure,
// the opt-out line, or nothing on the opt-out's confirmation.
func footer(lang, kind string) string {
	switch kind {
	case KindOffer, "offer_noslots", KindHelp:
		return disclosure[lang]
	case KindOptOut:
		return ""
	}
	return optOut[lang]
}

// templateText per language and kind; the footer is appended. The texts
// keep to the GSM 7-bit alphabet (see IsGSM7), which a test checks: one
// other character would make the whole message UCS-2.
var templateText = map[string]map[string]string{
	"en": {
		KindOffer: `{{if .Link}}{{.Brand}}: {{.Product}} ({{.Component}}) may fail{{if .Forecast}} in {{.Forecast}}{{else}} soon{{end}}. Visit:
{{range .Slots}}{{.}}
{{end}}Reply {{if eq (len .Slots) 1}}1{{else if eq (len .Slots) 2}}1-2{{else}}1-3{{end}}, CALL or NO. More: {{.Link}}
{{- else}}{{.Brand}}: your {{.Product}} ({{.Component}}) may fail{{if .Forecast}} within {{.Forecast}}{{else}} soon{{end}}. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply {{if eq (len .Slots) 1}}1{{else if eq (len .Slots) 2}}1 or 2{{else}}1, 2 or 3{{end}} to book, CALL to talk, NO to decline.{{end}}`,
		"offer_noslots": `{{.Brand}}: your {{.Product}} ({{.Component}}) may fail{{if .Forecast}} within {{.Forecast}}{{else}} soon{{end}}. Reply CALL to arrange a visit, NO to decline.{{if .Link}} Or pick a time: {{.Link}}{{end}}`,
		KindOfferReminder: `Reminder: your {{.Product}} needs a {{.Component}} check. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply with a number to book, CALL or NO.{{if .Link}} All times: {{.Link}}{{end}}`,
		KindReoffer: `Sorry, that slot was just taken. A technician can come:
{{range .Slots}}{{.}}
{{end}}Reply with a number to book, CALL or NO.{{if .Link}} All times: {{.Link}}{{end}}`,
		"reoffer_noslots":  `Sorry, that slot was just taken and none is free now. Reply CALL and we will phone you.`,
		KindConfirm:        `Booked: a technician visits your {{.Product}} {{.Visit}}. We will remind you the day before.{{if .Link}} Change: {{.Link}}{{end}}`,
		"confirm_soon":     `Booked: a technician visits your {{.Product}} {{.Visit}}.{{if .Link}} Change: {{.Link}}{{end}}`,
		"reschedule_taken": `Sorry, that slot was just taken: your visit stays as booked. Reply CALL to arrange another time.`,
		"clarify_last":     `Sorry, we still did not understand. {{if .Slots}}Reply with a slot number, {{else}}Reply {{end}}or CALL and our team will phone you.`,
		KindVisitReminder:  `Reminder: a technician visits your {{.Product}} tomorrow, {{.Visit}}.{{if .Link}} Change: {{.Link}}{{end}}`,
		KindSurvey:         `How was the visit to your {{.Product}}? Reply 1 (poor) to 5 (excellent).`,
		KindThanks:         `Thank you for your feedback.`,
		KindNPS:            `One more question: how likely are you to recommend {{.Brand}} to a friend? Reply 0 (not at all) to 10 (extremely likely).`,
		KindCES:            `And how easy was it to get your {{.Product}} fixed? Reply 1 (very hard) to 5 (very easy).`,
		"clarify_survey":   `Sorry, we did not understand. Please reply with a number from {{.Low}} to {{.High}}.`,
		KindDeclined:       `Understood, no visit is planned. Reply CALL if you change your mind.`,
		KindCallback:       `Thanks, our team will call you shortly.`,
		KindFollowUp:       `Thanks for your message. This offer has ended, so our team will call you to arrange a visit if needed.`,
		KindDeclinedUrgent: `Understood, no visit is planned. As this fault is serious, our team will call you to talk it over.`,
		KindHelp:           `{{.Brand}}, proactive service for your devices: {{.Contact}}.`,
		KindOptOut:         `{{.Brand}}: you are unsubscribed and will get no more {{.Via}} from us. Reply START to subscribe again.`,
		KindStart:          `You will receive service messages again.`,
		KindClarify:        `Sorry, we did not understand. {{if .Slots}}Reply with a slot number ({{range $i, $s := .Slots}}{{if $i}}, {{end}}{{inc $i}}{{end}}), {{else}}Reply {{end}}CALL, NO or HELP.`,
		KindDispatch:       `{{.Text}}`,
		KindCancelled:      `Cancelled: no technician will visit your {{.Product}}{{if .Visit}} {{.Visit}}{{end}}, as you asked.`,
	},
	"fr": {
		KindOffer: `{{if .Link}}{{.Brand}} : panne ({{.Component}}) de {{.Product}}{{if .Forecast}} d'ici {{.Forecast}}{{else}} possible{{end}}. Visite :
{{range .Slots}}{{.}}
{{end}}{{if eq (len .Slots) 1}}1{{else if eq (len .Slots) 2}}1-2{{else}}1-3{{end}}, APPEL ou NON. Plus : {{.Link}}
{{- else}}{{.Brand}} : risque de panne ({{.Component}}) sur votre {{.Product}}{{if .Forecast}} d'ici {{.Forecast}}{{else}} prochainement{{end}}. Créneaux :
{{range .Slots}}{{.}}
{{end}}{{if eq (len .Slots) 1}}1{{else if eq (len .Slots) 2}}1 ou 2{{else}}1, 2 ou 3{{end}} pour réserver, APPEL pour un appel, NON pour refuser.{{end}}`,
		"offer_noslots": `{{.Brand}} : risque de panne ({{.Component}}) sur votre {{.Product}}{{if .Forecast}} d'ici {{.Forecast}}{{else}} prochainement{{end}}. Répondez APPEL pour fixer une visite, NON pour refuser.{{if .Link}} Ou choisissez : {{.Link}}{{end}}`,
		KindOfferReminder: `Rappel : votre {{.Product}} a besoin d'une vérification ({{.Component}}). Un technicien peut passer :
{{range .Slots}}{{.}}
{{end}}Répondez par un numéro, APPEL ou NON.{{if .Link}} Tous les créneaux : {{.Link}}{{end}}`,
		KindReoffer: `Désolé, ce créneau n'est plus libre. Un technicien peut passer :
{{range .Slots}}{{.}}
{{end}}Répondez par un numéro, APPEL ou NON.{{if .Link}} Tous les créneaux : {{.Link}}{{end}}`,
		"reoffer_noslots":  `Désolé, ce créneau n'est plus libre et aucun autre ne l'est. Répondez APPEL et nous vous appelons.`,
		KindConfirm:        `Réservé : un technicien passe pour votre {{.Product}} {{.Visit}}. Rappel la veille.{{if .Link}} Modifier : {{.Link}}{{end}}`,
		"confirm_soon":     `Réservé : un technicien passe pour votre {{.Product}} {{.Visit}}.{{if .Link}} Modifier : {{.Link}}{{end}}`,
		"reschedule_taken": `Désolé, ce créneau n'est plus libre : votre visite reste prévue. Répondez APPEL pour un autre horaire.`,
		"clarify_last":     `Désolé, nous ne comprenons toujours pas. Répondez {{if .Slots}}par un numéro, {{end}}ou APPEL et notre équipe vous appelle.`,
		KindVisitReminder:  `Rappel : un technicien passe pour votre {{.Product}} demain, {{.Visit}}.{{if .Link}} Modifier : {{.Link}}{{end}}`,
		KindSurvey:         `Comment s'est passée la visite pour votre {{.Product}} ? Répondez de 1 (mauvais) à 5 (excellent).`,
		KindThanks:         `Merci pour votre avis.`,
		KindNPS:            `Une autre question : recommanderiez-vous {{.Brand}} à un proche ? Répondez de 0 (pas du tout) à 10 (certainement).`,
		KindCES:            `Et était-il facile de faire réparer votre {{.Product}} ? Répondez de 1 (très difficile) à 5 (très facile).`,
		"clarify_survey":   `Désolé, nous n'avons pas compris. Répondez par un nombre de {{.Low}} à {{.High}}.`,
		KindDeclined:       `C'est noté, aucune visite n'est prévue. Répondez APPEL si vous changez d'avis.`,
		KindCallback:       `Merci, notre équipe vous appelle très vite.`,
		KindFollowUp:       `Merci pour votre message. Cette offre est close : notre équipe vous appelle pour fixer une visite si besoin.`,
		KindDeclinedUrgent: `C'est noté, aucune visite n'est prévue. Cette panne étant sérieuse, notre équipe va vous appeler.`,
		KindHelp:           `{{.Brand}}, service proactif de vos appareils : {{.Contact}}.`,
		KindOptOut:         `{{.Brand}} : vous ne recevrez plus {{.Via}} de notre part. Répondez START pour les recevoir à nouveau.`,
		KindStart:          `Vous recevrez à nouveau nos messages de service.`,
		KindClarify:        `Désolé, nous n'avons pas compris. Répondez {{if .Slots}}par un numéro ({{range $i, $s := .Slots}}{{if $i}}, {{end}}{{inc $i}}{{end}}), {{end}}APPEL, NON ou AIDE.`,
		KindDispatch:       `{{.Text}}`,
		KindCancelled:      `Annulé : aucun technicien ne passera pour votre {{.Product}}{{if .Visit}} {{.Visit}}{{end}}, comme demandé.`,
	},
}

// componentNames translate the rules' component names; a component not
// listed is shown as written, its underscores as spaces.
var componentNames = map[string]map[string]string{
	"fr": {
		"bearing": "roulement", "cabinet": "caisson", "compressor": "compresseur", "connectivity": "connexion",
		"door": "porte", "door_seal": "joint de porte", "engine": "moteur", "fan": "ventilateur", "filter": "filtre",
		"maintenance": "entretien", "motor": "moteur", "refrigerant": "fluide frigo", "seal": "joint",
		"sensor": "capteur", "condenser": "condenseur", "evaporator": "évaporateur", "thermostat": "thermostat",
		"battery": "batterie", "pump": "pompe", "heater": "résistance", "defrost": "dégivrage", "valve": "vanne",
	},
}

// componentName is component in lang.
func componentName(lang, component string) string {
	if t, ok := componentNames[lang][strings.ToLower(component)]; ok {
		return t
	}
	return strings.ReplaceAll(component, "_", " ")
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

// render is the package's render with the notifier's brand.
func (n *Notifier) render(lang, kind string, d msgData) (string, error) {
	d.Brand = n.opt.Brand
	return render(lang, kind, d)
}

// render builds the text of a message of kind in the customer's language,
// with its footer (see footer), within MaxSegments SMS segments. The
// device's model, the component (translated), the brand and the contact
// are put on one line in the GSM 7-bit alphabet and clipped, shorter when
// the whole would not fit (a long model in French with three slots would
// not). Only free text that does not fit (a dispatcher's) makes an error.
func render(lang, kind string, d msgData) (string, error) {
	lang = baseLanguage(lang)
	t := templates[lang][kind]
	if t == nil {
		return "", fmt.Errorf("no %s template for %s messages", lang, kind)
	}
	product := toGSM7(strings.TrimSpace(oneLine(d.Product)))
	component := toGSM7(strings.TrimSpace(componentName(lang, oneLine(d.Component))))
	d.Brand, d.Contact = toGSM7(clip(oneLine(d.Brand), 20)), toGSM7(clip(oneLine(d.Contact), 80))
	d.Visit = toGSM7(d.Visit)
	d.Via = channelMessages[lang][d.Channel.OrSMS()]
	slots := d.Slots
	d.Slots = make([]string, len(slots))
	for i, s := range slots {
		d.Slots[i] = toGSM7(s)
	}
	var body string
	var n int
	// Shorter names first; the forecast goes last, since the slots and the
	// keywords are what the customer acts on.
	for i, max := range [][2]int{{40, 30}, {24, 20}, {20, 16}, {16, 14}, {12, 10}, {12, 10}, {8, 8}} {
		d.Product, d.Component = clipGSM(product, max[0]), clipGSM(component, max[1])
		if i >= 5 {
			d.Forecast = ""
		}
		var b strings.Builder
		if err := t.Execute(&b, d); err != nil {
			return "", fmt.Errorf("render %s/%s: %w", lang, kind, err)
		}
		body = strings.TrimSpace(b.String())
		if f := footer(lang, kind); f != "" && d.Channel != ChannelEmail {
			body += "\n" + f
		}
		if n, _ = Segments(body); n <= MaxSegments && utf8.RuneCountInString(body) <= MaxBody {
			return body, nil
		}
	}
	return "", fmt.Errorf("render %s/%s: %d SMS segments, more than %d: %q", lang, kind, n, MaxSegments, body)
}

// clipGSM clips s to n characters with a GSM-7 ellipsis.
func clipGSM(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-2]) + ".."
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
	weekdaysFR = [7]string{"dim", "lun", "mar", "mer", "jeu", "ven", "sam"}
	monthsFR   = [12]string{"janv", "févr", "mars", "avr", "mai", "juin", "juil", "aout", "sept", "oct", "nov", "déc"}
)

// formatSlot writes a visit window in the site's local time and the
// customer's language, short since an offer lists three: "Tue 12 Mar
// 08:00-10:00", "mar 12 mars 8h-10h".
func formatSlot(lang string, start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	if baseLanguage(lang) == "fr" {
		return fmt.Sprintf("%s %d %s %s-%s", weekdaysFR[s.Weekday()], s.Day(), monthsFR[s.Month()-1], hourFR(s), hourFR(e))
	}
	return s.Format("Mon 2 Jan 15:04") + "-" + e.Format("15:04")
}

// hourFR is the French way to write a time of day: 9h, 14h30.
func hourFR(t time.Time) string {
	if t.Minute() == 0 {
		return fmt.Sprintf("%dh", t.Hour())
	}
	return fmt.Sprintf("%dh%02d", t.Hour(), t.Minute())
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
