package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// environ turns a map into os.Environ's form, for Load's check of the
// names that are set.
func environ(m map[string]string) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	return kv
}

func wantErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}

// An unknown key names the nearest known one; a bad value names its key
// and line; neither stops the rest of the file, the environment or the
// validation from being reported in the same run.
func TestFileProblemsAllAtOnce(t *testing.T) {
	path := writeFile(t, "c.yaml", `influx:
  tokn: abc
  batch_size: many
  flush_interval: 1s
token: x
notfy:
  daily_cap: 3
notify:
  slot_lenght: 2h
  slot_count: 5
  offer_expiry: [1h]
mqtt:
  url: ftp://x
  url: mqtt://x:1883
`)
	_, err := Load(path, envMap(map[string]string{"PROACTIVE_LOG_LEVEL": "loud"}))
	wantErrors(t, err,
		path+" line 2: unknown key influx.tokn (did you mean influx.token?)",
		`influx.batch_size (`+path+` line 3): "many" is not a whole number`,
		path+" line 5: unknown key token (did you mean influx.token?)",
		path+" line 6: unknown key notfy (did you mean notify?)",
		path+" line 9: unknown key notify.slot_lenght (did you mean notify.slot_length?)",
		`notify.offer_expiry (`+path+` line 11): expected a single value, not a list`,
		path+" line 14: mqtt.url is given twice (first on line 13)",
		"notify.slot_count: must be 2 or 3, got 5",
		"mqtt.url: scheme \"ftp\"",
		`log.level: "loud" is not one of`,
	)
	if strings.Contains(err.Error(), "struct {") {
		t.Errorf("a Go type dump:\n%v", err)
	}
}

// The file takes the values the environment takes, anchors, merge keys,
// lists and nulls included.
func TestFileValues(t *testing.T) {
	path := writeFile(t, "c.yaml", `base: &base
  batch_size: 42
influx:
  <<: *base
  token: "s3cret"
rules:
  paths: [a/*.yaml, b.yaml]
  snapshot_path:
ingest:
  require_registration: true
notify:
`)
	_, err := Load(path, envMap(nil))
	wantErrors(t, err, "unknown key base")

	path = writeFile(t, "c.yaml", "x: &base\n")
	path = writeFile(t, "c.yaml", `influx: &in
  batch_size: 42
  token: "s3cret"
rules:
  paths: [a/*.yaml, b.yaml]
  snapshot_path:
ingest:
  require_registration: true
notify:
`)
	cfg, err := Load(path, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Influx.BatchSize != 42 || cfg.Influx.Token.Reveal() != "s3cret" || strings.Join(cfg.Rules.Paths, " ") != "a/*.yaml b.yaml" ||
		cfg.Rules.SnapshotPath != "" || !cfg.Ingest.RequireRegistration || cfg.Notify.DailyCap != Default().Notify.DailyCap {
		t.Errorf("file not applied: %+v %+v %+v", cfg.Influx, cfg.Rules, cfg.Ingest)
	}

	path = writeFile(t, "c.yaml", "influx:\n  url: [\n")
	_, err = Load(path, envMap(nil))
	wantErrors(t, err, path+": yaml:")
	path = writeFile(t, "c.yaml", "- a\n")
	_, err = Load(path, envMap(nil))
	wantErrors(t, err, "the configuration must be a mapping of keys, not a list")
}

// A PROACTIVE_* variable nothing reads is an error naming the nearest known
// one; the commands' own variables and the test harness's are known.
func TestUnknownVariables(t *testing.T) {
	env := map[string]string{
		"PROACTIVE_INFLUX_TOKENN":           "x",
		"PROACTIVE_RULES_PATHS":             "r/*.yaml",
		"PROACTIVE_TOKEN":                   "x",
		"PROACTIVE_INFLUX_URL_FILE":         "/run/secrets/url",
		"PROACTIVE_NOTIFY_DAILYCAP":         "4",
		"PROACTIVE_INFLUX_BATCH_SIZE":       "none",
		"PROACTIVE_CONFIG":                  "",
		"PROACTIVE_API_TOKEN":               "t",
		"PROACTIVE_SIMULATE_PASSWORD":       "p",
		"PROACTIVE_TEST_POSTGRES":           "postgres://",
		"PROACTIVE_INFLUXD":                 "/bin/influxd",
		"PROACTIVE_TWILIO_AUTH_TOKEN_FILE":  "",
		"PROACTIVE_RULES":                   "rules/*.yaml",
		"OTHER_PROACTIVE_INFLUX_TOKENN":     "not ours",
		"proactive_lower_case_is_not_ours_": "",
	}
	_, err := Load("", envMap(env), environ(env)...)
	wantErrors(t, err,
		"unknown variable PROACTIVE_INFLUX_TOKENN (did you mean PROACTIVE_INFLUX_TOKEN?)",
		"unknown variable PROACTIVE_RULES_PATHS (did you mean PROACTIVE_RULES?)",
		"unknown variable PROACTIVE_TOKEN (did you mean PROACTIVE_INFLUX_TOKEN?)",
		"unknown variable PROACTIVE_INFLUX_URL_FILE (did you mean PROACTIVE_INFLUX_URL?; only secrets (PROACTIVE_MQTT_PASSWORD, PROACTIVE_INFLUX_TOKEN, PROACTIVE_DB, PROACTIVE_HTTP_METRICS_TOKEN, PROACTIVE_TWILIO_AUTH_TOKEN, PROACTIVE_SMTP_URL) may come from a file)",
		"unknown variable PROACTIVE_NOTIFY_DAILYCAP (did you mean PROACTIVE_NOTIFY_DAILY_CAP?)",
		`influx.batch_size (PROACTIVE_INFLUX_BATCH_SIZE): "none" is not a whole number`,
	)
	if n := strings.Count(err.Error(), "unknown variable"); n != 5 {
		t.Errorf("%d unknown variables reported, want 5:\n%v", n, err)
	}

	// Without the list of names (getenv only) nothing can be checked.
	if _, err := Load("", envMap(map[string]string{"PROACTIVE_INFLUX_TOKENN": "x"})); err != nil {
		t.Errorf("getenv alone: %v", err)
	}
}

// Every secret may come from a file (Docker secrets), its one trailing
// newline trimmed; a secret set both ways, or a file that cannot be read,
// is an error naming the variable.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PROACTIVE_PUBLIC_URL": "https://p.example", "PROACTIVE_TWILIO_ACCOUNT_SID": "AC1", "PROACTIVE_TWILIO_FROM": "+15550001111"}
	want := map[string]string{}
	for name, value := range map[string]string{
		"PROACTIVE_MQTT_PASSWORD": "mqtt-pw\n", "PROACTIVE_INFLUX_TOKEN": "influx-tok\r\n",
		"PROACTIVE_DB": "postgres://u:p@db/x\n\n", "PROACTIVE_TWILIO_AUTH_TOKEN": "tw-tok",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
		env[name+"_FILE"] = path
		want[name] = strings.TrimSuffix(strings.TrimSuffix(value, "\n"), "\r")
	}
	env["PROACTIVE_TWILIO_AUTH_TOKEN"] = "" // compose's ${TWILIO_AUTH_TOKEN:-}: the file wins
	cfg, err := Load("", envMap(env), environ(env)...)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]interface{ Reveal() string }{
		"PROACTIVE_MQTT_PASSWORD": cfg.MQTT.Password, "PROACTIVE_INFLUX_TOKEN": cfg.Influx.Token,
		"PROACTIVE_DB": cfg.DB, "PROACTIVE_TWILIO_AUTH_TOKEN": cfg.Twilio.AuthToken,
	} {
		if got.Reveal() != want[name] {
			t.Errorf("%s_FILE gave %q, want %q", name, got.Reveal(), want[name])
		}
	}
	if p := cfg.Printable(); strings.Contains(p, "tw-tok") || strings.Contains(p, "influx-tok") || strings.Contains(p, "u:p@") {
		t.Errorf("a secret from a file printed:\n%s", p)
	}

	env["PROACTIVE_INFLUX_TOKEN"] = "also-set"
	env["PROACTIVE_MQTT_PASSWORD_FILE"] = filepath.Join(dir, "missing")
	_, err = Load("", envMap(env), environ(env)...)
	wantErrors(t, err,
		"influx.token: both PROACTIVE_INFLUX_TOKEN and PROACTIVE_INFLUX_TOKEN_FILE are set: keep one",
		"mqtt.password (PROACTIVE_MQTT_PASSWORD_FILE): open "+filepath.Join(dir, "missing"),
	)
	if strings.Contains(err.Error(), "also-set") {
		t.Errorf("the error shows a secret: %v", err)
	}
}

// With the names of the environment, a variable set but empty sets its key
// to empty where empty means something, and is an error where it does not.
func TestSetButEmpty(t *testing.T) {
	env := map[string]string{"PROACTIVE_RULES_SNAPSHOT_PATH": "", "PROACTIVE_MQTT_TOPIC_PREFIX": "site", "PROACTIVE_INFLUX_TOKEN": ""}
	cfg, err := Load("", envMap(env), environ(env)...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rules.SnapshotPath != "" || cfg.MQTT.TopicPrefix != "site" {
		t.Errorf("snapshot_path %q, topic_prefix %q", cfg.Rules.SnapshotPath, cfg.MQTT.TopicPrefix)
	}
	env = map[string]string{"PROACTIVE_INFLUX_BATCH_SIZE": "", "PROACTIVE_RULES_ENABLED": "", "PROACTIVE_MQTT_CLIENT_ID": ""}
	_, err = Load("", envMap(env), environ(env)...)
	wantErrors(t, err,
		"influx.batch_size (PROACTIVE_INFLUX_BATCH_SIZE): set but empty",
		"rules.enabled (PROACTIVE_RULES_ENABLED): set but empty",
		"mqtt.client_id: required",
	)
}

// Twilio without public_url could send but never verify a reply.
func TestTwilioNeedsPublicURL(t *testing.T) {
	env := map[string]string{"PROACTIVE_TWILIO_ACCOUNT_SID": "AC1", "PROACTIVE_TWILIO_AUTH_TOKEN": "t", "PROACTIVE_TWILIO_FROM": "+15550001111"}
	_, err := Load("", envMap(env))
	wantErrors(t, err, "public_url: required with twilio.account_sid")
	env["PROACTIVE_PUBLIC_URL"] = "https://proactive.example"
	if _, err := Load("", envMap(env)); err != nil {
		t.Error(err)
	}
}

func TestNearest(t *testing.T) {
	keys := fileKeys()
	for name, want := range map[string]string{
		"influx.tokn": "influx.token", "token": "influx.token", "mqtt.pasword": "mqtt.password",
		"notify.slot_lenght": "notify.slot_length", "publicurl": "public_url", "rule": "rules",
		"influx.batchsize": "influx.batch_size", "http.adr": "http.addr",
	} {
		if got := nearest(name, '.', []string{lastPart(name, '.')}, keys); got != want {
			t.Errorf("nearest(%q) = %q, want %q", name, got, want)
		}
	}
	vars := knownVariables()
	for name, want := range map[string]string{
		"PROACTIVE_INFLUX_TOKENN": "PROACTIVE_INFLUX_TOKEN", "PROACTIVE_RULES_PATHS": "PROACTIVE_RULES",
		"PROACTIVE_TWILIO_TOKEN_FILE": "PROACTIVE_TWILIO_AUTH_TOKEN_FILE", "PROACTIVE_PUBLICURL": "PROACTIVE_PUBLIC_URL",
		"PROACTIVE_CONFIG_FILE": "PROACTIVE_CONFIG", "PROACTIVE_DATABASE": "PROACTIVE_DB",
	} {
		if got := nearestVariable(name, vars); got != want {
			t.Errorf("nearest(%q) = %q, want %q", name, got, want)
		}
	}
}

// Merge keys apply before the keys written beside them, and a mapping
// merged into itself is an error, not an endless loop.
func TestFileMerges(t *testing.T) {
	path := writeFile(t, "c.yaml", "x-base: &base\n  batch_size: 42\n  queue_size: 7\n")
	_, err := Load(path, envMap(nil))
	wantErrors(t, err, "unknown key x-base")

	path = writeFile(t, "c.yaml", "influx:\n  batch_size: 9\n  <<: {batch_size: 42, queue_size: 7}\n")
	cfg, err := Load(path, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Influx.BatchSize != 9 || cfg.Influx.QueueSize != 7 {
		t.Errorf("batch_size %d, queue_size %d; want 9 (written) and 7 (merged)", cfg.Influx.BatchSize, cfg.Influx.QueueSize)
	}
	path = writeFile(t, "c.yaml", "influx: &a\n  batch_size: 9\n  <<: *a\n")
	_, err = Load(path, envMap(nil))
	wantErrors(t, err, "influx merges a mapping into itself")
}

// The file decoder takes what an operator writes: no input makes it panic
// or loop.
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"influx:\n  tokn: x\n  batch_size: many\n", "rules:\n  paths: [a, b]\n", "notify: &n\n  <<: *n\n",
		"- a\n", "a: [\n", "mqtt:\n  url: mqtt://x:1883\n  url: y\n", "influx: {<<: [{queue_size: 1}]}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := Default()
		_ = decodeFile(&cfg, "c.yaml", b)
	})
}

// Every PROACTIVE_* variable the code reads is known to the check of
// unknown variables, so that a command's own variable is never refused.
func TestEveryVariableReadIsKnown(t *testing.T) {
	known := Variables()
	read := regexp.MustCompile(`[Gg]etenv\("(PROACTIVE_[A-Z0-9_]+)"\)`)
	files, _ := filepath.Glob("../../cmd/*/*.go")
	more, _ := filepath.Glob("../../internal/*/*.go")
	n := 0
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, ok := known[m[1]]; !ok && OtherVariables[m[1]] == "" && !strings.HasPrefix(m[1], testPrefix) {
				t.Errorf("%s reads %s, which Load would refuse as unknown: add it to OtherVariables", f, m[1])
			}
		}
	}
	if n == 0 {
		t.Fatal("found no getenv of a PROACTIVE_* variable: the pattern is stale")
	}
}

// The database prints whole when it is a SQLite path (the operator needs to
// see which file is used) and with its password replaced when it is a
// PostgreSQL URL or key=value string.
func TestDSNPrints(t *testing.T) {
	for dsn, want := range map[string]string{
		"data/proactive.db":                                           "data/proactive.db",
		"/var/lib/proactive/p.db?_pragma=busy_timeout":                "/var/lib/proactive/p.db?_pragma=busy_timeout",
		"postgres://app:s3cret@db:5432/proactive":                     "postgres://app:xxxxx@db:5432/proactive",
		"postgres://app@db/proactive?password=s3cret&sslmode=disable": "postgres://app@db/proactive?password=xxxxx&sslmode=disable",
		"host=db user=app password=s3cret dbname=p":                   "host=db user=app password=xxxxx dbname=p",
		"host=db password='s3 cret' dbname=p":                         "host=db password=xxxxx dbname=p",
		"":                                                            "",
	} {
		d := DSN(dsn)
		if got := d.String(); got != want {
			t.Errorf("DSN(%q).String() = %q, want %q", dsn, got, want)
		}
		if b, _ := d.MarshalJSON(); strings.Contains(string(b), "s3") {
			t.Errorf("DSN(%q) as JSON shows its password: %s", dsn, b)
		}
	}
	env := map[string]string{"PROACTIVE_DB": "data/x.db"}
	cfg, err := Load("", envMap(env), environ(env)...)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Printable(); !strings.Contains(p, "db: data/x.db") {
		t.Errorf("the printed configuration hides the SQLite path:\n%s", p)
	}
}
