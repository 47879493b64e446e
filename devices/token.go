package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Role is what an API token may do.
type Role string

// The roles of API tokens.
const (
	// RoleAdmin may do everything, including managing tokens and reloading rules.
	RoleAdmin Role = "admin"
	// RoleDispatcher runs the field-service desk: registry, tickets, assignments.
	RoleDispatcher Role = "dispatcher"
	// RoleTechnician sees and works on the tickets assigned to one technician.
	RoleTechnician Role = "technician"
)

// Valid reports whether r is one of the declared roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleDispatcher, RoleTechnician:
		return true
	}
	return false
}

// Token is an API token's record. Its secret is shown once, by CreateToken,
// and only its SHA-256 hash is stored: a Token never carries it.
type Token struct {
	// ID is the token's public part: 16 hex digits, also inside the
	// plaintext, used for lookup, in logs and to revoke it.
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// TechnicianID is the technician a technician token acts for; empty
	// for the other roles.
	TechnicianID string    `json:"technician_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	// LastUsedAt is when the token last authenticated a request, to within
	// TokenOptions.TouchEvery; zero if never.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// RevokedAt is when the token was revoked; zero while it is live.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Token plaintexts look like pat_0123456789abcdef_<64 hex digits>: a fixed
// prefix (so that secret scanners and people recognise one), the id, and a
// 256-bit secret. Hex keeps the underscore an unambiguous separator.
const (
	tokenPrefix    = "pat_"
	tokenIDBytes   = 8
	tokenSecretLen = 32
	tokenLen       = len(tokenPrefix) + 2*tokenIDBytes + 1 + 2*tokenSecretLen
)

// TokenOptions tune Tokens. Zero fields get the defaults given on each.
type TokenOptions struct {
	// CacheTTL is how long a token checked against the database is trusted
	// without asking it again, default 5s: a revocation by another process
	// (the CLI) takes effect within it, one through these Tokens at once.
	CacheTTL time.Duration
	// TouchEvery is how stale a token's last_used_at may get before a
	// request updates it, default 1m, so that use costs no write per request.
	TouchEvery time.Duration
}

// Tokens issues, checks and revokes API tokens in a Store. It caches what
// Authenticate reads, briefly; revocations through the same Tokens apply at
// once. Safe for concurrent use; one per process is the intent.
type Tokens struct {
	s     *Store
	touch time.Duration
	cache *ttlCache[string, tokenEntry]
}

// tokenEntry is a cached lookup: the token and its hash, or that no token
// has the id (found false), so that guessing ids does not hit the database
// on every request.
type tokenEntry struct {
	found bool
	tok   Token
	hash  [sha256.Size]byte
}

// NewTokens returns the token service of s.
func NewTokens(s *Store, opt TokenOptions) *Tokens {
	if opt.CacheTTL <= 0 {
		opt.CacheTTL = 5 * time.Second
	}
	if opt.TouchEvery <= 0 {
		opt.TouchEvery = time.Minute
	}
	return &Tokens{s: s, touch: opt.TouchEvery, cache: newTTLCache[string, tokenEntry](opt.CacheTTL, 10_000)}
}

// Create issues a token and returns its record and its plaintext, which is
// not stored and cannot be shown again. A technician token names an existing
// technician (ENotFound otherwise); the other roles name none. EInvalid
// (*FieldErrors) for a bad name, role or technician.
func (ts *Tokens) Create(ctx context.Context, name string, role Role, technicianID string) (Token, string, error) {
	name = strings.TrimSpace(name)
	v := newValidator("token")
	v.text("name", name, 80, true)
	v.check(role.Valid(), "role", "%q is not admin, dispatcher or technician", role)
	switch {
	case role == RoleTechnician && technicianID == "":
		v.addf("technician_id", "required for a technician token")
	case role != RoleTechnician && technicianID != "" && role.Valid():
		v.addf("technician_id", "only technician tokens name a technician")
	}
	if err := v.err(); err != nil {
		return Token{}, "", err
	}
	idb := make([]byte, tokenIDBytes)
	secret := make([]byte, tokenSecretLen)
	rand.Read(idb) // crypto/rand.Read never fails (Go 1.24+)
	rand.Read(secret)
	t := Token{ID: hex.EncodeToString(idb), Name: name, Role: role, TechnicianID: technicianID, CreatedAt: ts.s.clock()}
	secretHex := hex.EncodeToString(secret)
	hash := sha256.Sum256([]byte(secretHex))
	tech := sql.NullString{String: technicianID, Valid: technicianID != ""}
	err := ts.s.WithTx(ctx, func(tx *Tx) error {
		if tech.Valid {
			var one int
			err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM technicians WHERE id = $1`, technicianID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("technician", technicianID)
			} else if err != nil {
				return err
			}
		}
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO api_tokens (id, name, role, technician_id, secret_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, t.Name, string(t.Role), tech, hex.EncodeToString(hash[:]), t.CreatedAt)
		return err
	})
	if err != nil {
		return Token{}, "", wrapOp("create token", err)
	}
	ts.cache.invalidate(t.ID) // forget a negative entry for this id
	return t, tokenPrefix + t.ID + "_" + secretHex, nil
}

// errBadToken is the one answer to every failed authentication, so that
// the reply does not tell which part was wrong.
var errBadToken = proactive.Errorf(proactive.EUnauthorized, "invalid or revoked API token")

// parseToken splits a plaintext into its id and secret.
func parseToken(plaintext string) (id, secret string, ok bool) {
	if len(plaintext) != tokenLen || !strings.HasPrefix(plaintext, tokenPrefix) {
		return "", "", false
	}
	rest := plaintext[len(tokenPrefix):]
	id, secret = rest[:2*tokenIDBytes], rest[2*tokenIDBytes+1:]
	if rest[2*tokenIDBytes] != '_' || !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", false
	}
	return id, secret, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Authenticate returns the live token whose plaintext this is. A malformed,
// unknown, wrong or revoked token is EUnauthorized, with the same message
// whichever it is. The secret is compared in constant time. A lookup is
// cached for TokenOptions.CacheTTL, and the token's last use is written at
// most once per TokenOptions.TouchEvery; a failure to write it is logged,
// not returned.
func (ts *Tokens) Authenticate(ctx context.Context, plaintext string) (Token, error) {
	id, secret, ok := parseToken(plaintext)
	if !ok {
		return Token{}, errBadToken
	}
	now := ts.s.now()
	e, hit := ts.cache.get(id, now)
	if !hit {
		gen := ts.cache.gen()
		var err error
		if e, err = ts.load(ctx, id); err != nil {
			return Token{}, fmt.Errorf("authenticate token: %w", err)
		}
		if e.found && !e.tok.Revoked() && now.Sub(e.tok.LastUsedAt) >= ts.touch {
			e.tok.LastUsedAt = dbTime(now)
			if _, err := ts.s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`,
				id, e.tok.LastUsedAt); err != nil {
				ts.s.log.Warn("record token use", "token", id, "err", err)
			}
		}
		// Unknown ids are not cached: a flood of made-up ids would
		// otherwise push the live tokens out (the API limits failed
		// authentications per client instead).
		if e.found {
			ts.cache.put(id, e, gen, now)
		}
	}
	got := sha256.Sum256([]byte(secret))
	if !e.found || subtle.ConstantTimeCompare(got[:], e.hash[:]) != 1 || e.tok.Revoked() {
		return Token{}, errBadToken
	}
	return e.tok, nil
}

const tokenColumns = `id, name, role, technician_id, created_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var t Token
	var tech sql.NullString
	var used, revoked sql.NullTime
	dest := append([]any{&t.ID, &t.Name, &t.Role, &tech, &t.CreatedAt, &used, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Token{}, err
	}
	t.TechnicianID = tech.String
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = t.CreatedAt.UTC(), fromNull(used), fromNull(revoked)
	return t, nil
}

func (ts *Tokens) load(ctx context.Context, id string) (tokenEntry, error) {
	var hashHex string
	t, err := scanToken(ts.s.read.QueryRowContext(ctx, `SELECT `+tokenColumns+`, secret_hash FROM api_tokens WHERE id = $1`, id), &hashHex)
	if errors.Is(err, sql.ErrNoRows) {
		return tokenEntry{}, nil
	} else if err != nil {
		return tokenEntry{}, err
	}
	e := tokenEntry{found: true, tok: t}
	if b, err := hex.DecodeString(hashHex); err != nil || len(b) != sha256.Size {
		return tokenEntry{}, fmt.Errorf("token %s: stored hash is malformed", id)
	} else {
		copy(e.hash[:], b)
	}
	return e, nil
}

// Get returns a token's record; ENotFound if there is none.
func (ts *Tokens) Get(ctx context.Context, id string) (Token, error) {
	t, err := scanToken(ts.s.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, notFound("token", id)
	} else if err != nil {
		return Token{}, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// List returns every token, revoked ones included, oldest first. No secret
// or hash is ever part of it.
func (ts *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := ts.s.read.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// Revoke revokes a token for good and returns its record. It takes effect
// at once in this process and within TokenOptions.CacheTTL in others.
// Revoking a revoked token changes nothing. ENotFound if there is none.
func (ts *Tokens) Revoke(ctx context.Context, id string) (Token, error) {
	now := ts.s.clock()
	var t Token
	err := ts.s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		t, err = scanToken(tx.tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("token", id)
		}
		return err
	})
	ts.cache.invalidate(id)
	if err != nil {
		return Token{}, wrapOp("revoke token", err)
	}
	return t, nil
}
