package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/httprate"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// The customer's page, /c/{code}: the link that offers, confirmations and
// reminders carry opens one ticket's customer view without signing in. The
// code is the only key, so the page answers every unknown, old or forged
// code alike (404, no customer data), is rate-limited per client address
// and per code, and is neither cached, indexed nor named in a Referer.
// Forms work without JavaScript and carry a form token that a cookie
// (SameSite=Strict) must match: no session, nothing kept on the server, so
// that a restart or a second instance does not break a form.

// CustomerPages is what the customer's page needs of the conversation;
// *notify.Notifier satisfies it. Methods may block on the database; errors
// carry a proactive.Error code.
type CustomerPages interface {
	// CustomerPage reads what a link's code shows; ENotFound for a code
	// that opens nothing.
	CustomerPage(ctx context.Context, code string) (notify.CustomerPage, error)
	// CustomerAct does an action of the page (notify.PageBook, ...) as the
	// SMS reply would; EConflict when it cannot be done now.
	CustomerAct(ctx context.Context, code, action string, s notify.Slot) error
	// Contact is the service's brand and how to reach it.
	Contact() (brand, contact string)
}

var _ CustomerPages = (*notify.Notifier)(nil)

// Rates of the customer's page: requests per minute from one client
// address, and to one code (whoever asks).
const (
	customerPerAddr = 60
	customerPerCode = 30
	formCookie      = "proactive_form"
)

// customerText is the page's wording, by language and key.
var customerText = map[string]map[string]string{
	"en": {
		"title": "Your service visit", "skip": "Skip to content", "status": "Status:", "visit": "Your visit:",
		"calling": "We will call you shortly.", "zone": "Times are shown in your site's time zone,",
		"change": "Move your visit to another time", "choose": "Choose a time for the visit",
		"offered": "a time our text message offered you", "move": "Move my visit", "book": "Book this time",
		"none_free": "No time is free in the next two weeks. Ask us to call you and we will find one.",
		"call":      "Call me", "cancel": "Cancel my visit", "no": "No visit, thanks",
		"reach":      "To reach us:",
		"gone_title": "This link does not work any more",
		"gone":       "The link may be old, or mistyped. Your text messages have the latest one.",
		"expired":    "This form is out of date. Reload the page and try again.",
		"slow_down":  "Too many requests. Wait a minute and try again.",
		"busy_title": "Please wait a moment", "unavailable_title": "This page is not available just now",
		"unavailable": "Something went wrong on our side. Try again in a few minutes.",
		"conflict":    "That could not be done: the time was just taken, or the page was out of date. Here is what you can do now.",
		"pick":        "Choose one of the times below first, then press the button.",
		"times_n":     "%d free times",
		"problem":     "Our monitoring shows that the %s of your %s may fail within %s.",
		"soon":        "Our monitoring shows that the %s of your %s may fail soon.",
		"done_book":   "Thank you: your visit is booked. We will confirm by text message.",
		"done_call":   "Thank you: we will call you shortly.",
		"done_no":     "Understood: no visit is planned.",
		"done_cancel": "Your visit is cancelled.",
		"st_offered":  "waiting for you to choose a time", "st_scheduled": "visit booked", "st_visited": "visit done",
		"st_declined": "no visit planned", "st_expired": "the offer has ended", "st_cancelled": "visit cancelled",
		"st_open": "in progress", "st_review": "in progress",
	},
	"fr": {
		"title": "Votre intervention", "skip": "Aller au contenu", "status": "État :", "visit": "Votre visite :",
		"calling": "Nous allons vous appeler très vite.", "zone": "Les horaires sont ceux du fuseau de votre site,",
		"change": "Déplacer votre visite", "choose": "Choisissez un créneau pour la visite",
		"offered": "un créneau proposé par SMS", "move": "Déplacer ma visite", "book": "Réserver ce créneau",
		"none_free": "Aucun créneau n'est libre dans les deux semaines. Demandez-nous de vous appeler.",
		"call":      "Appelez-moi", "cancel": "Annuler ma visite", "no": "Pas de visite, merci",
		"reach":      "Pour nous joindre :",
		"gone_title": "Ce lien ne fonctionne plus",
		"gone":       "Le lien est peut-être ancien ou mal recopié. Vos SMS contiennent le plus récent.",
		"expired":    "Ce formulaire n'est plus à jour. Rechargez la page et recommencez.",
		"slow_down":  "Trop de demandes. Attendez une minute et recommencez.",
		"busy_title": "Un instant, s'il vous plaît", "unavailable_title": "Cette page n'est pas disponible pour l'instant",
		"unavailable": "Un problème est survenu de notre côté. Réessayez dans quelques minutes.",
		"conflict":    "Ce n'a pas été possible : le créneau vient d'être pris, ou la page n'était plus à jour. Voici ce que vous pouvez faire.",
		"pick":        "Choisissez d'abord un des créneaux ci-dessous, puis appuyez sur le bouton.",
		"times_n":     "%d créneaux libres",
		"problem":     "Notre suivi indique un risque de panne (%s) sur votre %s d'ici %s.",
		"soon":        "Notre suivi indique un risque de panne (%s) sur votre %s prochainement.",
		"done_book":   "Merci : votre visite est réservée. Vous recevrez une confirmation par SMS.",
		"done_call":   "Merci : nous allons vous appeler très vite.",
		"done_no":     "C'est noté : aucune visite n'est prévue.",
		"done_cancel": "Votre visite est annulée.",
		"st_offered":  "en attente de votre choix", "st_scheduled": "visite réservée", "st_visited": "visite effectuée",
		"st_declined": "aucune visite prévue", "st_expired": "l'offre est close", "st_cancelled": "visite annulée",
		"st_open": "en cours", "st_review": "en cours",
	},
}

var (
	weekdaysFR = [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	monthsFR   = [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
		"novembre", "décembre"}
)

// customerData is what the customer's page template sees.
type customerData struct {
	Lang, Brand, Contact string
	// Heading and Message are a page without customer data (404, 403,
	// 429): Page is nil then.
	Heading, Message string
	Page             *notify.CustomerPage
	CSRF, Action     string
	Done, Error      string
	Days             []slotDay
	AnyOffered       bool
}

// slotDay is one local day's free times. Open days show their times;
// the others fold under their date (a phone would scroll through two weeks
// of times otherwise): the first two days, and any day with a time the
// SMS offered.
type slotDay struct {
	Label string
	Slots []slotOption
	Open  bool
}

// Count is how many free times the day has, in the page's words.
func (d customerData) Count(day slotDay) string { return fmt.Sprintf(d.T("times_n"), len(day.Slots)) }

type slotOption struct {
	Value, Label string
	Offered      bool
}

// T is the page's text for key in its language.
func (d customerData) T(key string) string {
	if s, ok := customerText[d.Lang][key]; ok {
		return s
	}
	return customerText["en"][key]
}

func (d customerData) loc() *time.Location {
	if d.Page != nil && d.Page.Location != nil {
		return d.Page.Location
	}
	return time.UTC
}

// clock writes a time of day in the page's language.
func (d customerData) clock(t time.Time) string {
	if d.Lang == "fr" {
		if t.Minute() == 0 {
			return fmt.Sprintf("%dh", t.Hour())
		}
		return fmt.Sprintf("%dh%02d", t.Hour(), t.Minute())
	}
	return t.Format("15:04")
}

// day writes a local date in the page's language.
func (d customerData) day(t time.Time) string {
	if d.Lang == "fr" {
		return fmt.Sprintf("%s %d %s", weekdaysFR[t.Weekday()], t.Day(), monthsFR[t.Month()-1])
	}
	return t.Format("Monday 2 January")
}

// Span writes a visit window in the site's zone, with the zone's
// abbreviation (or UTC offset): "Tuesday 10 March, 08:00–10:00 CET".
func (d customerData) Span(start, end time.Time) string {
	s, e := start.In(d.loc()), end.In(d.loc())
	return d.day(s) + ", " + d.clock(s) + "–" + d.clock(e) + " " + zoneLabel(s)
}

// ZoneName names the site's zone: "Europe/Paris (CET)".
func (d customerData) ZoneName() string {
	loc := d.loc()
	return loc.String() + " (" + zoneLabel(time.Now().In(loc)) + ")"
}

// zoneLabel is the zone's abbreviation at t, or its UTC offset where the
// zone has none (Go then gives "+03").
func zoneLabel(t time.Time) string {
	name, _ := t.Zone()
	if name == "" || name[0] == '+' || name[0] == '-' {
		return "UTC" + t.Format("-07:00")
	}
	return name
}

// Problem says what may fail and how soon, in plain words.
func (d customerData) Problem() string {
	return fmt.Sprintf(d.T("problem"), d.Page.Component, d.Page.Device, d.Page.Forecast)
}

// ProblemSoon is Problem without a prediction.
func (d customerData) ProblemSoon() string {
	return fmt.Sprintf(d.T("soon"), d.Page.Component, d.Page.Device)
}

// StatusText is the ticket's status in the customer's words.
func (d customerData) StatusText() string { return d.T("st_" + string(d.Page.Status)) }

// days groups the page's free slots by local day.
func (d *customerData) days() {
	offered := map[int64]bool{}
	for _, s := range d.Page.Offered {
		offered[s.Start.Unix()] = true
	}
	for _, s := range d.Page.Free {
		start, end := s.Start.In(d.loc()), s.End.In(d.loc())
		label := d.day(start)
		if len(d.Days) == 0 || d.Days[len(d.Days)-1].Label != label {
			d.Days = append(d.Days, slotDay{Label: label})
		}
		o := slotOption{Value: strconv.FormatInt(s.Start.Unix(), 10), Offered: offered[s.Start.Unix()],
			Label: d.clock(start) + "–" + d.clock(end) + " " + zoneLabel(start)}
		d.AnyOffered = d.AnyOffered || o.Offered
		day := &d.Days[len(d.Days)-1]
		day.Slots = append(day.Slots, o)
		day.Open = day.Open || len(d.Days) <= 2 || o.Offered
	}
}

// customerLimits are the customer page's rate limits.
type customerLimits struct {
	perAddr, perCode *httprate.RateLimiter
}

func newCustomerLimits() *customerLimits {
	return &customerLimits{
		perAddr: httprate.NewRateLimiter(customerPerAddr, time.Minute),
		perCode: httprate.NewRateLimiter(customerPerCode, time.Minute),
	}
}

// customerHeaders keep the code out of Referer headers, caches and search
// engines.
func customerHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("Cache-Control", "no-store")
}

// guessLanguage picks the language of a page without customer data from
// the browser's preference.
func guessLanguage(r *http.Request) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Accept-Language"))), "fr") {
		return "fr"
	}
	return "en"
}

// customer serves GET and POST /c/{code}.
func (s *server) customer(w http.ResponseWriter, r *http.Request) {
	customerHeaders(w)
	code := r.PathValue("code")
	if s.Customers == nil {
		s.customerBare(w, r, http.StatusNotFound, "gone_title", "gone")
		return
	}
	if s.customerLimits.perAddr.OnLimit(w, r, clientAddr(r)) || s.customerLimits.perCode.OnLimit(w, r, code) {
		s.customerBare(w, r, http.StatusTooManyRequests, "busy_title", "slow_down")
		return
	}
	tok := ""
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) == len(randomToken()) {
		tok = c.Value
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if !equal(r.PostFormValue(csrfField), tok) {
			s.customerBare(w, r, http.StatusForbidden, "expired", "expired")
			return
		}
		s.customerAct(w, r, code, tok)
		return
	}
	if tok == "" {
		tok = randomToken()
		c := s.cookie(formCookie, tok, 0)
		c.Path = "/c/"
		http.SetCookie(w, c)
	}
	done := ""
	if k := r.URL.Query().Get("done"); k != "" {
		done = "done_" + k
	}
	s.customerShow(w, r, code, tok, http.StatusOK, done, "")
}

// customerAct does a form's action and sends the browser back to the page.
func (s *server) customerAct(w http.ResponseWriter, r *http.Request, code, tok string) {
	action := r.PostFormValue("action")
	var slot notify.Slot
	switch action {
	case notify.PageBook:
		if r.PostFormValue("slot") == "" {
			s.customerShow(w, r, code, tok, http.StatusUnprocessableEntity, "", "pick")
			return
		}
		sec, err := strconv.ParseInt(r.PostFormValue("slot"), 10, 64)
		if err != nil {
			s.customerShow(w, r, code, tok, http.StatusUnprocessableEntity, "", "conflict")
			return
		}
		slot.Start = time.Unix(sec, 0).UTC()
	case notify.PageCall, notify.PageNo, notify.PageCancel:
	default:
		s.customerShow(w, r, code, tok, http.StatusUnprocessableEntity, "", "conflict")
		return
	}
	err := s.Customers.CustomerAct(r.Context(), code, action, slot)
	switch proactive.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/c/"+code+"?done="+action, http.StatusSeeOther)
	case proactive.EConflict, proactive.EInvalid:
		s.customerShow(w, r, code, tok, http.StatusConflict, "", "conflict")
	case proactive.ENotFound:
		s.customerBare(w, r, http.StatusNotFound, "gone_title", "gone")
	default:
		s.log.Error("customer page action", "action", action, "err", err)
		w.Header().Set("Retry-After", "5")
		s.customerBare(w, r, http.StatusServiceUnavailable, "unavailable_title", "unavailable")
	}
}

// customerShow renders a code's page with an optional confirmation (done)
// or problem (problem), both text keys.
func (s *server) customerShow(w http.ResponseWriter, r *http.Request, code, tok string, status int, done, problem string) {
	pg, err := s.Customers.CustomerPage(r.Context(), code)
	if proactive.ErrorCode(err) == proactive.ENotFound {
		s.customerBare(w, r, http.StatusNotFound, "gone_title", "gone")
		return
	} else if err != nil {
		s.log.Error("customer page", "err", err)
		w.Header().Set("Retry-After", "5")
		s.customerBare(w, r, http.StatusServiceUnavailable, "unavailable_title", "unavailable")
		return
	}
	brand, contact := s.Customers.Contact()
	d := customerData{Lang: pg.Language, Brand: brand, Contact: contact, Page: &pg, CSRF: tok, Action: "/c/" + code}
	switch {
	case done == "done_book" && pg.Visit == nil && pg.FollowUp:
		d.Done = d.T("done_call") // an opted-out customer's choice waits for a person, as by SMS
	case done == "done_book" && pg.Visit == nil:
	case done != "":
		d.Done = d.T(done) // empty for an unknown key
	}
	if problem != "" {
		d.Error = d.T(problem)
	}
	d.days()
	s.renderCustomer(w, r, status, d)
}

// customerBare renders a page with no customer data: a heading and a
// message (text keys) and how to reach the service.
func (s *server) customerBare(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	d := customerData{Lang: guessLanguage(r), Brand: "Proactive"}
	if s.Customers != nil {
		d.Brand, d.Contact = s.Customers.Contact()
	}
	d.Heading, d.Message, d.Error = d.T(heading), d.T(msg), msg
	s.renderCustomer(w, r, status, d)
}

func (s *server) renderCustomer(w http.ResponseWriter, r *http.Request, status int, d customerData) {
	var buf strings.Builder
	if err := s.pages.customer.Execute(&buf, d); err != nil {
		s.log.Error("render customer page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}
