package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/httprate"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Cookie names. The session cookie holds a random id; the sign-in cookie a
// random CSRF token for the sign-in form, before any session exists.
const (
	sessionCookie = "proactive_session"
	signInCookie  = "proactive_signin"
	csrfField     = "csrf"
)

// recheckEvery is how long a session trusts its token without reading it
// again to see whether it was revoked.
const recheckEvery = 10 * time.Second

// session is a signed-in browser. Its fields are set at sign-in and read
// only, but for seen, checked and flash, which sessions guards.
type session struct {
	key        [32]byte // sha256 of the cookie value
	tokenID    string
	name       string
	role       devices.Role
	technician string
	csrf       string
	created    time.Time

	seen    time.Time
	checked time.Time
	flash   string
}

// Staff reports whether the session may act as a dispatcher.
func (s *session) Staff() bool {
	return s.role == devices.RoleAdmin || s.role == devices.RoleDispatcher
}

// Admin reports whether the session is an admin's.
func (s *session) Admin() bool { return s.role == devices.RoleAdmin }

// Actor names the session's user on ticket timelines, as the API does.
func (s *session) Actor() string {
	if s.role == devices.RoleTechnician {
		return "technician " + s.technician
	}
	return s.name
}

// sessions is the in-memory session table.
type sessions struct {
	now       func() time.Time
	idle, max time.Duration
	limit     int

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(now func() time.Time, idle, max time.Duration, limit int) *sessions {
	return &sessions{now: now, idle: idle, max: max, limit: limit, m: map[[32]byte]*session{}}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for tok and returns it with the cookie value.
func (ss *sessions) create(tok devices.Token) (*session, string) {
	id := randomToken()
	now := ss.now()
	s := &session{key: sha256.Sum256([]byte(id)), tokenID: tok.ID, name: tok.Name, role: tok.Role,
		technician: tok.TechnicianID, csrf: randomToken(), created: now, seen: now, checked: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expireLocked(now)
	for len(ss.m) >= ss.limit {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(ss.m, oldest.key)
	}
	ss.m[s.key] = s
	return s, id
}

// expireLocked drops the sessions past their idle or absolute limit.
func (ss *sessions) expireLocked(now time.Time) {
	for k, s := range ss.m {
		if now.Sub(s.seen) > ss.idle || now.Sub(s.created) > ss.max {
			delete(ss.m, k)
		}
	}
}

// lookup returns the live session whose cookie value is id, and whether its
// token is due for a revocation check; it marks the session used.
func (ss *sessions) lookup(id string) (s *session, recheck bool) {
	if id == "" {
		return nil, false
	}
	key := sha256.Sum256([]byte(id))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[key]
	if !ok {
		return nil, false
	}
	if now.Sub(s.seen) > ss.idle || now.Sub(s.created) > ss.max {
		delete(ss.m, key)
		return nil, false
	}
	s.seen = now
	if now.Sub(s.checked) >= recheckEvery {
		s.checked = now
		recheck = true
	}
	return s, recheck
}

// end deletes a session.
func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.key)
}

// setFlash leaves a message for the session's next page.
func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

// takeFlash returns and clears the session's message.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

type ctxKey struct{}

// sessionOf returns the request's session, set by auth.
func sessionOf(ctx context.Context) *session {
	s, _ := ctx.Value(ctxKey{}).(*session)
	return s
}

// cookie returns a cookie with the flags every cookie of the site has.
func (s *server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: !s.InsecureCookies, SameSite: http.SameSiteStrictMode}
}

// auth admits requests with a live session: a page request without one is
// sent to sign in and back, anything else refused with 403.
func (s *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if c, err := r.Cookie(sessionCookie); err == nil {
			id = c.Value
		}
		sess, recheck := s.sessions.lookup(id)
		if sess != nil && recheck {
			tok, err := s.Tokens.Get(r.Context(), sess.tokenID)
			switch {
			case proactive.ErrorCode(err) == proactive.ENotFound || (err == nil && tok.Revoked()):
				s.sessions.end(sess)
				sess = nil
			case err != nil:
				// The database is down: keep the session, let the page fail.
				s.log.Warn("recheck session token", "token", sess.tokenID, "err", err)
			}
		}
		if sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.renderError(w, r, http.StatusForbidden, "Your session has ended. Sign in again, then repeat what you were doing.")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	})
}

// csrf refuses, with 403, a POST whose form lacks the session's CSRF token.
func (s *server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := sessionOf(r.Context())
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if sess == nil || !equal(r.PostFormValue(csrfField), sess.csrf) {
			s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this site. Reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// staff admits admins and dispatchers only.
func (s *server) staff(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sessionOf(r.Context()).Staff() {
			s.renderError(w, r, http.StatusForbidden, "Only dispatchers may do this.")
			return
		}
		h(w, r)
	})
}

// equal compares secrets in constant time; an empty one never matches.
func equal(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// localPath returns next if it is a path on this site, else "".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/signin") {
		return ""
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return next
}

type signInData struct {
	pageData
	Next    string
	Problem string
}

// signInPage shows the sign-in form with a fresh pre-session CSRF token.
func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, localPath(r.URL.Query().Get("next")), "")
}

// renderSignIn shows the sign-in form. Its CSRF token is the sign-in
// cookie's, made anew only when the browser has none, so that several tabs
// (or a favicon fetch that lands here) do not invalidate one another's form.
func (s *server) renderSignIn(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	tok := ""
	if c, err := r.Cookie(signInCookie); err == nil && len(c.Value) == len(randomToken()) {
		tok = c.Value
	} else {
		tok = randomToken()
	}
	http.SetCookie(w, s.cookie(signInCookie, tok, 3600))
	s.render(w, r, status, "signin", signInData{pageData: pageData{Title: "Sign in", CSRF: tok}, Next: next, Problem: msg})
}

// signIn exchanges a valid API token for a session.
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	var want string
	if c, err := r.Cookie(signInCookie); err == nil {
		want = c.Value
	}
	next := localPath(r.PostFormValue("next"))
	if !equal(r.PostFormValue(csrfField), want) {
		s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this site. Reload the page and try again.")
		return
	}
	addr := clientAddr(r)
	if _, failed, _ := s.signInFailures.Status(addr); failed >= float64(s.SignInFailures) {
		w.Header().Set("Retry-After", strconv.Itoa(int(signInWindow.Seconds())))
		s.renderSignIn(w, r, http.StatusTooManyRequests, next, "Too many failed sign-ins from this address. Wait a minute and try again.")
		return
	}
	tok, err := s.Tokens.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		code := proactive.ErrorCode(err)
		if code != proactive.EUnauthorized {
			status := http.StatusInternalServerError
			if devices.Unavailable(err) {
				status = http.StatusServiceUnavailable
				w.Header().Set("Retry-After", "5")
			}
			s.log.Error("sign in", "err", err)
			s.renderSignIn(w, r, status, next, "Signing in failed on our side. Try again in a moment.")
			return
		}
		s.signInFailures.OnLimit(w, r, addr) // counts the failure
		s.renderSignIn(w, r, http.StatusUnauthorized, next, "That token is not valid, or it was revoked.")
		return
	}
	if tok.Role == devices.RoleTechnician && tok.TechnicianID == "" {
		s.renderSignIn(w, r, http.StatusForbidden, next, "That technician token names no technician.")
		return
	}
	_, id := s.sessions.create(tok)
	http.SetCookie(w, s.cookie(signInCookie, "", -1))
	http.SetCookie(w, s.cookie(sessionCookie, id, 0))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signInWindow is the window of SignInFailures.
const signInWindow = time.Minute

// clientAddr is the address failed sign-ins are counted against: the
// client as a trusted proxy forwarded it (the service's router puts it in
// RemoteAddr), else the connection's peer.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host)
}

// signOut ends the session.
func (s *server) signOut(w http.ResponseWriter, r *http.Request) {
	s.sessions.end(sessionOf(r.Context()))
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
