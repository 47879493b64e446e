// Package faketwilio is an httptest stand-in for the Twilio Messages API
// that twilio-go really talks HTTP to: it records every message creation
// form (To, From, MessagingServiceSid, Body, StatusCallback), answers each
// as scripted (201, 429, 500, or hanging), lists the messages it created,
// and signs webhook requests the way Twilio does.
package faketwilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Behavior is how the server answers one message creation.
type Behavior int

// The answers the server can give.
const (
	Created      Behavior = iota // 201 with a new SID
	TooMany                      // 429, nothing created
	ServerError                  // 500, nothing created
	Hang                         // the message is created, the answer never comes
	HangDropped                  // nothing is created and no answer comes
	Unsubscribed                 // 400 with error 21610: the recipient opted out
)

// Post is one message creation request as received.
type Post struct {
	To, From, MessagingServiceSid, Body, StatusCallback string
	// ContentSid and ContentVariables are a template's (WhatsApp).
	ContentSid, ContentVariables string
	// SID is the created message's, empty when none was created.
	SID    string
	Answer Behavior
	// At is when the request arrived, by the wall clock.
	At time.Time
}

// Server is the fake API. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	posts  []Post
	script []Behavior
	now    func() time.Time
	seq    int
	// Received is signalled (without blocking) on each creation request.
	Received chan Post
	release  chan struct{}
	once     sync.Once
}

// New starts a server whose created messages are stamped by now
// (time.Now when nil). Close it when done; Close releases hanging requests.
func New(now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{now: now, Received: make(chan Post, 10000), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.Release()
	s.Server.Close()
}

// Release lets hanging requests end (their clients have usually given up).
func (s *Server) Release() { s.once.Do(func() { close(s.release) }) }

// Then scripts the answers to the next creation requests, in order; once
// the script is used up every request gets Created.
func (s *Server) Then(b ...Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, b...)
}

// Posts returns every creation request so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// Messages returns the requests that created a message.
func (s *Server) Messages() []Post {
	var out []Post
	for _, p := range s.Posts() {
		if p.SID != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/Messages.json") {
		http.NotFound(w, r)
		return
	}
	if _, _, ok := r.BasicAuth(); !ok {
		writeErr(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.Method == http.MethodGet {
		s.list(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeErr(w, http.StatusBadRequest, 21000, "bad form")
		return
	}
	p := Post{To: r.PostForm.Get("To"), From: r.PostForm.Get("From"), MessagingServiceSid: r.PostForm.Get("MessagingServiceSid"),
		Body: r.PostForm.Get("Body"), StatusCallback: r.PostForm.Get("StatusCallback"), At: time.Now(),
		ContentSid: r.PostForm.Get("ContentSid"), ContentVariables: r.PostForm.Get("ContentVariables")}
	s.mu.Lock()
	p.Answer = Created
	if len(s.script) > 0 {
		p.Answer, s.script = s.script[0], s.script[1:]
	}
	if p.Answer == Created || p.Answer == Hang {
		s.seq++
		p.SID = fmt.Sprintf("SM%032d", s.seq)
	}
	s.posts = append(s.posts, p)
	created := s.now().UTC()
	s.mu.Unlock()
	select {
	case s.Received <- p:
	default:
	}
	switch p.Answer {
	case TooMany:
		writeErr(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
	case ServerError:
		writeErr(w, http.StatusInternalServerError, 20500, "Internal Server Error")
	case Unsubscribed:
		writeErr(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
	case Hang, HangDropped:
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(message(p, created))
	}
}

func message(p Post, created time.Time) map[string]any {
	return map[string]any{"sid": p.SID, "to": p.To, "from": p.From, "body": p.Body, "status": "queued",
		"messaging_service_sid": p.MessagingServiceSid, "date_created": created.Format(time.RFC1123Z)}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("To")
	var out []map[string]any
	s.mu.Lock()
	for i := len(s.posts) - 1; i >= 0; i-- {
		if p := s.posts[i]; p.SID != "" && (to == "" || p.To == to) {
			out = append(out, message(p, s.now().UTC()))
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": out, "page": 0, "page_size": 50})
}

func writeErr(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
}

// Sign computes X-Twilio-Signature for a form POST to fullURL, as Twilio
// documents it: base64 of HMAC-SHA1, keyed by the auth token, of the URL
// followed by each parameter name and value, sorted by name.
func Sign(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
