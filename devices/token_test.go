package devices_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

func TestTokens(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clock := newClock()
		s := mustOpen(t, dsn, withClock(clock))
		mustTechnician(t, s, "tech-1")
		ts := devices.NewTokens(s, devices.TokenOptions{CacheTTL: time.Hour, TouchEvery: time.Minute})
		ctx := t.Context()

		admin, plain, err := ts.Create(ctx, "  ops laptop ", devices.RoleAdmin, "")
		if err != nil {
			t.Fatal(err)
		}
		if admin.Name != "ops laptop" || admin.Role != devices.RoleAdmin || len(admin.ID) != 16 {
			t.Errorf("created %+v", admin)
		}
		if !strings.HasPrefix(plain, "pat_"+admin.ID+"_") || len(plain) != len("pat_")+16+1+64 {
			t.Errorf("plaintext %q does not have the form pat_<id>_<64 hex>", plain)
		}
		got, err := ts.Authenticate(ctx, plain)
		if err != nil || got.ID != admin.ID || got.Role != devices.RoleAdmin {
			t.Fatalf("authenticate: %+v, %v", got, err)
		}
		if !got.LastUsedAt.Equal(clock.Now()) {
			t.Errorf("last used %v, want %v", got.LastUsedAt, clock.Now())
		}

		// The stored hash is SHA-256 of the secret, never the secret.
		var stored string
		if err := s.ReadDB().QueryRowContext(ctx, `SELECT secret_hash FROM api_tokens WHERE id = $1`, admin.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if len(stored) != 64 || strings.Contains(plain, stored) {
			t.Errorf("stored hash %q", stored)
		}

		clock.Add(time.Second)
		tech, techPlain, err := ts.Create(ctx, "ann's phone", devices.RoleTechnician, "tech-1")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ts.Authenticate(ctx, techPlain); err != nil || got.TechnicianID != "tech-1" || got.Role != devices.RoleTechnician {
			t.Errorf("technician token: %+v, %v", got, err)
		}

		// Every kind of bad token gets the same EUnauthorized.
		wrongSecret := plain[:len(plain)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", plain[len(plain)-1])+1)%16])
		unknownID := "pat_0000000000000000" + plain[len("pat_")+16:]
		for name, bad := range map[string]string{
			"empty":        "",
			"no prefix":    strings.TrimPrefix(plain, "pat_"),
			"upper case":   strings.ToUpper(plain),
			"truncated":    plain[:len(plain)-2],
			"wrong secret": wrongSecret,
			"unknown id":   unknownID,
			"no separator": strings.Replace(plain, admin.ID+"_", admin.ID+"x", 1),
		} {
			if _, err := ts.Authenticate(ctx, bad); proactive.ErrorCode(err) != proactive.EUnauthorized ||
				proactive.ErrorMessage(err) != "invalid or revoked API token" {
				t.Errorf("%s: %v, want EUnauthorized", name, err)
			}
		}

		list, err := ts.List(ctx)
		if err != nil || len(list) != 2 || list[0].ID != admin.ID || list[1].ID != tech.ID {
			t.Fatalf("list: %+v, %v", list, err)
		}

		// Revocation through these Tokens applies at once, cache or not.
		clock.Add(time.Second)
		rev, err := ts.Revoke(ctx, admin.ID)
		if err != nil || !rev.RevokedAt.Equal(clock.Now()) {
			t.Fatalf("revoke: %+v, %v", rev, err)
		}
		if _, err := ts.Authenticate(ctx, plain); proactive.ErrorCode(err) != proactive.EUnauthorized {
			t.Errorf("revoked token authenticated: %v", err)
		}
		clock.Add(time.Second)
		if again, err := ts.Revoke(ctx, admin.ID); err != nil || !again.RevokedAt.Equal(rev.RevokedAt) {
			t.Errorf("second revoke: %+v, %v (want the first revocation time kept)", again, err)
		}
		if _, err := ts.Revoke(ctx, "0000000000000000"); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("revoke unknown: %v", err)
		}
		if _, err := ts.Get(ctx, "nope"); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("get unknown: %v", err)
		}
	})
}

func TestTokenCreateValidation(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ts := devices.NewTokens(s, devices.TokenOptions{})
		ctx := t.Context()
		for _, tc := range []struct {
			name, tokName, tech string
			role                devices.Role
			fields              []string
		}{
			{"no name", "", "", devices.RoleAdmin, []string{"name"}},
			{"bad role", "x", "", "root", []string{"role"}},
			{"technician without id", "x", "", devices.RoleTechnician, []string{"technician_id"}},
			{"dispatcher with id", "x", "tech-1", devices.RoleDispatcher, []string{"technician_id"}},
			{"control chars", "a\nb", "", devices.RoleAdmin, []string{"name"}},
		} {
			_, _, err := ts.Create(ctx, tc.tokName, tc.role, tc.tech)
			fe := fieldErrors(t, err)
			if len(fe.Fields) != len(tc.fields) {
				t.Errorf("%s: fields %v, want %v", tc.name, fe.Fields, tc.fields)
			}
			for _, f := range tc.fields {
				if fe.Fields[f] == "" {
					t.Errorf("%s: no problem with %s in %v", tc.name, f, fe.Fields)
				}
			}
		}
		if _, _, err := ts.Create(ctx, "x", devices.RoleTechnician, "ghost"); proactive.ErrorCode(err) != proactive.ENotFound {
			t.Errorf("unknown technician: %v", err)
		}
		if list, err := ts.List(ctx); err != nil || len(list) != 0 {
			t.Errorf("failed creations stored tokens: %v, %v", list, err)
		}
	})
}

// A revocation by another process (another Tokens on the same database) is
// seen once the cache entry expires; last use is written at most once per
// TouchEvery.
func TestTokenCacheAndTouch(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clock := newClock()
		s := mustOpen(t, dsn, withClock(clock))
		server := devices.NewTokens(s, devices.TokenOptions{CacheTTL: 5 * time.Second, TouchEvery: time.Minute})
		cli := devices.NewTokens(s, devices.TokenOptions{})
		ctx := t.Context()
		tok, plain, err := cli.Create(ctx, "desk", devices.RoleDispatcher, "")
		if err != nil {
			t.Fatal(err)
		}
		first := clock.Now()
		if _, err := server.Authenticate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		clock.Add(30 * time.Second) // cache expired, touch not yet due
		if _, err := server.Authenticate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if got, _ := cli.Get(ctx, tok.ID); !got.LastUsedAt.Equal(first) {
			t.Errorf("last used %v, want %v (no write before TouchEvery)", got.LastUsedAt, first)
		}
		clock.Add(31 * time.Second)
		if _, err := server.Authenticate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if got, _ := cli.Get(ctx, tok.ID); !got.LastUsedAt.Equal(clock.Now()) {
			t.Errorf("last used %v, want %v", got.LastUsedAt, clock.Now())
		}

		if _, err := cli.Revoke(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := server.Authenticate(ctx, plain); err != nil {
			t.Errorf("within the cache TTL the other process's revocation is not seen yet: %v", err)
		}
		clock.Add(6 * time.Second)
		if _, err := server.Authenticate(ctx, plain); proactive.ErrorCode(err) != proactive.EUnauthorized {
			t.Errorf("after the cache TTL: %v, want EUnauthorized", err)
		}
	})
}
