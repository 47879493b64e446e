package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

func waitLog(t *testing.T, p *platform, text string) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		if logs := p.logs.String(); !strings.Contains(logs, text) {
			return fmt.Errorf("logs do not say %q:\n%s", text, tail(logs, 3000))
		}
		return nil
	})
}

// Telemetry published over MQTT reaches the rules, which raise an alert; a
// SIGHUP reloads the rule files, and a broken file leaves the running rules
// in place.
func TestServeRulesAlertAndReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "hot.yaml")
	write := func(s string) {
		if err := os.WriteFile(ruleFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - name: cabinet_hot\n    component: cabinet\n    severity: warning\n    when: cabinet_temp > 10\n")

	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	p := startChild(t, env)
	p.waitReady(t)
	waitLog(t, p, `"msg":"rules loaded","rules":1`)

	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-9", false)
	publish(t, c, "devices/fridge-9/telemetry", `{"metrics": {"cabinet_temp": 12.5}}`)
	waitLog(t, p, `"msg":"alert firing","component":"rules","alert":{"rule":"cabinet_hot","device_id":"fridge-9"`)
	if v := metric(t, p.http, `proactive_rules_alerts{rule="cabinet_hot",state="firing"}`); v != 1 {
		t.Errorf("firing alerts metric = %v, want 1", v)
	}

	write("rules:\n  - name: cabinet_hot\n    component: cabinet\n    severity: warning\n    when: cabinet_temp > 10\n  - name: door\n    component: door\n    severity: info\n    when: door_open > 0\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, `"msg":"rules reloaded","rules":2`)

	write("rules:\n  - name: cabinet_hot\n    component: cabinet\n    severity: warning\n    when: nonsense(cabinet_temp)\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, `rules not reloaded; the loaded rules keep running`)
	if !strings.Contains(p.logs.String(), `hot.yaml:5: rule cabinet_hot: when: unknown function`) {
		t.Errorf("the reload error does not name file, line and problem:\n%s", tail(p.logs.String(), 2000))
	}
	publish(t, c, "devices/fridge-9/telemetry", `{"metrics": {"door_open": 1}}`)
	waitLog(t, p, `"msg":"alert firing","component":"rules","alert":{"rule":"door"`)
	p.terminate(t)
}

// A broken rule file stops serve at start with the file and line.
func TestServeRefusesBrokenRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("rules:\n  - name: x\n    component: y\n    severity: loud\n    when: a > 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr testenv.Buffer
	err := run(t.Context(), []string{"proactive", "serve"}, func(k string) string {
		return map[string]string{"PROACTIVE_RULES": filepath.Join(dir, "*.yaml"), "PROACTIVE_HTTP_ADDR": testenv.FreeAddr(t),
			"PROACTIVE_MQTT_LISTEN": testenv.FreeAddr(t)}[k]
	}, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4") || !strings.Contains(err.Error(), "severity") {
		t.Errorf("serve with a broken rule: %v", err)
	}
}

// A registered device's model reaches InfluxDB as a tag and the rules as
// device.model, so rules scoped to models fire on it.
func TestServeUsesTheRegistry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: old_fridge_hot\n    component: cabinet\n    models: [\"fridge-*\"]\n    severity: warning\n    when: cabinet_temp > 10 && device.age_days > 300\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.CreateDevice(t.Context(), proactive.Device{ID: "fridge-42", Model: "fridge-a1", TimeZone: "Europe/Berlin",
		Installed: time.Now().AddDate(-1, 0, 0).Truncate(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, env)
	p.waitReady(t)
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "gw", false)
	publish(t, c, "devices/fridge-42/telemetry", `{"metrics": {"cabinet_temp": 12}}`)
	publish(t, c, "devices/unknown-1/telemetry", `{"metrics": {"cabinet_temp": 12}}`)
	pts := influx.Points(t, "telemetry")
	if len(pts) != 2 || pts[0].Tags["model"]+pts[1].Tags["model"] != "fridge-a1" {
		t.Errorf("points %+v: want the registered device tagged model=fridge-a1 and the other untagged", pts)
	}
	waitLog(t, p, `"msg":"alert firing","component":"rules","alert":{"rule":"old_fridge_hot","device_id":"fridge-42"`)
	if strings.Contains(p.logs.String(), `"device_id":"unknown-1"`) {
		t.Errorf("the rule fired on an unregistered device of no model")
	}
}

// rules.enabled false: the instance stores telemetry and serves HTTP, loads
// no rule file (a broken one does not stop it), fires nothing, and refuses
// a reload with a 409 saying why.
func TestServeRulesDisabled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: hot\n    component: cabinet\n    severity: loud\n    when: cabinet_temp > 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	env["PROACTIVE_RULES_ENABLED"] = "false"
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(t.Context(), "admin", devices.RoleAdmin, "")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := startServe(t, env)
	p.waitReady(t)
	waitLog(t, p, "rules disabled on this instance")
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-1", false)
	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"cabinet_temp": 12.5}}`)
	if n := influx.Count(t, "telemetry"); n != 1 {
		t.Errorf("%d points stored, want 1", n)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+p.http+"/api/v1/rules/reload", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "rules.enabled") {
		t.Errorf("reload: %s %s, want 409 saying rules are disabled", resp.Status, body)
	}
	if strings.Contains(p.logs.String(), "alert firing") {
		t.Error("an alert fired with rules disabled")
	}
}
