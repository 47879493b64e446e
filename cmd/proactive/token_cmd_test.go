package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// runToken runs `proactive token ARGS...` on the SQLite database db.
func runToken(t *testing.T, db string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := envMap(map[string]string{"PROACTIVE_DB": db})
	err = run(t.Context(), append([]string{"proactive", "token"}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestTokenCmd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "proactive.db")
	stdout, stderr, err := runToken(t, db, "create", "--role", "dispatcher", "--name", "night desk")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, stderr)
	}
	plain := strings.TrimSpace(stdout)
	if !regexp.MustCompile(`^pat_[0-9a-f]{16}_[0-9a-f]{64}$`).MatchString(plain) {
		t.Fatalf("stdout %q is not a token alone", stdout)
	}
	id := plain[4:20]
	if !strings.Contains(stderr, "shown only this once") || !strings.Contains(stderr, id) || strings.Contains(stderr, plain) {
		t.Errorf("stderr %q: want the once-only notice with the id, without the secret", stderr)
	}

	// The token authenticates against the same database.
	store, err := devices.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tok, err := devices.NewTokens(store, devices.TokenOptions{}).Authenticate(context.Background(), plain)
	if err != nil || tok.Role != devices.RoleDispatcher || tok.Name != "night desk" {
		t.Fatalf("authenticate: %+v, %v", tok, err)
	}

	stdout, _, err = runToken(t, db, "list")
	if err != nil || !strings.Contains(stdout, id) || !strings.Contains(stdout, "night desk") || strings.Contains(stdout, plain[21:]) {
		t.Errorf("list: %v\n%s", err, stdout)
	}

	stdout, _, err = runToken(t, db, "revoke", id)
	if err != nil || !strings.Contains(stdout, "token "+id+` ("night desk") revoked`) {
		t.Errorf("revoke: %v\n%s", err, stdout)
	}
	if _, err := devices.NewTokens(store, devices.TokenOptions{}).Authenticate(context.Background(), plain); proactive.ErrorCode(err) != proactive.EUnauthorized {
		t.Errorf("revoked token: %v", err)
	}
}

func TestTokenCmdErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "proactive.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "want a subcommand"},
		{[]string{"mint"}, `unknown subcommand "mint"`},
		{[]string{"create", "--name", "x"}, "needs --role"},
		{[]string{"create", "--role", "admin"}, "needs --name"},
		{[]string{"create", "--role", "root"}, `unknown role "root": want admin, dispatcher or technician`},
		{[]string{"create", "--role", "technician", "--name", "x"}, "technician_id: required"},
		{[]string{"create", "--role", "technician", "--name", "x", "--technician", "ghost"}, "technician ghost not found"},
		{[]string{"revoke"}, "takes one token ID"},
		{[]string{"revoke", "0000000000000000"}, "token 0000000000000000 not found"},
		{[]string{"list", "extra"}, "takes no arguments"},
	} {
		_, _, err := runToken(t, db, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
