package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// pageData is what every page's layout needs.
type pageData struct {
	Title string
	// Nav is the current section for the navigation: board, schedule,
	// day, fleet, rules, measures or webhooks.
	Nav string
	// User is the signed-in session; nil on the sign-in and error pages
	// of a visitor.
	User *session
	// CSRF is the token every form of the page carries.
	CSRF  string
	Flash string
	// Error is a failure of the action just tried, shown above the page.
	Error string
	// Refresh is the board's refresh period in ms for the script; 0 off.
	Refresh int64
}

// base fills the common fields from the request's session.
func (s *server) base(r *http.Request, title, nav string) pageData {
	p := pageData{Title: title, Nav: nav}
	if sess := sessionOf(r.Context()); sess != nil {
		p.User, p.CSRF = sess, sess.csrf
		// The script's refreshes replace parts of a page and show no flash:
		// one that lands between a form's POST and its redirect would take
		// the confirmation the person is waiting for.
		if r.Header.Get("X-Requested-With") != "fetch" {
			p.Flash = s.sessions.takeFlash(sess)
		}
	}
	return p
}

// pages are the parsed templates, one set per page sharing the layout.
type pages struct {
	set map[string]*template.Template
	// customer is the customer's page, a layout of its own.
	customer *template.Template
}

// assetVersion returns a short hash of an embedded asset, appended to its
// URL so that a new release is fetched despite caching.
func assetVersion(name string) string {
	b, err := fs.ReadFile(staticFS, path.Join("static", name))
	if err != nil {
		panic(fmt.Sprintf("web: missing asset %s", name))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func mustParsePages(loc *time.Location) *pages {
	versions := map[string]string{}
	funcs := template.FuncMap{
		// versions is filled below and only read once serving starts.
		"asset": func(name string) string { return "/static/" + name + "?v=" + versions[name] },
		// Every time a page shows is local time labelled with its zone
		// (CET, CEST, or UTC+04:00 where the zone has no abbreviation):
		// the server's zone for when, a site's or technician's for the
		// others.
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return proactive.FormatLocal(t, loc, "Mon 2 Jan 15:04")
		},
		"whenIn": func(t time.Time, l *time.Location) string {
			if t.IsZero() {
				return "—"
			}
			return proactive.FormatLocal(t, l, "Mon 2 Jan 15:04")
		},
		"span":     proactive.FormatLocalSpan,
		"hours":    proactive.FormatLocalClock,
		"held":     heldNow,
		"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":      ago,
		"dict":     dict,
		"label":    label,
		"mapURL":   mapURL,
		"address":  address,
		"channel":  func(ch proactive.Channel) string { return channelName(ch.OrSMS()) },
		"channels": func() []proactive.Channel { return proactive.Channels },
		"followUpNote": func(reason string) string {
			if n, ok := proactive.FollowUpNotes[reason]; ok {
				return strings.ToUpper(n[:1]) + n[1:]
			}
			return label(reason)
		},
	}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		versions[e.Name()] = assetVersion(e.Name())
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	p := &pages{set: map[string]*template.Template{},
		customer: template.Must(template.New("customer.html").Funcs(funcs).ParseFS(templateFS, "templates/customer.html"))}
	for _, name := range []string{"signin", "error", "board", "ticket", "day", "schedule", "fleet", "rules", "measures", "webhooks", "webhook"} {
		t := template.Must(layout.Clone())
		p.set[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	return p
}

// dict builds a map from key, value pairs, to pass several values to a
// template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// ago says how long before now t was, roughly: "5 min", "3 h", "2 d".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// label turns an identifier such as no_fault_found into words.
// address writes a site on one line: "10 rue Oberkampf, 75011 Paris FR".
func address(a proactive.Address) string {
	var parts []string
	for _, p := range []string{a.Line1, a.Line2, strings.TrimSpace(a.PostalCode + " " + a.City), a.Country} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// mapURL is an OpenStreetMap search for a site, for a link: the page loads
// nothing from outside, the technician's browser opens the map. Empty for
// a site without an address.
func mapURL(a proactive.Address) string {
	if a.Line1 == "" && a.City == "" && a.PostalCode == "" {
		return ""
	}
	return "https://www.openstreetmap.org/search?query=" + strings.ReplaceAll(url.QueryEscape(address(a)), "+", "%20")
}

func label(v any) string {
	s := strings.ReplaceAll(fmt.Sprint(v), "_", " ")
	switch s {
	case "":
		return s
	case "nps", "ces", "csat": // the survey messages' kinds are acronyms
		return strings.ToUpper(s)
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// render executes a page into a buffer first, so that a template error is
// a clean 500 rather than half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages.set[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.log.Error("render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	pageData
	Status  int
	Message string
}

// renderError shows a page with only a message, in the layout.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := errorData{pageData: s.base(r, http.StatusText(status), ""), Status: status, Message: msg}
	s.render(w, r, status, "error", d)
}

// fail shows err as a page: its user-facing message with the status its
// code maps to; an internal error is logged and shown as a generic one.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := proactive.ErrorMessage(err)
	if status == http.StatusInternalServerError && devices.Unavailable(err) {
		s.log.Warn("page failed: database unavailable", "path", r.URL.Path, "err", err)
		status, msg = http.StatusServiceUnavailable, "The database is unavailable. Try again in a moment."
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if status == http.StatusInternalServerError {
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
		msg = "Something went wrong on our side. Try again in a moment."
	}
	s.renderError(w, r, status, msg)
}

// statusOf maps an error's code to an HTTP status.
func statusOf(err error) int {
	switch proactive.ErrorCode(err) {
	case proactive.EInvalid:
		return http.StatusUnprocessableEntity
	case proactive.ENotFound:
		return http.StatusNotFound
	case proactive.EConflict:
		return http.StatusConflict
	case proactive.EUnauthorized:
		return http.StatusUnauthorized
	case proactive.EForbidden:
		return http.StatusForbidden
	case proactive.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// notFound answers paths that are no page.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "There is no page at this address.")
}
