package main

// The production shape checked with the tools that run it: docker-compose.yml
// loaded by compose-go (Docker Compose's own loader, which validates it
// against the compose specification), the Caddyfile by `caddy validate`,
// mosquitto.conf by Mosquitto 2.0 itself, the alert rules by promtool; and
// the binary booted with the compose environment behind Caddy, answering a
// Twilio webhook signed for the public URL compose derives.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	paho "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive/internal/config"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/twilio"
)

// dotEnv reads a KEY=value file the way Compose reads .env and env_file:
// comments and blank lines skipped.
func dotEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range envLineRe.FindAllStringSubmatch(mustReadFile(t, path), -1) {
		if !strings.HasPrefix(m[0], "#") {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	return out
}

// composeProject loads docker-compose.yml as Docker Compose does, validated
// against the compose specification (compose-go, the loader of Docker
// Compose itself), with the variables of deploy/env.example as .env and
// the overrides given, env_file resolved into each service's environment.
// Services of all profiles are included.
func composeProject(t *testing.T, overrides map[string]string) *types.Project {
	t.Helper()
	env := dotEnv(t, "deploy/env.example")
	maps.Copy(env, overrides)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "proactive.env")); err == nil {
		// The operator's own settings would leak into what is checked.
		t.Skip("./proactive.env exists in the checkout: the compose checks read the shipped settings only")
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.Profiles = []string{"*"} })
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if p, err = p.WithServicesEnvironmentResolved(true); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// withSecretFiles returns the service's environment with each
// /run/secrets/NAME path replaced by a file of this test holding the
// secret's content, as Docker mounts it.
func withSecretFiles(t *testing.T, cf composeFile, s composeService) map[string]string {
	t.Helper()
	dir := t.TempDir()
	env := maps.Clone(s.Environment)
	for k, v := range env {
		if !strings.HasPrefix(v, "/run/secrets/") {
			continue
		}
		content, ok := cf.secretAt(s, v)
		if !ok {
			t.Errorf("%s=%s is not a secret of the service", k, v)
			continue
		}
		path := filepath.Join(dir, filepath.Base(v))
		if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env[k] = path
	}
	return env
}

// requireTool finds a program the test runs: it fails under CI=true when
// the program is missing (.ci/run installs the Debian package) and skips
// elsewhere.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testenv.RequireService(t, name, fmt.Sprintf("%s not found: apt-get install %s", name, pkg))
	}
	return path
}

// Only HTTPS and MQTT face the network; everything else listens on the
// host's loopback. proactive's public URL is derived from PUBLIC_HOST, its
// settings come from the env_file, its secrets as files, and no secret is
// in any container's environment.
func TestComposeExposure(t *testing.T) {
	p := composeProject(t, map[string]string{"PUBLIC_HOST": "proactive.example.com"})
	public := map[string][]uint32{"caddy": {443}, "mosquitto": {8883}}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			pub, _ := strconv.ParseUint(port.Published, 10, 32)
			if slices.Contains(public[name], uint32(pub)) {
				continue
			}
			if ip := net.ParseIP(port.HostIP); ip == nil || !ip.IsLoopback() {
				t.Errorf("%s publishes %s/%s on %q: only 443 (Caddy) and 8883 (MQTT over TLS) may face the network; bind it to 127.0.0.1", name, port.Published, port.Protocol, port.HostIP)
			}
		}
	}
	if ports := p.Services["caddy"].Ports; !slices.ContainsFunc(ports, func(p types.ServicePortConfig) bool { return p.Published == "443" && p.Target == 443 }) {
		t.Errorf("caddy does not publish 443: %+v", ports)
	}
	if ports := p.Services["mosquitto"].Ports; !slices.ContainsFunc(ports, func(p types.ServicePortConfig) bool { return p.Published == "8883" && p.Target == 8883 }) {
		t.Errorf("mosquitto does not publish MQTT over TLS on 8883: %+v", ports)
	}
	if img := p.Services["mosquitto"].Image; !regexp.MustCompile(`^eclipse-mosquitto:2\.0\.\d+$`).MatchString(img) {
		t.Errorf("mosquitto image %q: pin a 2.0 release (2.1 deprecates password_file and acl_file, which mosquitto.conf uses)", img)
	}

	secrets := map[string]bool{}
	for _, s := range p.Secrets {
		if s.Content != "" {
			secrets[s.Content] = true
		}
	}
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil && secrets[*v] {
				t.Errorf("%s: %s carries a secret in the environment: hand it over as a Docker secret (*_FILE)", name, k)
			}
		}
	}
	cf, _ := loadCompose(t)
	for _, name := range []string{"proactive", "mqtt-acl"} {
		s := p.Services[name]
		ef := cf.Services[name].EnvFile
		if len(ef) != 2 || ef[0].Path != "./deploy/proactive.env" || ef[0].Required != nil ||
			ef[1].Path != "./proactive.env" || ef[1].Required == nil || *ef[1].Required {
			t.Errorf("%s: env_file %+v, want ./deploy/proactive.env, then the operator's optional ./proactive.env", name, ef)
		}
		env := s.Environment
		if got := env["PROACTIVE_PUBLIC_URL"]; got == nil || *got != "https://proactive.example.com" {
			t.Errorf("%s: PROACTIVE_PUBLIC_URL %v, want https:// and PUBLIC_HOST", name, got)
		}
		for _, secret := range []string{"PROACTIVE_MQTT_PASSWORD", "PROACTIVE_INFLUX_TOKEN", "PROACTIVE_TWILIO_AUTH_TOKEN"} {
			if _, ok := env[secret]; ok {
				t.Errorf("%s: %s is set: use %s_FILE", name, secret, secret)
			}
			f := env[secret+"_FILE"]
			if f == nil || !strings.HasPrefix(*f, "/run/secrets/") || !slices.ContainsFunc(s.Secrets, func(c types.ServiceSecretConfig) bool { return "/run/secrets/"+c.Source == *f }) {
				t.Errorf("%s: %s_FILE = %v is not one of its secrets", name, secret, f)
			}
		}
	}
	if host := p.Services["mosquitto"].Environment["MQTT_TLS_HOST"]; host == nil || *host != "proactive.example.com" {
		t.Errorf("mosquitto serves TLS for %v, not PUBLIC_HOST", host)
	}
}

// deploy/proactive.env carries every setting: each configuration variable
// is set or shown commented with its default, and nothing else is there.
func TestComposeEnvFile(t *testing.T) {
	text := mustReadFile(t, "deploy/proactive.env")
	set, commented := map[string]string{}, map[string]string{}
	for _, m := range envLineRe.FindAllStringSubmatch(text, -1) {
		if strings.HasPrefix(m[0], "#") {
			commented[m[1]] = m[2]
		} else {
			set[m[1]] = m[2]
		}
	}
	vars := config.Variables()
	for name, key := range vars {
		_, isSet := set[name]
		_, isShown := commented[name]
		if !isSet && !isShown && !strings.HasSuffix(name, "_FILE") && name != "PROACTIVE_PUBLIC_URL" && !isSecretKey(key) {
			t.Errorf("deploy/proactive.env does not mention %s (%s)", name, key)
		}
	}
	for name := range set {
		if _, ok := vars[name]; !ok {
			t.Errorf("deploy/proactive.env sets %s, which is no configuration variable", name)
		}
	}
	// A commented line shows the default, so that it does not lie.
	var defaults []string
	for name, v := range commented {
		if _, ok := vars[name]; ok && !strings.Contains(v, "<") {
			defaults = append(defaults, name+"="+v)
		}
	}
	def, err := loadConfig("", envMap(dotEnvList(defaults)))
	if err != nil {
		t.Fatalf("the commented defaults are no valid configuration: %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(def, want) {
		t.Errorf("a commented value in deploy/proactive.env is not the default:\nfile:\n%s\ndefaults:\n%s", def.Printable(), want.Printable())
	}
	example := dotEnv(t, "deploy/proactive.env.example")
	for _, m := range envLineRe.FindAllStringSubmatch(mustReadFile(t, "deploy/proactive.env.example"), -1) {
		if _, ok := vars[m[1]]; !ok {
			t.Errorf("deploy/proactive.env.example: %s is no configuration variable", m[1])
		}
	}
	if len(example) != 0 {
		t.Errorf("deploy/proactive.env.example sets %v: an example changes nothing until copied, so keep its lines commented", example)
	}
}

func isSecretKey(key string) bool {
	return slices.Contains([]string{"mqtt.password", "influx.token", "twilio.auth_token"}, key)
}

func dotEnvList(kv []string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// caddyfileFor is deploy/caddy/Caddyfile as a test runs it: the upstream
// proactive:8080 (a compose host name) at upstream, and Caddy's admin API,
// trust store installation and HTTP redirect port off, which the container
// has to itself but this machine shares.
func caddyfileFor(t *testing.T, upstream string) string {
	t.Helper()
	text := mustReadFile(t, "deploy/caddy/Caddyfile")
	cf, _ := loadCompose(t)
	_, port, _ := net.SplitHostPort(cf.Services["proactive"].Environment["PROACTIVE_HTTP_ADDR"])
	if !strings.Contains(text, "reverse_proxy proactive:"+port) {
		t.Fatalf("the Caddyfile does not proxy to the proactive service's http.addr port %s", port)
	}
	text = strings.ReplaceAll(text, "proactive:"+port, upstream)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte("{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}\n\n"+text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// caddyEnv keeps Caddy's certificates and CA in the test's directory.
func caddyEnv(dir, publicHost string) []string {
	return append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir+"/data", "XDG_CONFIG_HOME="+dir+"/config", "PUBLIC_HOST="+publicHost)
}

// The Caddyfile is valid for localhost (Caddy's CA) and for a public name
// (ACME), and keeps /metrics off the internet.
func TestCaddyfile(t *testing.T) {
	caddy := requireTool(t, "caddy", "caddy")
	for _, host := range []string{"localhost", "proactive.example.com"} {
		path := caddyfileFor(t, "127.0.0.1:8080")
		validate := exec.Command(caddy, "validate", "--config", path, "--adapter", "caddyfile")
		validate.Env = caddyEnv(t.TempDir(), host)
		if out, err := validate.CombinedOutput(); err != nil {
			t.Fatalf("caddy validate, PUBLIC_HOST=%s: %v\n%s", host, err, out)
		}
		cmd := exec.Command(caddy, "adapt", "--config", path, "--adapter", "caddyfile")
		cmd.Env = caddyEnv(t.TempDir(), host)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("caddy adapt, PUBLIC_HOST=%s: %v\n%s", host, err, stderr)
		}
		for _, want := range []string{`"host":["` + host + `"]`, `"path":["/metrics","/metrics/*"]`, `"dial":"127.0.0.1:8080"`} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("PUBLIC_HOST=%s: the adapted config lacks %s:\n%s", host, want, out)
			}
		}
	}
}

// The alert rules load in Prometheus, pass their unit tests, and name only
// metrics and labels the platform registers.
func TestPrometheusAlerts(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	promtoolRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	promtoolRun("check", "rules", "alerts.yml")
	promtoolRun("test", "rules", "alerts_test.yml")
	// prometheus.yml loads alerts.yml where compose mounts it.
	cf, _ := loadCompose(t)
	conf := mustReadFile(t, "deploy/prometheus/prometheus.yml")
	if src, _, _ := mountOf(cf.Services["prometheus"], "/etc/prometheus/alerts.yml"); src != "./deploy/prometheus/alerts.yml" || !strings.Contains(conf, "/etc/prometheus/alerts.yml") {
		t.Error("prometheus.yml does not load alerts.yml where the prometheus service mounts it")
	}
	abs, _ := filepath.Abs(filepath.Join(dir, "alerts.yml"))
	tmp := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(conf, "/etc/prometheus/alerts.yml", abs)), 0o600); err != nil {
		t.Fatal(err)
	}
	promtoolRun("check", "config", "--syntax-only", tmp)

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(mustReadFile(t, "deploy/prometheus/alerts.yml")), &rules); err != nil {
		t.Fatal(err)
	}
	reg := platformMetrics(t)
	tested := mustReadFile(t, "deploy/prometheus/alerts_test.yml")
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			if err := checkPromQL(reg, r.Expr, ""); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if !strings.Contains(tested, "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no test in alerts_test.yml", r.Alert)
			}
		}
	}
	// The failures the platform must raise an alarm for.
	for _, want := range []string{"ProactiveIngestStalled", "ProactiveInfluxWritesFailing", "ProactiveOutboxBacklog",
		"ProactiveWebhookRejections", "ProactiveRuleFailing", "ProactiveBrokerRefusing"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// mosquitto.conf as Mosquitto 2.0 runs it: both listeners up, the TLS one
// serving the certificate the entrypoint puts in place, and the password
// file and ACL enforced.
func TestMosquittoConf(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"auth", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The ACL mqtt-acl writes names the platform user.
	if err := os.WriteFile(filepath.Join(dir, "auth", "acl.conf"), []byte("user proactive\ntopic read devices/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caPath, certPath, keyPath := writeCerts(t, t.TempDir())
	passwd := testenv.MosquittoPasswordFile(t, "proactive", "pw")
	tlsPort := testenv.FreePort(t)
	conf := mustReadFile(t, "deploy/mosquitto/mosquitto.conf")
	conf = strings.NewReplacer(
		"listener 1883\n", "listener {{port}} 127.0.0.1\n",
		"listener 8883\n", "listener "+strconv.Itoa(tlsPort)+" 127.0.0.1\n",
		"/mosquitto/auth/passwd", passwd,
		"/mosquitto/tls/cert.pem", certPath,
		"/mosquitto/tls/key.pem", keyPath,
		"/mosquitto/", dir+"/",
		"log_dest stdout", "log_dest stderr",
	).Replace(conf)
	port := testenv.PrivateMosquitto(t, conf)
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := struct{ CertPEM []byte }{caPEM}

	// The TLS listener serves the certificate for the host.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort)), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS on the 8883 listener: %v", err)
	}
	conn.Close()
	// The password file is enforced on both listeners.
	for _, u := range []string{fmt.Sprintf("tcp://127.0.0.1:%d", port), fmt.Sprintf("ssl://localhost:%d", tlsPort)} {
		if err := mqttConnect(u, "proactive", "pw", pool); err != nil {
			t.Errorf("%s with the platform's password: %v", u, err)
		}
		if err := mqttConnect(u, "proactive", "wrong", pool); err == nil {
			t.Errorf("%s accepts a wrong password", u)
		}
	}
}

// Booted with the compose environment (deploy/proactive.env, the secrets as
// files, the public URL compose derives from PUBLIC_HOST) behind Caddy with
// the shipped Caddyfile, proactive answers a Twilio webhook signed for the
// public URL, through Caddy's HTTPS, and refuses one signed for any other.
// Only the compose network's host names are replaced with this machine's
// services.
func TestComposeWebhookThroughCaddy(t *testing.T) {
	caddy := requireTool(t, "caddy", "caddy")
	t.Parallel()
	httpsPort := testenv.FreePort(t)
	publicHost := "localhost:" + strconv.Itoa(httpsPort)
	const authToken = "0123456789abcdef0123456789abcdef"
	p := composeProject(t, map[string]string{"PUBLIC_HOST": publicHost, "TWILIO_AUTH_TOKEN": authToken, "INFLUX_TOKEN": ""})
	cf := composeFile{Services: map[string]composeService{}, secretValues: map[string]string{}}
	svc := composeService{Environment: map[string]string{}}
	for k, v := range p.Services["proactive"].Environment {
		if v != nil {
			svc.Environment[k] = *v
		}
	}
	for _, s := range p.Services["proactive"].Secrets {
		svc.Secrets = append(svc.Secrets, s.Source)
		cf.secretValues[s.Source] = p.Secrets[s.Source].Content
	}
	env := withSecretFiles(t, cf, svc)
	if env["PROACTIVE_PUBLIC_URL"] != "https://"+publicHost {
		t.Fatalf("PROACTIVE_PUBLIC_URL = %q, want it derived from PUBLIC_HOST", env["PROACTIVE_PUBLIC_URL"])
	}

	influx := testenv.Influx(t)
	tw := newTwilioAPI(t)
	dir := t.TempDir()
	maps.Copy(env, map[string]string{
		// What the compose network and volumes provide.
		"PROACTIVE_MQTT_URL":            "",
		"PROACTIVE_MQTT_LISTEN":         testenv.FreeAddr(t),
		"PROACTIVE_INFLUX_URL":          influx.URL(),
		"PROACTIVE_INFLUX_BUCKET":       influx.Bucket(),
		"PROACTIVE_HTTP_ADDR":           testenv.FreeAddr(t),
		"PROACTIVE_DB":                  filepath.Join(dir, "proactive.db"),
		"PROACTIVE_RULES":               filepath.Join(repoRoot, "rules", "examples", "*.yaml"),
		"PROACTIVE_RULES_SNAPSHOT_PATH": filepath.Join(dir, "rules.snapshot"),
		// What an operator puts in proactive.env.
		"PROACTIVE_TWILIO_ACCOUNT_SID": "AC0123456789",
		"PROACTIVE_TWILIO_FROM":        "+15005550006",
		"PROACTIVE_TWILIO_API_URL":     tw.URL,
	})
	ctx, cancel := context.WithCancel(context.Background())
	px := &platform{http: env["PROACTIVE_HTTP_ADDR"], logs: &testenv.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		px.done <- run(ctx, []string{"proactive", "serve"}, envMap(env), io.Discard, px.logs, environList(env)...)
	}()
	t.Cleanup(func() { px.stop(t) })
	px.waitHealthy(t)

	cmd := exec.Command(caddy, "run", "--config", caddyfileFor(t, env["PROACTIVE_HTTP_ADDR"]), "--adapter", "caddyfile")
	cmd.Env = caddyEnv(dir, publicHost)
	var caddyLog testenv.Buffer
	cmd.Stdout, cmd.Stderr = &caddyLog, &caddyLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Trust Caddy's own CA, as docs/deploy.md tells a browser to.
	root := filepath.Join(dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	pool := testenv.EventuallyValue(t, 30*time.Second, func() (*x509.CertPool, error) {
		b, err := os.ReadFile(root)
		if err != nil {
			return nil, fmt.Errorf("no CA root from Caddy yet: %w; log:\n%s", err, caddyLog.String())
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		return pool, nil
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	public := env["PROACTIVE_PUBLIC_URL"]
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := client.Get(public + "/healthz")
		if err != nil {
			return fmt.Errorf("through Caddy: %w; log:\n%s", err, caddyLog.String())
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("through Caddy /healthz answered %d", resp.StatusCode)
		}
		return nil
	})

	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {"AC0123456789"},
		"From": {"+4915550000001"}, "To": {"+15005550006"}, "Body": {"STOP"}}
	post := func(signedFor string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, public+notify.SMSPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilio.Signature(authToken, signedFor+notify.SMSPath, form))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(public); code != http.StatusOK {
		t.Errorf("a webhook signed for %s answered %d through Caddy, want 200; logs:\n%s", public, code, px.logs.String())
	}
	if code := post("http://" + env["PROACTIVE_HTTP_ADDR"]); code != http.StatusForbidden {
		t.Errorf("a webhook signed for the internal address answered %d, want 403", code)
	}
	if code := post("https://proactive.example.com"); code != http.StatusForbidden {
		t.Errorf("a webhook signed for another host answered %d, want 403", code)
	}
	resp, err := client.Get(public + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics through Caddy answered %d, want 404 (it is for Prometheus on the compose network)", resp.StatusCode)
	}
}

// mqttConnect connects once to broker and disconnects.
func mqttConnect(broker, user, password string, roots *x509.CertPool) error {
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("conf-test-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(password).SetTLSConfig(&tls.Config{RootCAs: roots}).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("no CONNACK from %s", broker)
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(50)
	return nil
}

// deploy/mosquitto/entrypoint.sh on this machine's Mosquitto 2.0, as the
// container runs it (as root): it puts the platform's password in place,
// serves the certificate Caddy holds for the host on the TLS listener,
// reloads a renewed one without a restart, and on SIGTERM stops Mosquitto
// so that it saves its store.
func TestMosquittoEntrypoint(t *testing.T) {
	mosquitto := requireTool(t, "mosquitto", "mosquitto")
	requireTool(t, "mosquitto_passwd", "mosquitto")
	if os.Geteuid() != 0 {
		t.Skip("the entrypoint runs as root, as in its container (it hands files to the mosquitto user)")
	}
	t.Parallel()
	dir, caddyData := t.TempDir(), t.TempDir()
	certDir := filepath.Join(caddyData, "caddy", "certificates", "local", "localhost")
	for _, d := range []string{filepath.Join(dir, "auth"), filepath.Join(dir, "config"), filepath.Join(dir, "data"), certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Caddy's certificate for the host, then a renewed one from another CA.
	caddyCert := func() *x509.CertPool {
		caPath, certPath, keyPath := writeCerts(t, t.TempDir())
		for src, dst := range map[string]string{certPath: "localhost.crt", keyPath: "localhost.key"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(certDir, dst+".tmp"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(certDir, dst+".tmp"), filepath.Join(certDir, dst)); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := os.ReadFile(caPath)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		return pool
	}
	first := caddyCert()
	secret := filepath.Join(t.TempDir(), "mqtt_password")
	files := map[string]string{
		filepath.Join(dir, "auth", "acl.conf"): "user proactive\ntopic read devices/#\n",
		secret:                                 "s3cret\n",
	}
	plainPort, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	files[filepath.Join(dir, "config", "mosquitto.conf")] = "user root\n" + strings.NewReplacer(
		"listener 1883\n", fmt.Sprintf("listener %d 127.0.0.1\n", plainPort),
		"listener 8883\n", fmt.Sprintf("listener %d 127.0.0.1\n", tlsPort),
		"/mosquitto/", dir+"/",
	).Replace(mustReadFile(t, "deploy/mosquitto/mosquitto.conf"))
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	script, _ := filepath.Abs(filepath.Join(repoRoot, "deploy", "mosquitto", "entrypoint.sh"))
	cmd := exec.Command("sh", script)
	cmd.Env = append(os.Environ(), "MOSQUITTO_DIR="+dir, "CADDY_DATA="+caddyData, "MOSQUITTO_BIN="+mosquitto,
		"MQTT_PLATFORM_USER=proactive", "MQTT_PLATFORM_PASSWORD_FILE="+secret, "MQTT_TLS_HOST=localhost",
		"TLS_WAIT_SECONDS=10", "TLS_CHECK_SECONDS=1")
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Mosquitto is the script's child: stop both
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	servesCA := func(pool *x509.CertPool) func() error {
		return func() error {
			conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort)), &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				return fmt.Errorf("TLS listener: %w; output:\n%s", err, out.String())
			}
			return conn.Close()
		}
	}
	testenv.Eventually(t, 20*time.Second, servesCA(first))
	if err := mqttConnect(fmt.Sprintf("ssl://localhost:%d", tlsPort), "proactive", "s3cret", first); err != nil {
		t.Errorf("the platform user with the secret's password over TLS: %v", err)
	}
	if err := mqttConnect(fmt.Sprintf("tcp://127.0.0.1:%d", plainPort), "proactive", "wrong", nil); err == nil {
		t.Error("a wrong password was accepted")
	}

	renewed := caddyCert()
	testenv.Eventually(t, 20*time.Second, servesCA(renewed))
	if !strings.Contains(out.String(), "renewed; reloading") {
		t.Errorf("no reload reported:\n%s", out.String())
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("entrypoint exited with %v after SIGTERM:\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the entrypoint did not stop within 20s of SIGTERM:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "mosquitto.db")); err != nil {
		t.Errorf("Mosquitto saved no store on the way out: %v\n%s", err, out.String())
	}
}
