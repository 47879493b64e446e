package main

// No container engine runs where the tests run, so the production shape
// (docker-compose.yml, Dockerfile, deploy/) is checked by reading it: every
// service, volume, variable, data source, dashboard query and metric it
// names must exist, and the PROACTIVE_* variables must be configuration keys.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

// repoRoot is where docker-compose.yml lives, seen from this package.
const repoRoot = "../.."

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
	// secretValues is each secret's content with deploy/env.example as .env.
	secretValues map[string]string
}

// secretAt returns the content of the secret s sees at path, which must be
// one of its secrets under /run/secrets.
func (cf composeFile) secretAt(s composeService, path string) (string, bool) {
	name, ok := strings.CutPrefix(path, "/run/secrets/")
	if !ok || !slices.Contains(s.Secrets, name) {
		return "", false
	}
	v, ok := cf.secretValues[name]
	return v, ok
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     []struct {
		Path     string `yaml:"path"`
		Required *bool  `yaml:"required"`
	} `yaml:"env_file"`
	Secrets   []string `yaml:"secrets"`
	Volumes   []string `yaml:"volumes"`
	Ports     []string `yaml:"ports"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
		Required  *bool  `yaml:"required"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	Profiles []string `yaml:"profiles"`
	Restart  string   `yaml:"restart"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

var (
	interpRe   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)
	bareVarRe  = regexp.MustCompile(`\$[A-Za-z_{]`)
	envNameRe  = regexp.MustCompile(`PROACTIVE_[A-Z0-9_]*[A-Z0-9]`)
	envLineRe  = regexp.MustCompile(`(?m)^#?\s*([A-Z][A-Z0-9_]*)=(.*)$`)
	grafanaVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

// interpolate resolves ${VAR}, ${VAR:-default} and ${VAR:?message} the way
// Compose does with none of the variables set, and $$ to $. It returns the
// variables named, and fails on a bare $VAR (Compose would take it from the
// environment of whoever runs it).
func interpolate(t *testing.T, text string) (string, map[string]bool) {
	t.Helper()
	vars := map[string]bool{}
	var out strings.Builder
	for i := 0; i < len(text); {
		if lineStart := i == 0 || text[i-1] == '\n'; lineStart && strings.HasPrefix(strings.TrimLeft(text[i:], " "), "#") {
			// Compose interpolates values, not comments.
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				end = len(text) - i - 1
			}
			out.WriteString(text[i : i+end+1])
			i += end + 1
			continue
		}
		if text[i] != '$' {
			out.WriteByte(text[i])
			i++
			continue
		}
		if strings.HasPrefix(text[i:], "$$") {
			out.WriteByte('$')
			i += 2
			continue
		}
		m := interpRe.FindStringSubmatchIndex(text[i:])
		if m == nil || m[0] != 0 {
			if bareVarRe.MatchString(text[i:min(len(text), i+2)]) {
				t.Errorf("docker-compose.yml: bare or malformed variable at %q: write ${VAR:-default}, or $$ for a literal $", text[i:min(len(text), i+30)])
			}
			out.WriteByte('$')
			i++
			continue
		}
		name := text[i+m[2] : i+m[3]]
		vars[name] = true
		if m[4] >= 0 {
			op, arg := text[i+m[4]:i+m[5]], text[i+m[6]:i+m[7]]
			if strings.HasSuffix(op, "?") {
				t.Errorf("docker-compose.yml: ${%s%s...} makes `docker compose up` fail without a .env; give a default", name, op)
			}
			out.WriteString(arg)
		}
		i += m[1]
	}
	return out.String(), vars
}

func mustReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadCompose reads docker-compose.yml with the variables at their defaults,
// each service's environment as the container gets it (env_file and
// environment, with deploy/env.example as .env), and the variables it reads
// from .env (interpolated, and the sources of secrets).
func loadCompose(t *testing.T) (composeFile, map[string]bool) {
	t.Helper()
	text, vars := interpolate(t, mustReadFile(t, "docker-compose.yml"))
	var cf composeFile
	if err := yaml.Unmarshal([]byte(text), &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(cf.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	p := composeProject(t, nil)
	for name, s := range cf.Services {
		s.Environment = map[string]string{}
		for k, v := range p.Services[name].Environment {
			if v != nil {
				s.Environment[k] = *v
			}
		}
		cf.Services[name] = s
	}
	cf.secretValues = map[string]string{}
	for name, sec := range p.Secrets {
		cf.secretValues[name] = sec.Content
		if sec.Environment != "" {
			vars[sec.Environment] = true
		}
	}
	return cf, vars
}

// configEnv returns every environment variable the configuration reads.
func configEnv() map[string]string { return config.Variables() }

// mountOf finds the volume or bind source mounted at the container path
// holding p, and p's path inside it.
func mountOf(s composeService, p string) (source, rel string, ok bool) {
	best := ""
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		target := strings.TrimSuffix(parts[1], "/")
		if (p == target || strings.HasPrefix(p, target+"/")) && len(target) > len(best) {
			best, source = target, parts[0]
		}
	}
	if best == "" {
		return "", "", false
	}
	return source, strings.TrimPrefix(strings.TrimPrefix(p, best), "/"), true
}

func hostPort(t *testing.T, what, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: %q is not a URL with a host", what, raw)
	}
	return u.Hostname(), u.Port()
}

// The PROACTIVE_* variables in the production shape are configuration keys,
// the important ones are set, and the service's environment is a valid
// configuration.
func TestComposeConfigSync(t *testing.T) {
	cf, vars := loadCompose(t)
	keys := configEnv()
	for _, f := range []string{"docker-compose.yml", "Dockerfile", "deploy/env.example", "docs/operations.md", "docs/scaling.md",
		"docs/deploy.md", "deploy/mosquitto/mosquitto.conf", "deploy/mosquitto/entrypoint.sh", "deploy/proactive.env",
		"deploy/proactive.env.example", "deploy/caddy/Caddyfile"} {
		for _, name := range envNameRe.FindAllString(mustReadFile(t, f), -1) {
			if _, ok := keys[name]; !ok && config.OtherVariables[name] == "" {
				t.Errorf("%s: %s is not a configuration variable (internal/config)", f, name)
			}
		}
	}

	svc, ok := cf.Services["proactive"]
	if !ok {
		t.Fatal("no proactive service")
	}
	for _, name := range []string{
		"PROACTIVE_MQTT_URL", "PROACTIVE_MQTT_USERNAME", "PROACTIVE_MQTT_PASSWORD_FILE", "PROACTIVE_MQTT_CLIENT_ID",
		"PROACTIVE_INFLUX_URL", "PROACTIVE_INFLUX_TOKEN_FILE", "PROACTIVE_INFLUX_ORG", "PROACTIVE_INFLUX_BUCKET",
		"PROACTIVE_DB", "PROACTIVE_HTTP_ADDR", "PROACTIVE_PUBLIC_URL", "PROACTIVE_RULES", "PROACTIVE_LOG_FORMAT",
		"PROACTIVE_TWILIO_AUTH_TOKEN_FILE", // the account and sender: in proactive.env (TestComposeEnvFile)
	} {
		if _, ok := svc.Environment[name]; !ok {
			t.Errorf("proactive service: %s is not set", name)
		}
	}
	for name := range svc.Environment {
		if _, ok := keys[name]; !ok {
			t.Errorf("proactive service: %s is not a configuration variable", name)
		}
	}
	env := withSecretFiles(t, cf, svc)
	cfg, err := loadConfig("", envMap(env), environList(env)...)
	if err != nil {
		t.Fatalf("the proactive service's environment is not a valid configuration:\n%v", err)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format = %q, want json in production", cfg.Log.Format)
	}
	// The ACL generator reads the same registry and names the same user.
	acl := cf.Services["mqtt-acl"]
	if !reflect.DeepEqual(acl.Environment, svc.Environment) {
		t.Error("mqtt-acl and proactive have different environments: the ACL would not match the service")
	}

	// Every variable docker-compose.yml reads is described in
	// deploy/env.example, and the example sets nothing else.
	documented := map[string]bool{}
	for _, m := range envLineRe.FindAllStringSubmatch(mustReadFile(t, "deploy/env.example"), -1) {
		if !strings.HasPrefix(m[0], "#") {
			documented[m[1]] = true
		}
	}
	for v := range vars {
		if !documented[v] {
			t.Errorf("docker-compose.yml reads ${%s}, which deploy/env.example does not describe", v)
		}
	}
	for v := range documented {
		if !vars[v] {
			t.Errorf("deploy/env.example sets %s, which docker-compose.yml does not read", v)
		}
	}
}

// Every service, dependency, volume, file and address docker-compose.yml
// names exists, and the services agree on users, tokens, org and bucket.
func TestComposeServices(t *testing.T) {
	cf, _ := loadCompose(t)
	if cf.Name != "proactive" {
		t.Errorf("project name %q", cf.Name)
	}
	for _, want := range []string{"mosquitto", "influxdb", "proactive", "mqtt-acl", "prometheus", "grafana", "postgres"} {
		if _, ok := cf.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	conditions := []string{"service_started", "service_healthy", "service_completed_successfully"}
	for name, s := range cf.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(repoRoot, s.Build.Context, "Dockerfile")); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := cf.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
				continue
			}
			if !slices.Contains(conditions, d.Condition) {
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
			if d.Condition == "service_healthy" && (target.Healthcheck == nil || target.Healthcheck.Disable || len(target.Healthcheck.Test) == 0) {
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
			if d.Condition == "service_completed_successfully" && target.Restart != "no" {
				t.Errorf("%s waits for %s to complete, which restarts (%q)", name, dep, target.Restart)
			}
			if len(target.Profiles) > 0 && (d.Required == nil || *d.Required) {
				t.Errorf("%s requires %s, which only runs with profile %v: add required: false", name, dep, target.Profiles)
			}
		}
		if len(s.Profiles) == 0 && name != "mqtt-acl" && (s.Healthcheck == nil || s.Healthcheck.Disable) {
			t.Errorf("%s: no health check", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, src)
			}
		}
	}

	px := cf.Services["proactive"]
	env := px.Environment
	host, port := hostPort(t, "PROACTIVE_MQTT_URL", env["PROACTIVE_MQTT_URL"])
	if _, ok := cf.Services[host]; !ok || host != "mosquitto" || port != "1883" {
		t.Errorf("PROACTIVE_MQTT_URL points at %s:%s, not the mosquitto service's listener", host, port)
	}
	host, port = hostPort(t, "PROACTIVE_INFLUX_URL", env["PROACTIVE_INFLUX_URL"])
	if host != "influxdb" || port != "8086" {
		t.Errorf("PROACTIVE_INFLUX_URL points at %s:%s, not the influxdb service", host, port)
	}
	for _, dep := range []string{"mosquitto", "influxdb"} {
		if px.DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("proactive does not wait for %s to be healthy", dep)
		}
	}
	if px.DependsOn["mqtt-acl"].Condition != "service_completed_successfully" || cf.Services["mosquitto"].DependsOn["mqtt-acl"].Condition != "service_completed_successfully" {
		t.Error("mosquitto and proactive must wait for the ACL to be written")
	}

	// InfluxDB: what proactive uses is what the first start sets up.
	influx := cf.Services["influxdb"].Environment
	for k, want := range map[string]string{
		"DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_ORG": env["PROACTIVE_INFLUX_ORG"],
		"DOCKER_INFLUXDB_INIT_BUCKET": env["PROACTIVE_INFLUX_BUCKET"],
	} {
		if influx[k] != want || want == "" {
			t.Errorf("influxdb %s = %q, want %q", k, influx[k], want)
		}
	}
	ifx := cf.Services["influxdb"]
	initToken, ok1 := cf.secretAt(ifx, influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"])
	pxToken, ok2 := cf.secretAt(px, env["PROACTIVE_INFLUX_TOKEN_FILE"])
	if !ok1 || !ok2 || initToken != pxToken || initToken == "" {
		t.Error("influxdb's DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE and proactive's PROACTIVE_INFLUX_TOKEN_FILE are not one secret")
	}
	if pw, _ := cf.secretAt(ifx, influx["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"]); len(pw) < 8 {
		t.Error("InfluxDB refuses an admin password under 8 characters (DOCKER_INFLUXDB_INIT_PASSWORD_FILE)")
	}

	// Mosquitto: the platform user, the files the config names, the limits.
	mq := cf.Services["mosquitto"]
	mqPass, ok1 := cf.secretAt(mq, mq.Environment["MQTT_PLATFORM_PASSWORD_FILE"])
	pxPass, ok2 := cf.secretAt(px, env["PROACTIVE_MQTT_PASSWORD_FILE"])
	if mq.Environment["MQTT_PLATFORM_USER"] != env["PROACTIVE_MQTT_USERNAME"] || !ok1 || !ok2 || mqPass != pxPass {
		t.Error("mosquitto's platform user or password differs from proactive's PROACTIVE_MQTT_USERNAME/PASSWORD_FILE")
	}
	conf := map[string]string{}
	var listeners []string
	for _, line := range strings.Split(mustReadFile(t, "deploy/mosquitto/mosquitto.conf"), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(k, "#") {
			conf[k] = strings.TrimSpace(v)
			if k == "listener" {
				listeners = append(listeners, conf[k])
			}
		}
	}
	if !slices.Equal(listeners, []string{"1883", "8883"}) {
		t.Errorf("mosquitto.conf: listeners %v, want 1883 (plaintext) and 8883 (TLS)", listeners)
	}
	confMount, _, _ := mountOf(mq, "/mosquitto/config/mosquitto.conf")
	if confMount != "./deploy/mosquitto/mosquitto.conf" {
		t.Errorf("mosquitto.conf is mounted from %q", confMount)
	}
	for k, want := range map[string]string{"allow_anonymous": "false", "persistence": "true", "autosave_on_changes": "true"} {
		if conf[k] != want {
			t.Errorf("mosquitto.conf: %s = %q, want %q", k, conf[k], want)
		}
	}
	for k, least := range map[string]int{"max_queued_messages": 100000, "max_inflight_messages": 1000} {
		if n, err := strconv.Atoi(conf[k]); err != nil || n < least {
			t.Errorf("mosquitto.conf: %s = %q, want at least %d", k, conf[k], least)
		}
	}
	for _, k := range []string{"password_file", "acl_file", "persistence_location"} {
		if src, _, ok := mountOf(mq, conf[k]); !ok || strings.HasPrefix(src, ".") {
			t.Errorf("mosquitto.conf: %s %s is not on a volume of the mosquitto service", k, conf[k])
		}
	}
	// The ACL mqtt-acl writes is the file Mosquitto reads, through one volume.
	gen := cf.Services["mqtt-acl"]
	out := ""
	if i := slices.Index(gen.Command, "--out"); i >= 0 && i+1 < len(gen.Command) {
		out = gen.Command[i+1]
	}
	wSrc, wRel, _ := mountOf(gen, out)
	rSrc, rRel, _ := mountOf(mq, conf["acl_file"])
	if wSrc == "" || wSrc != rSrc || wRel != rRel {
		t.Errorf("mqtt-acl writes %s (volume %s, %s), mosquitto reads %s (volume %s, %s)", out, wSrc, wRel, conf["acl_file"], rSrc, rRel)
	}
	if entry, _, _ := mountOf(mq, mq.Entrypoint[len(mq.Entrypoint)-1]); entry != "./deploy/mosquitto/entrypoint.sh" {
		t.Errorf("mosquitto's entrypoint %v is not deploy/mosquitto/entrypoint.sh", mq.Entrypoint)
	}
	if src, _, _ := mountOf(px, "/var/lib/proactive/proactive.db"); src != "proactive-data" {
		t.Error("the SQLite registry is not on the proactive-data volume")
	}
	if src, _, _ := mountOf(gen, "/var/lib/proactive/proactive.db"); src != "proactive-data" {
		t.Error("mqtt-acl does not read the registry on the proactive-data volume")
	}

	// The commands the compose file runs exist: the ACL generator runs
	// here on a SQLite registry, the health check is a registered command.
	genEnv := withSecretFiles(t, cf, gen)
	genEnv["PROACTIVE_DB"] = filepath.Join(t.TempDir(), "proactive.db")
	aclPath := filepath.Join(t.TempDir(), "acl.conf")
	args := append([]string{"proactive"}, gen.Command...)
	args[slices.Index(args, out)] = aclPath
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), args, envMap(genEnv), &stdout, &stderr); err != nil {
		t.Errorf("mqtt-acl's command %v: %v\n%s", gen.Command, err, stderr.String())
	} else if b, _ := os.ReadFile(aclPath); !strings.Contains(string(b), "user "+env["PROACTIVE_MQTT_USERNAME"]+"\n") {
		t.Errorf("the generated ACL does not name the platform user:\n%s", b)
	}
	if len(px.Command) == 0 || px.Command[0] != "serve" {
		t.Errorf("proactive's command %v", px.Command)
	}
	if hc := px.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/usr/local/bin/proactive", "healthcheck"}) {
		t.Errorf("proactive's health check: %+v", hc)
	}
	if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == "healthcheck" }) {
		t.Error(`the image's health check runs "proactive healthcheck": register it in commands() (main.go)`)
	}

	// Prometheus scrapes the proactive service at its HTTP port.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(mustReadFile(t, "deploy/prometheus/prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	if src, _, _ := mountOf(cf.Services["prometheus"], "/etc/prometheus/prometheus.yml"); src != "./deploy/prometheus/prometheus.yml" {
		t.Error("prometheus.yml is not mounted")
	}
	_, httpPort, _ := net.SplitHostPort(env["PROACTIVE_HTTP_ADDR"])
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "proactive" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				h, p, _ := net.SplitHostPort(target)
				scraped = h == "proactive" && p == httpPort && sc.MetricsPath == "/metrics"
			}
		}
	}
	if !scraped {
		t.Errorf("prometheus.yml has no job proactive scraping proactive:%s/metrics", httpPort)
	}

	// PostgreSQL: the URL deploy/env.example gives reaches the postgres
	// service with its user, password and database.
	pg := cf.Services["postgres"]
	if !slices.Equal(pg.Profiles, []string{"postgres"}) {
		t.Errorf("postgres profiles %v, want [postgres]", pg.Profiles)
	}
	var pgURL string
	for _, m := range envLineRe.FindAllStringSubmatch(mustReadFile(t, "deploy/proactive.env.example"), -1) {
		if m[1] == "PROACTIVE_DB" && strings.HasPrefix(m[2], "postgres://") {
			pgURL = m[2]
		}
	}
	u, err := url.Parse(pgURL)
	if err != nil || pgURL == "" {
		t.Fatalf("deploy/proactive.env.example gives no PROACTIVE_DB=postgres://... example (%v)", err)
	}
	pass, _ := u.User.Password()
	pgPass, _ := cf.secretAt(pg, pg.Environment["POSTGRES_PASSWORD_FILE"])
	if u.Hostname() != "postgres" || u.Port() != "5432" || u.User.Username() != pg.Environment["POSTGRES_USER"] ||
		pass != pgPass || strings.TrimPrefix(u.Path, "/") != pg.Environment["POSTGRES_DB"] {
		t.Errorf("the example DB URL %s does not match the postgres service %v", u.Redacted(), pg.Environment)
	}
}

// The image builds a static binary and runs it as a non-root user with a
// health check.
func TestDockerfile(t *testing.T) {
	df := mustReadFile(t, "Dockerfile")
	var froms, users []string
	var health string
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "HEALTHCHECK":
			health = line
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[len(froms)-1], "gcr.io/distroless/static") {
		t.Errorf("stages %v: want a build stage and a distroless/static final stage", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %v: want a non-root user", users)
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the build does not turn CGO off")
	}
	if !strings.Contains(df, `"/usr/local/bin/proactive", "healthcheck"`) || health == "" {
		t.Error("no HEALTHCHECK running proactive healthcheck")
	}
	for _, m := range regexp.MustCompile(`cp (rules/\S+)`).FindAllStringSubmatch(df, -1) {
		if g, _ := filepath.Glob(filepath.Join(repoRoot, m[1])); len(g) == 0 {
			t.Errorf("Dockerfile copies %s, which matches nothing", m[1])
		}
	}
	ignore := mustReadFile(t, ".dockerignore")
	for _, p := range []string{"go.mod", "go.sum", "cmd", "rules", "devices", "ingest"} {
		if slices.Contains(strings.Fields(ignore), p) {
			t.Errorf(".dockerignore leaves %s out of the build", p)
		}
	}
}

type grafanaDatasource struct {
	Name     string            `yaml:"name"`
	UID      string            `yaml:"uid"`
	Type     string            `yaml:"type"`
	URL      string            `yaml:"url"`
	JSONData map[string]any    `yaml:"jsonData"`
	Secure   map[string]string `yaml:"secureJsonData"`
}

// grafanaDatasources reads the provisioned data sources, with $VARS taken
// from the grafana service's environment.
func grafanaDatasources(t *testing.T, cf composeFile) map[string]grafanaDatasource {
	t.Helper()
	gf := cf.Services["grafana"]
	text := mustReadFile(t, "deploy/grafana/provisioning/datasources/datasources.yaml")
	text = regexp.MustCompile(`\$__file\{([^}]*)\}`).ReplaceAllStringFunc(text, func(s string) string {
		path := strings.TrimSuffix(strings.TrimPrefix(s, "$__file{"), "}")
		v, ok := cf.secretAt(gf, path)
		if !ok {
			t.Errorf("datasources.yaml reads the file %s, which is no secret of the grafana service", path)
		}
		return v
	})
	text = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)\}`).ReplaceAllStringFunc(text, func(s string) string {
		name := strings.Trim(s, "${}")
		v, ok := gf.Environment[name]
		if !ok {
			t.Errorf("datasources.yaml reads $%s, which the grafana service does not set", name)
		}
		return v
	})
	var prov struct {
		Datasources []grafanaDatasource `yaml:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(text), &prov); err != nil {
		t.Fatal(err)
	}
	out := map[string]grafanaDatasource{}
	for _, ds := range prov.Datasources {
		out[ds.UID] = ds
	}
	return out
}

// metricInfo is what the code registers of one metric: its label names.
type metricInfo struct{ labels []string }

var (
	descNameRe   = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	descLabelsRe = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

// descRecorder is a Registerer that keeps what each collector describes.
type descRecorder map[string]metricInfo

func (r descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		m := descNameRe.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var labels []string
		if l := descLabelsRe.FindStringSubmatch(s); l != nil && l[1] != "" {
			for _, name := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(name, "c("), ")"))
			}
		}
		r[m[1]] = metricInfo{labels: labels}
	}
	return nil
}

func (r descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r descRecorder) Unregister(prometheus.Collector) bool { return true }

// platformMetrics returns every metric `proactive serve` registers. A
// package that adds instruments adds its constructor here, as serve does.
func platformMetrics(tb testing.TB) descRecorder {
	reg := descRecorder{}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ingest.NewMetrics(reg)
	rules.New(rules.Options{Registerer: reg})
	store, err := devices.Open(tb.Context(), testenv.SQLite(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	notify.New(notify.Options{Store: store, Registerer: reg})
	notify.NewDispatcher(store, notify.DispatcherOptions{Registerer: reg})
	reg.MustRegister(directoryGauge(store))
	// Prometheus adds these to every scraped series.
	reg["up"] = metricInfo{}
	return reg
}

// promFuncs are PromQL's functions, aggregations and keywords that can
// stand where a metric name could.
var promFuncs = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`sum avg min max count stddev stdvar topk bottomk quantile count_values group
		rate irate increase delta idelta deriv predict_linear resets changes histogram_quantile
		abs ceil floor round clamp clamp_min clamp_max exp ln log2 log10 sqrt sgn
		sort sort_desc label_replace label_join absent absent_over_time scalar vector time timestamp
		avg_over_time min_over_time max_over_time sum_over_time count_over_time last_over_time
		quantile_over_time stddev_over_time present_over_time and or unless bool offset inf nan`) {
		promFuncs[f] = true
	}
}

// promQL lists the metric names and label names in a PromQL expression.
func promQL(expr string) (metrics, labels []string, err error) {
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (!first && c >= '0' && c <= '9')
	}
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch expr[j] {
			case '"':
				for j++; j < len(expr) && expr[j] != '"'; j++ {
					if expr[j] == '\\' {
						j++
					}
				}
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	identList := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	matcherRe := regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"`)
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"':
			j := strings.IndexByte(expr[i+1:], '"')
			if j < 0 {
				return nil, nil, fmt.Errorf("unterminated string in %q", expr)
			}
			i += j + 2
		case c == '{':
			j, err := closing(i, '{', '}')
			if err != nil {
				return nil, nil, err
			}
			for _, m := range matcherRe.FindAllStringSubmatch(expr[i+1:j], -1) {
				labels = append(labels, m[1])
			}
			i = j + 1
		case c == '[':
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, nil, err
			}
			i = j + 1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (expr[i] >= '0' && expr[i] <= '9' || expr[i] == '.' || expr[i] == 'e') {
				i++
			}
		case isIdent(c, true):
			j := i + 1
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			switch {
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, word):
				if next < len(expr) && expr[next] == '(' {
					k, err := closing(next, '(', ')')
					if err != nil {
						return nil, nil, err
					}
					labels = append(labels, identList(expr[next+1:k])...)
					j = k + 1
				}
			case promFuncs[word]:
			case next < len(expr) && expr[next] == '(':
				return nil, nil, fmt.Errorf("%q: unknown function %s", expr, word)
			default:
				metrics = append(metrics, word)
			}
			i = j
		default:
			i++
		}
	}
	return metrics, labels, nil
}

// checkPromQL checks that every metric in expr is registered and every label
// it names belongs to one of its metrics (or is added by Prometheus).
func checkPromQL(reg descRecorder, expr string, legend string) error {
	metrics, labels, err := promQL(expr)
	if err != nil {
		return err
	}
	if len(metrics) == 0 {
		return fmt.Errorf("%q names no metric", expr)
	}
	have := map[string]bool{"instance": true, "job": true}
	for _, m := range metrics {
		info, ok := reg[m]
		if !ok {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
			if info, ok = reg[base]; !ok || base == m {
				return fmt.Errorf("%q: metric %s is not registered by the code", expr, m)
			}
			if strings.HasSuffix(m, "_bucket") {
				have["le"] = true
			}
		}
		for _, l := range info.labels {
			have[l] = true
		}
	}
	for _, m := range regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`).FindAllStringSubmatch(legend, -1) {
		labels = append(labels, m[1])
	}
	for _, l := range labels {
		if !have[l] {
			return fmt.Errorf("%q: label %s belongs to none of %v", expr, l, metrics)
		}
	}
	return nil
}

var (
	influxQLFromRe  = regexp.MustCompile(`(?i)\bFROM\s+("(?:[^"\\]|\\.)*"|[A-Za-z_]\w*)`)
	influxQLIdentRe = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
	influxQLAliasRe = regexp.MustCompile(`(?i)\bAS\s+"([^"]*)"`)
	influxQLSelects = regexp.MustCompile(`(?i)^\s*(SELECT|SHOW (TAG VALUES|FIELD KEYS|TAG KEYS|MEASUREMENTS))\b`)
)

// checkInfluxQL checks an InfluxQL query against what ingest writes:
// measurements telemetry and status, tags device_id and model, the status
// field online, and metrics only through Grafana variables. Flux, which
// InfluxDB 3 lacks, is refused.
func checkInfluxQL(q string) error {
	if strings.Contains(q, "|>") || strings.Contains(q, "from(bucket") {
		return fmt.Errorf("%q is Flux, which InfluxDB 3 does not serve", q)
	}
	if !influxQLSelects.MatchString(q) {
		return fmt.Errorf("%q is not a SELECT or SHOW", q)
	}
	measurements := map[string]bool{influx.MeasurementTelemetry: true, influx.MeasurementStatus: true}
	names := map[string]bool{"device_id": true, "model": true, "online": true}
	for k := range measurements {
		names[k] = true
	}
	for _, m := range influxQLAliasRe.FindAllStringSubmatch(q, -1) {
		names[m[1]] = true
	}
	for _, m := range influxQLFromRe.FindAllStringSubmatch(q, -1) {
		if name := strings.Trim(m[1], `"`); !measurements[name] {
			return fmt.Errorf("%q: ingest writes no measurement %q", q, name)
		}
	}
	for _, m := range influxQLIdentRe.FindAllStringSubmatch(q, -1) {
		if !names[m[1]] && !strings.HasPrefix(m[1], "$") {
			return fmt.Errorf("%q: ingest writes no tag or field %s", q, m[1])
		}
	}
	return nil
}

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	RefID        string      `json:"refId"`
	Datasource   *grafanaRef `json:"datasource"`
	Expr         string      `json:"expr"`
	Query        string      `json:"query"`
	LegendFormat string      `json:"legendFormat"`
}

type grafanaPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *grafanaRef              `json:"datasource"`
	Targets    []grafanaTarget          `json:"targets"`
	Panels     []grafanaPanel           `json:"panels"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
}

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *grafanaRef     `json:"datasource"`
	Query      json.RawMessage `json:"query"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

// The dashboards parse, and every data source, variable, metric, label,
// bucket, measurement and tag they name exists.
func TestComposeDashboards(t *testing.T) {
	cf, _ := loadCompose(t)
	sources := grafanaDatasources(t, cf)
	reg := platformMetrics(t)
	influxEnv := cf.Services["influxdb"].Environment
	bucket := influxEnv["DOCKER_INFLUXDB_INIT_BUCKET"]

	// The data sources reach services that exist, with InfluxDB's org,
	// bucket and token.
	want := map[string]string{"prometheus": "prometheus", "influxdb": "influxdb"}
	for uid, typ := range want {
		ds, ok := sources[uid]
		if !ok || ds.Type != typ {
			t.Errorf("no %s data source with uid %s", typ, uid)
			continue
		}
		host, port := hostPort(t, "data source "+uid, ds.URL)
		svc, ok := cf.Services[host]
		if !ok {
			t.Errorf("data source %s points at %s, which is not a service", uid, host)
		}
		if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
			t.Errorf("data source %s: service %s does not listen on %s", uid, host, port)
		}
	}
	// InfluxQL, with the database the bucket's virtual DBRP mapping gives
	// (a bucket without a "/" is the database of the same name) and the token.
	if ds := sources["influxdb"]; ds.JSONData["version"] != "InfluxQL" || ds.JSONData["dbName"] != bucket ||
		ds.JSONData["httpHeaderName1"] != "Authorization" || ds.Secure["httpHeaderValue1"] != "Token "+cf.secretValues["influx_token"] ||
		influxEnv["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"] != "/run/secrets/influx_token" {
		t.Errorf("the InfluxDB data source does not use InfluxQL with the database and token InfluxDB is set up with: %+v", ds)
	}
	gf := cf.Services["grafana"]
	if src, _, _ := mountOf(gf, "/etc/grafana/provisioning/datasources"); src != "./deploy/grafana/provisioning" {
		t.Error("grafana: provisioning is not mounted from deploy/grafana/provisioning")
	}
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(mustReadFile(t, "deploy/grafana/provisioning/dashboards/dashboards.yaml")), &providers); err != nil {
		t.Fatal(err)
	}
	if len(providers.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %d", len(providers.Providers))
	}
	dashDir, _, _ := mountOf(gf, providers.Providers[0].Options.Path)
	if dashDir != "./deploy/grafana/dashboards" {
		t.Errorf("the dashboard provider reads %s, mounted from %q", providers.Providers[0].Options.Path, dashDir)
	}
	if home := gf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		src, rel, _ := mountOf(gf, home)
		if _, err := os.Stat(filepath.Join(repoRoot, src, rel)); err != nil {
			t.Errorf("grafana's home dashboard: %v", err)
		}
	}

	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/dashboards/*.json"))
	if len(files) < 2 {
		t.Fatalf("dashboards %v: want fleet telemetry and platform", files)
	}
	uids := map[string]string{}
	titles := []string{}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d grafanaDashboard
			dec := json.NewDecoder(bytes.NewReader(b))
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if d.UID == "" || uids[d.UID] != "" {
				t.Errorf("uid %q missing or also in %s", d.UID, uids[d.UID])
			}
			uids[d.UID] = name
			titles = append(titles, d.Title)

			vars := map[string]bool{}
			checkRef := func(where string, ref *grafanaRef) grafanaDatasource {
				if ref == nil {
					t.Errorf("%s: no data source", where)
					return grafanaDatasource{}
				}
				ds, ok := sources[ref.UID]
				if !ok || ds.Type != ref.Type {
					t.Errorf("%s: data source %s/%s is not provisioned", where, ref.Type, ref.UID)
				}
				return ds
			}
			checkQuery := func(where string, ds grafanaDatasource, q, legend string) {
				var err error
				switch ds.Type {
				case "prometheus":
					err = checkPromQL(reg, q, legend)
				case "influxdb":
					err = checkInfluxQL(q)
				}
				if err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			checkVars := func(where, s string) {
				for _, m := range grafanaVar.FindAllStringSubmatch(s, -1) {
					if !vars[m[1]] && !strings.HasPrefix(m[1], "__") && m[1] != "timeFilter" { // Grafana's own
						t.Errorf("%s: variable $%s is not defined in the dashboard", where, m[1])
					}
				}
			}
			for _, v := range d.Templating.List {
				vars[v.Name] = true
			}
			for _, v := range d.Templating.List {
				where := "variable " + v.Name
				ds := checkRef(where, v.Datasource)
				var q string
				if err := json.Unmarshal(v.Query, &q); err != nil {
					var obj struct{ Query string }
					if err := json.Unmarshal(v.Query, &obj); err != nil {
						t.Fatalf("%s: query %s", where, v.Query)
					}
					q = obj.Query
				}
				checkVars(where, q)
				if m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(q); m != nil {
					q = fmt.Sprintf("sum by (%s) (%s)", m[2], m[1])
				}
				checkQuery(where, ds, q, "")
			}
			ids := map[int]bool{}
			var walk func([]grafanaPanel)
			walk = func(panels []grafanaPanel) {
				for _, p := range panels {
					where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
					if ids[p.ID] {
						t.Errorf("%s: duplicate id", where)
					}
					ids[p.ID] = true
					if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
						t.Errorf("%s: grid position %+v", where, p.GridPos)
					}
					checkVars(where, p.Title)
					if p.Type == "row" {
						walk(p.Panels)
						continue
					}
					ds := checkRef(where, p.Datasource)
					if len(p.Targets) == 0 {
						t.Errorf("%s: no queries", where)
					}
					for _, tg := range p.Targets {
						if tg.Datasource != nil {
							checkRef(where, tg.Datasource)
						}
						q := tg.Expr
						if ds.Type == "influxdb" {
							q = tg.Query
						}
						if q == "" {
							t.Errorf("%s/%s: empty query", where, tg.RefID)
							continue
						}
						checkVars(where, q)
						checkQuery(where+"/"+tg.RefID, ds, q, tg.LegendFormat)
					}
				}
			}
			walk(d.Panels)
		})
	}
	sort.Strings(titles)
	if !slices.Equal(titles, []string{"Fleet telemetry", "Platform"}) {
		t.Errorf("dashboards %v", titles)
	}
}

// The checker itself catches what it is there to catch.
func TestComposeCheckers(t *testing.T) {
	reg := platformMetrics(t)
	for _, name := range []string{"proactive_ingest_messages_total", "proactive_rules_alerts", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := reg[name]; !ok {
			t.Errorf("%s not among the registered metrics", name)
		}
	}
	if got := reg["proactive_ingest_dead_letters_total"].labels; !slices.Equal(got, []string{"reason"}) {
		t.Errorf("dead letter labels %v", got)
	}
	for expr, wantErr := range map[string]string{
		`sum by (reason) (rate(proactive_ingest_dead_letters_total{instance=~"$instance"}[$__rate_interval]))`: "",
		`histogram_quantile(0.99, sum by (le) (rate(proactive_ingest_write_seconds_bucket[5m])))`:              "",
		`sum(rate(proactive_notify_outbox_sent_total[5m]))`:                                                    "not registered",
		`sum by (rule) (proactive_ingest_pending_messages)`:                                                    "label rule",
		`sum(proactive_ingest_messages_total{knd="telemetry"})`:                                                "label knd",
		`sum(rat(proactive_ingest_messages_total[5m]))`:                                                        "unknown function",
		`up{job="proactive"} == 1`:                                                                             "",
	} {
		err := checkPromQL(reg, expr, "")
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("checkPromQL(%s) = %v, want %q", expr, err, wantErr)
		}
	}
	for q, wantErr := range map[string]string{
		`SELECT mean("$metric") FROM "telemetry" WHERE "device_id" =~ /^$device$/ AND $timeFilter GROUP BY time($__interval), "device_id"`: "",
		`SELECT last("online") AS "on" FROM "status" WHERE "on" = false`:                                                                   "",
		`SHOW TAG VALUES FROM "telemetry" WITH KEY = "model"`:                                                                              "",
		`SELECT count("x") FROM (SELECT last("$metric") FROM "telemetry" GROUP BY "device_id")`:                                            "field x",
		`SELECT "current" FROM "telemtry"`:                                                                                                 "measurement",
		`SELECT "current" FROM telemtry`:                                                                                                   "measurement",
		`SELECT "$metric" FROM "telemetry" WHERE "deviceid" = 'x'`:                                                                         "deviceid",
		`from(bucket: v.defaultBucket) |> range(start: -1h)`:                                                                               "Flux",
		`DROP MEASUREMENT "telemetry"`:                                                                                                     "not a SELECT",
	} {
		err := checkInfluxQL(q)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("checkInfluxQL(%s) = %v, want %q", q, err, wantErr)
		}
	}
}
