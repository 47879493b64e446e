package main

// The install paths other than compose: release archives (`make release`),
// the systemd unit, the image's labels and build context.

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestReleaseArchive runs `make release` for linux/amd64 into a temporary
// directory: the archive holds the binary (reporting the version given),
// the README, the example configuration, the env file, the systemd unit
// and the example rules under one top directory; SHA256SUMS matches it.
func TestReleaseArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not found")
	}
	dist := t.TempDir()
	const version = "0.0.0-test.1"
	cmd := exec.Command("make", "-C", repoRoot, "release", "VERSION="+version, "ARCHES=amd64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	name := "proactive_" + version + "_linux_amd64"
	archive := filepath.Join(dist, name+".tar.gz")

	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:]) + "  " + name + ".tar.gz\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}

	files := map[string]*tar.Header{}
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	bin := filepath.Join(t.TempDir(), "proactive")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		rel, ok := strings.CutPrefix(h.Name, name+"/")
		if !ok {
			t.Errorf("%s is outside the top directory %s/", h.Name, name)
			continue
		}
		files[rel] = h
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		if rel == "proactive" {
			f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for _, want := range []string{"proactive", "README.md", "proactive.example.yaml", "proactive.env", "proactive.service"} {
		if files[want] == nil {
			t.Errorf("archive has no %s; it has %v", want, keys(files))
		}
	}
	if h := files["proactive"]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("the binary's mode is %o, want executable", h.Mode)
	}
	examples, _ := filepath.Glob(filepath.Join(repoRoot, "rules", "examples", "*.yaml"))
	for _, ex := range examples {
		if files["rules/"+filepath.Base(ex)] == nil {
			t.Errorf("archive has no rules/%s", filepath.Base(ex))
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "LICENSE")); err == nil && files["LICENSE"] == nil {
		t.Error("the repository has a LICENSE and the archive does not")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "proactive "+version {
		t.Errorf("proactive version: %q, %v; want proactive %s", out, err, version)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// unitDirectives reads a systemd unit's Key=value lines.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// TestSystemdUnit: the unit in deploy/systemd is hardened, reads
// /etc/proactive/proactive.env, and passes `systemd-analyze verify` and
// `systemd-analyze security` with an exposure of at most 2.0 ("OK"). The
// binary is not installed here, so a copy of the unit starts a stand-in.
func TestSystemdUnit(t *testing.T) {
	unit := filepath.Join(repoRoot, "deploy", "systemd", "proactive.service")
	d := unitDirectives(t, unit)
	want := map[string]string{
		"ExecStart": "/usr/local/bin/proactive serve", "EnvironmentFile": "/etc/proactive/proactive.env",
		"DynamicUser": "yes", "StateDirectory": "proactive", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallFilter": "@system-service",
		"ProtectKernelTunables": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
	}
	for k, v := range want {
		if !slices.Contains(d[k], v) {
			t.Errorf("%s=%v, want %s=%s", k, d[k], k, v)
		}
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		requireTool(t, "systemd-analyze", "systemd")
	}
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	standIn, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "proactive.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/proactive", standIn)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify warns about unknown keys and bad values but exits 0: any
	// output about the unit is a failure.
	out, err := exec.Command(sa, "verify", copyPath).CombinedOutput()
	if err != nil || regexp.MustCompile(`proactive\.service`).Match(out) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold=20", copyPath).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
}

// TestImageLabelsAndContext: the image carries the OCI annotations, its
// version and revision from build arguments; .dockerignore keeps local
// data, build output, npm's tree and the Git directory out of the build
// context and lets in everything the build reads.
func TestImageLabelsAndContext(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	final := df[strings.LastIndex(df, "\nFROM "):] // labels belong to the image, not the build stage
	for _, want := range []string{"ARG VERSION", "ARG REVISION",
		`org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.revision="${REVISION}"`,
		"org.opencontainers.image.title=", "org.opencontainers.image.description=", "org.opencontainers.image.source=",
		"org.opencontainers.image.created=", "org.opencontainers.image.url="} {
		if !strings.Contains(final, want) {
			t.Errorf("the Dockerfile's final stage has no %s", want)
		}
	}

	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(p string) bool {
		ok, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatalf("match %s: %v", p, err)
		}
		return ok
	}
	for _, p := range []string{".git/HEAD", "web/assets/node_modules/uplot/package.json", "dist/SHA256SUMS", "bin/influxd",
		"data/proactive.db", "secrets/influx_token", "proactive.env", ".env", "proactive", "cmd/proactive/proactive.test"} {
		if !ignored(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	// What the build reads: the module, every package's sources and
	// embedded files, the example rules it copies.
	needed := []string{"go.mod", "go.sum", "rules/examples"}
	err = filepath.WalkDir(repoRoot, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if de.IsDir() && (strings.HasPrefix(de.Name(), ".") && rel != "." || de.Name() == "node_modules" || rel == "bin" || rel == "data" || rel == "dist") {
			return filepath.SkipDir
		}
		if !de.IsDir() && (strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") ||
			strings.HasPrefix(rel, "web/static/") || strings.HasPrefix(rel, "web/templates/") || strings.HasPrefix(rel, "web/report/") ||
			strings.HasPrefix(rel, "devices/migrations/") || rel == "api/openapi.json" || strings.HasPrefix(rel, "simulator/scenarios/")) {
			needed = append(needed, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range needed {
		if ignored(p) {
			t.Errorf(".dockerignore keeps %s, which the build needs, out of the context", p)
		}
	}
}
