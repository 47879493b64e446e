package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/proactivehq/proactive/internal/testenv"
)

// helmBin finds helm: bin/helm (`make bin/helm` builds it from the Go
// module proxy, as .ci/run does), else on PATH.
func helmBin(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join(repoRoot, "bin", "helm")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	testenv.RequireService(t, "helm", "helm not found: make bin/helm")
	return ""
}

var chartDir = filepath.Join(repoRoot, "deploy", "helm", "proactive")

func helm(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// A private home: no repositories, caches or plugins of the machine.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// manifests splits helm template's output and decodes each document
// strictly into its Kubernetes type: an unknown or misplaced field is an
// error, as the API server's schema would make it. (kubeconform needs
// schemas from the network; the typed decoding works offline.)
func manifests(t *testing.T, out string) (deps []appsv1.Deployment, svcs []corev1.Service, cms []corev1.ConfigMap, pvcs []corev1.PersistentVolumeClaim) {
	t.Helper()
	for _, doc := range strings.Split(out, "\n---") {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document: %v\n%s", err, doc)
		}
		var err error
		switch head.APIVersion + " " + head.Kind {
		case " ":
			continue // an empty document
		case "apps/v1 Deployment":
			var d appsv1.Deployment
			err = yaml.UnmarshalStrict([]byte(doc), &d)
			deps = append(deps, d)
		case "v1 Service":
			var s corev1.Service
			err = yaml.UnmarshalStrict([]byte(doc), &s)
			svcs = append(svcs, s)
		case "v1 ConfigMap":
			var c corev1.ConfigMap
			err = yaml.UnmarshalStrict([]byte(doc), &c)
			cms = append(cms, c)
		case "v1 PersistentVolumeClaim":
			var p corev1.PersistentVolumeClaim
			err = yaml.UnmarshalStrict([]byte(doc), &p)
			pvcs = append(pvcs, p)
		default:
			t.Errorf("unexpected %s %s in the chart's output", head.APIVersion, head.Kind)
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", head.Kind, err, doc)
		}
	}
	return deps, svcs, cms, pvcs
}

// TestHelmChart lints the chart and renders it with its defaults and with
// secrets, rules and no persistence: a non-root, read-only pod probed on
// /healthz and /readyz, with resources, its settings from a ConfigMap and
// its secrets as files named by *_FILE variables.
func TestHelmChart(t *testing.T) {
	bin := helmBin(t)
	if out, err := helm(t, bin, "lint", "--strict", chartDir); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	withSecrets := []string{"--set", "secrets.existingSecret=proactive", "--set", "secrets.files.PROACTIVE_INFLUX_TOKEN=influx_token",
		"--set", "persistence.enabled=false", "--set-string", "rules.fridge\\.yaml=rules: []"}
	if out, err := helm(t, bin, append([]string{"lint", "--strict", chartDir}, withSecrets...)...); err != nil {
		t.Fatalf("helm lint with secrets: %v\n%s", err, out)
	}

	out, err := helm(t, bin, "template", "fleet", chartDir, "--namespace", "iot")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	deps, svcs, cms, pvcs := manifests(t, out)
	if len(deps) != 1 || len(svcs) != 1 || len(cms) != 1 || len(pvcs) != 1 {
		t.Fatalf("rendered %d deployments, %d services, %d configmaps, %d claims; want one each", len(deps), len(svcs), len(cms), len(pvcs))
	}
	d := deps[0]
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	ps, sc := pod.SecurityContext, c.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 {
		t.Errorf("security contexts pod %+v container %+v: want non-root, read-only, no escalation, ALL dropped", ps, sc)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want memory requests and limits", c.Resources)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cms[0].Name {
		t.Errorf("envFrom %+v, want the ConfigMap %s", c.EnvFrom, cms[0].Name)
	}
	for k := range cms[0].Data {
		if !strings.HasPrefix(k, "PROACTIVE_") {
			t.Errorf("ConfigMap key %s is not a PROACTIVE_* setting", k)
		}
	}
	if cms[0].Data["PROACTIVE_DB"] != "/var/lib/proactive/proactive.db" {
		t.Errorf("PROACTIVE_DB = %q", cms[0].Data["PROACTIVE_DB"])
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts["/var/lib/proactive"] == "" || mounts["/tmp"] == "" {
		t.Errorf("mounts %v: a read-only root needs /var/lib/proactive and /tmp writable", mounts)
	}
	if pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != pvcs[0].Name {
		t.Errorf("data volume %+v, want the claim %s", pod.Volumes[0], pvcs[0].Name)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %s, want Recreate with a ReadWriteOnce volume", d.Spec.Strategy.Type)
	}
	ports := map[string]bool{}
	for _, p := range svcs[0].Spec.Ports {
		ports[p.Name] = true
	}
	if !ports["http"] || !ports["mqtt"] {
		t.Errorf("service ports %v, want http and mqtt", ports)
	}

	out, err = helm(t, bin, append([]string{"template", "fleet", chartDir}, withSecrets...)...)
	if err != nil {
		t.Fatalf("helm template with secrets: %v\n%s", err, out)
	}
	deps, _, cms, pvcs = manifests(t, out)
	if len(pvcs) != 0 || len(cms) != 2 {
		t.Errorf("without persistence, with rules: %d claims and %d configmaps, want 0 and 2", len(pvcs), len(cms))
	}
	c = deps[0].Spec.Template.Spec.Containers[0]
	var fileVar string
	for _, e := range c.Env {
		if e.Name == "PROACTIVE_INFLUX_TOKEN_FILE" {
			fileVar = e.Value
		}
		if e.Name == "PROACTIVE_INFLUX_TOKEN" {
			t.Errorf("the secret itself is in the environment: %+v", e)
		}
	}
	if fileVar != "/run/secrets/proactive/influx_token" {
		t.Errorf("PROACTIVE_INFLUX_TOKEN_FILE = %q, want the mounted secret's file", fileVar)
	}

	// Two replicas on SQLite is a mistake the chart refuses.
	out, err = helm(t, bin, "template", "fleet", chartDir, "--set", "replicaCount=2")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(out, "PostgreSQL") {
		t.Errorf("replicaCount=2 on SQLite: %v\n%s; want a refusal naming PostgreSQL", err, out)
	}
}
