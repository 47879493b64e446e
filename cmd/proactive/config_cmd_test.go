package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/internal/testenv"
)

// `proactive config` prints the effective configuration with secrets
// redacted, and refuses a bad one with exactly the errors serve gives:
// every problem, unknown keys and variables with the nearest known name.
func TestConfigCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "auth_token")
	if err := os.WriteFile(secret, []byte("tw-secret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PROACTIVE_TWILIO_ACCOUNT_SID":     "AC1",
		"PROACTIVE_TWILIO_AUTH_TOKEN_FILE": secret,
		"PROACTIVE_TWILIO_FROM":            "+15550001111",
		"PROACTIVE_PUBLIC_URL":             "https://proactive.example",
		"PROACTIVE_INFLUX_TOKEN":           "influx-secret",
		"PROACTIVE_NOTIFY_OFFER_EXPIRY":    "2w",
		"PROACTIVE_RULES_SNAPSHOT_PATH":    "",
	}
	var out, errOut testenv.Buffer
	if err := run(t.Context(), []string{"proactive", "config"}, envMap(env), &out, &errOut, environList(env)...); err != nil {
		t.Fatalf("config: %v", err)
	}
	printed := out.String()
	for _, want := range []string{"auth_token: '[redacted]'", "token: '[redacted]'", "public_url: https://proactive.example", "offer_expiry: 2w", `snapshot_path: ""`} {
		if !strings.Contains(printed, want) {
			t.Errorf("config does not print %q:\n%s", want, printed)
		}
	}
	if strings.Contains(printed, "secret") {
		t.Errorf("config prints a secret:\n%s", printed)
	}

	file := filepath.Join(dir, "proactive.yaml")
	if err := os.WriteFile(file, []byte("influx:\n  tokn: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{"PROACTIVE_CONFIG": file, "PROACTIVE_INFLUX_TOKENN": "x", "PROACTIVE_TWILIO_ACCOUNT_SID": "AC1", "PROACTIVE_TWILIO_AUTH_TOKEN": "t", "PROACTIVE_TWILIO_FROM": "+15550001111"}
	var errs [2]error
	for i, cmd := range []string{"config", "serve"} {
		errs[i] = run(t.Context(), []string{"proactive", cmd}, envMap(bad), &testenv.Buffer{}, &testenv.Buffer{}, environList(bad)...)
	}
	if errs[0] == nil || errs[1] == nil || errs[0].Error() != errs[1].Error() {
		t.Fatalf("config and serve report differently:\nconfig: %v\nserve:  %v", errs[0], errs[1])
	}
	for _, want := range []string{
		file + " line 2: unknown key influx.tokn (did you mean influx.token?)",
		"unknown variable PROACTIVE_INFLUX_TOKENN (did you mean PROACTIVE_INFLUX_TOKEN?)",
		"public_url: required with twilio.account_sid",
	} {
		if !strings.Contains(errs[0].Error(), want) {
			t.Errorf("config error does not say %q:\n%v", want, errs[0])
		}
	}
}

// environList is a map in os.Environ's form.
func environList(m map[string]string) []string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	return kv
}
