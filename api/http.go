package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/rules"
)

// httpError is a failure decided by the API itself, with its status.
type httpError struct {
	status int
	code   string
	msg    string
	fields map[string]string
}

func (e *httpError) Error() string { return e.msg }

// badRequest is a 400 for a malformed request.
func badRequest(fields map[string]string, format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: fmt.Sprintf(format, args...), fields: fields}
}

func forbidden(format string, args ...any) error {
	return &httpError{status: http.StatusForbidden, code: proactive.EForbidden, msg: fmt.Sprintf(format, args...)}
}

func unavailable(what string) error {
	return &httpError{status: http.StatusServiceUnavailable, code: proactive.EUnavailable, msg: what + " is not available in this server"}
}

// errorBody is the JSON form of every failure.
type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields,omitempty"`
	} `json:"error"`
}

var codeStatus = map[string]int{
	proactive.EInvalid:      http.StatusUnprocessableEntity,
	proactive.ENotFound:     http.StatusNotFound,
	proactive.EConflict:     http.StatusConflict,
	proactive.EUnauthorized: http.StatusUnauthorized,
	proactive.EForbidden:    http.StatusForbidden,
	proactive.EUnavailable:  http.StatusServiceUnavailable,
	proactive.EInternal:     http.StatusInternalServerError,
}

// writeError answers err as JSON. Only here are error codes turned into
// statuses; internal errors are logged and shown as "internal error".
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var body errorBody
	status := http.StatusInternalServerError
	var he *httpError
	var fe *devices.FieldErrors
	var probs rules.Problems
	switch {
	case errors.As(err, &he):
		status, body.Error.Code, body.Error.Message, body.Error.Fields = he.status, he.code, he.msg, he.fields
	case errors.As(err, &probs):
		status, body.Error.Code = http.StatusUnprocessableEntity, proactive.EInvalid
		body.Error.Message = fmt.Sprintf("rules not reloaded, the running rules stay: %d problem(s)", len(probs))
		body.Error.Fields = problemFields(probs)
	case devices.Unavailable(err):
		// The database (or InfluxDB) is down or busy: the request may
		// succeed later.
		s.log.Warn("dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		status, body.Error.Code = http.StatusServiceUnavailable, proactive.EUnavailable
		body.Error.Message = "a service this request needs (the database or InfluxDB) is unavailable: retry after the time in Retry-After"
	default:
		code := proactive.ErrorCode(err)
		if st, ok := codeStatus[code]; ok {
			status = st
		}
		body.Error.Code, body.Error.Message = code, proactive.ErrorMessage(err)
		if errors.As(err, &fe) {
			body.Error.Fields = fe.Fields
		}
		if code == proactive.EInternal {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="proactive"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfter)
	}
	_ = writeJSON(w, status, body)
}

// problemFields keys rule problems by FILE:LINE (and rule), for the fields
// of a 422.
func problemFields(ps rules.Problems) map[string]string {
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		key := p.File
		if p.Line > 0 {
			key += ":" + strconv.Itoa(p.Line)
		}
		if p.Rule != "" {
			key += " rule " + p.Rule
		}
		for k, n := key, 2; ; n++ {
			if _, dup := out[k]; !dup {
				out[k] = p.Msg
				break
			}
			k = fmt.Sprintf("%s (%d)", key, n)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// writeItems answers 200 with {"items": [...]}, an empty list rather than
// null when there are none.
func writeItems[T any](w http.ResponseWriter, items []T) error {
	if items == nil {
		items = []T{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// handle adapts a handler that returns its failure.
func (s *server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// limitBody bounds every request body to MaxBodyBytes.
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// decode reads a JSON body into v: 413 when it is too large, 400 when it is
// not one JSON value of v's shape (unknown fields included, to catch typos).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "too_large",
			msg: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		return badRequest(map[string]string{field: "want " + ute.Type.String() + ", got " + ute.Value}, "malformed JSON body: %s has the wrong type", field)
	case errors.Is(err, io.EOF):
		return badRequest(nil, "empty body: want a JSON object")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(nil, "malformed JSON body: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(map[string]string{f: "unknown field"}, "malformed JSON body: unknown field %q", f)
	}
	return badRequest(nil, "malformed JSON body: %v", err)
}

type ctxKey struct{}

// tokenOf returns the request's authenticated token.
func tokenOf(ctx context.Context) devices.Token {
	t, _ := ctx.Value(ctxKey{}).(devices.Token)
	return t
}

// authenticate admits requests with a live bearer token (401 otherwise)
// and puts the token in the request's context.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		if _, failed, _ := s.failures.Status(addr); failed >= float64(s.AuthFailures) {
			w.Header().Set("Retry-After", strconv.Itoa(int(s.RateWindow.Seconds())))
			s.writeError(w, r, &httpError{status: http.StatusTooManyRequests, code: "rate_limited",
				msg: "too many failed authentications from this address: retry after the time in Retry-After"})
			return
		}
		fail := func(err error) {
			s.failures.OnLimit(w, r, addr) // counts the failure
			s.writeError(w, r, err)
		}
		h := r.Header.Get("Authorization")
		if h == "" && strings.HasSuffix(r.URL.Path, ".ics") && r.URL.Query().Has("token") {
			// Calendar apps subscribe to a URL and send no headers: a feed's
			// URL carries its token (the access log leaves query strings out).
			h = "Bearer " + r.URL.Query().Get("token")
		}
		scheme, plain, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			fail(proactive.Errorf(proactive.EUnauthorized, "missing bearer token: send Authorization: Bearer pat_..."))
			return
		}
		tok, err := s.Tokens.Authenticate(r.Context(), strings.TrimSpace(plain))
		if err != nil {
			if proactive.ErrorCode(err) == proactive.EUnauthorized {
				fail(err)
			} else {
				s.writeError(w, r, err)
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tok)))
	})
}

// allow admits only tokens with one of roles (403 otherwise).
func allow(s *server, roles ...devices.Role) func(http.Handler) http.Handler {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	need := strings.Join(names, " or ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := tokenOf(r.Context())
			if !slices.Contains(roles, tok.Role) {
				s.writeError(w, r, forbidden("this route needs role %s; the token has role %s", need, tok.Role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// actor names the token's holder on ticket timelines and consent trails.
func actor(t devices.Token) string {
	if t.Role == devices.RoleTechnician {
		return "technician " + t.TechnicianID
	}
	return t.Name
}

// listOptions reads limit and cursor.
func listOptions(r *http.Request) (devices.ListOptions, error) {
	q := r.URL.Query()
	opt := devices.ListOptions{Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return opt, badRequest(map[string]string{"limit": "want an integer from 1 to 500"}, "bad query parameter limit=%q", v)
		}
		opt.Limit = n
	}
	return opt, nil
}

// idAndBody reads the {id} of the path and the JSON body of a request
// that acts on one record.
func idAndBody[T any](r *http.Request) (int64, T, error) {
	var req T
	id, err := int64Param(r, "id")
	if err != nil {
		return 0, req, err
	}
	if err := decode(r, &req); err != nil {
		return 0, req, err
	}
	return id, req, nil
}

// int64Param reads a positive integer path parameter.
func int64Param(r *http.Request, name string) (int64, error) {
	v := chi.URLParam(r, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, badRequest(map[string]string{name: "want a positive integer"}, "bad %s %q in the path", name, v)
	}
	return n, nil
}

// retryAfter is the Retry-After, in seconds, of a 503.
const retryAfter = "5"

// clientAddr is the address failed authentications are counted against:
// the client as a trusted proxy forwarded it (the router's clientIP puts it
// in RemoteAddr), else the connection's peer. Behind a proxy that is not
// configured as trusted that is the proxy, so the limit then holds for
// everyone behind it together, which errs on the safe side.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host)
}
